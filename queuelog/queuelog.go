// Package queuelog writes the Asterisk-format queue_log file
// (<data_dir>/queue_log) that QueueMetrics-style reporting tools read. The
// ACD formats the lines (acd.QueueLog); this package only makes them
// durable, off the ACD's dispatch path: Append queues a line and never
// blocks, one goroutine appends batches to the file and fsyncs them, and
// Close drains what is queued.
//
// It must not format or interpret lines; the queue is internal/spool's.
package queuelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"ccpbx/internal/spool"
)

// FileName is the file's name inside the data directory, as Asterisk
// names it in its log directory.
const FileName = "queue_log"

// Writer appends lines to one queue_log file.
type Writer struct {
	path string
	log  *slog.Logger

	sp *spool.Spool[string]

	// Owned by the spool's goroutine after Open.
	b strings.Builder
	f *os.File
}

// Open opens (creating) path for appending and starts the writer.
func Open(path string, log *slog.Logger) (*Writer, error) {
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{path: path, log: log}
	if err := w.open(); err != nil {
		return nil, err
	}
	w.sp = spool.New(w.writeBatch, w.closeFile)
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("queuelog: %w", err)
	}
	w.f = f
	return nil
}

// Append queues one line (without its newline). It never blocks; after
// Close the line is logged as lost.
func (w *Writer) Append(line string) {
	if !w.sp.Put(line) {
		w.log.Error("queue_log line after shutdown not written", "line", line)
	}
}

// Flush waits until every line appended before the call is written (or
// its write failed and was logged), or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.sp.Flush(ctx); err != nil {
		return fmt.Errorf("queuelog: flush: %w", err)
	}
	return nil
}

// Close stops taking lines, writes the queued ones and closes the file.
// It stops waiting when ctx ends (the goroutine still finishes).
func (w *Writer) Close(ctx context.Context) error {
	if err := w.sp.Close(ctx); err != nil {
		return fmt.Errorf("queuelog: close: %w", err)
	}
	return nil
}

// writeBatch appends a batch of lines in one write.
func (w *Writer) writeBatch(batch []string) {
	w.b.Reset()
	for _, l := range batch {
		w.b.WriteString(l)
		w.b.WriteByte('\n')
	}
	if err := w.write(w.b.String()); err != nil {
		w.log.Error("queue_log write failed", "lines", len(batch), "err", err)
	}
}

// write appends s and fsyncs. A file renamed or removed by log rotation
// is noticed here and a new one is started at path.
func (w *Writer) write(s string) error {
	if w.f != nil && w.rotated() {
		w.closeFile()
	}
	if w.f == nil {
		if err := w.open(); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteString(s); err != nil {
		return err
	}
	return w.f.Sync()
}

func (w *Writer) rotated() bool {
	cur, err := w.f.Stat()
	if err != nil {
		return true
	}
	at, err := os.Stat(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	return err == nil && !os.SameFile(cur, at)
}

func (w *Writer) closeFile() {
	if w.f == nil {
		return
	}
	if err := w.f.Sync(); err != nil {
		w.log.Error("queue_log sync failed", "err", err)
	}
	if err := w.f.Close(); err != nil {
		w.log.Error("queue_log close failed", "err", err)
	}
	w.f = nil
}
