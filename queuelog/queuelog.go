// Package queuelog writes the Asterisk-format queue_log file
// (<data_dir>/queue_log) that QueueMetrics-style reporting tools read. The
// ACD formats the lines (acd.QueueLog); this package only makes them
// durable, off the ACD's dispatch path: Append queues a line and never
// blocks, one goroutine appends batches to the file and fsyncs them, and
// Close drains what is queued.
//
// It must not format or interpret lines, and imports no ccpbx package.
package queuelog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// FileName is the file's name inside the data directory, as Asterisk
// names it in its log directory.
const FileName = "queue_log"

// Writer appends lines to one queue_log file.
type Writer struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	queue  []string
	closed bool
	// queued and written count lines; progress is closed (and replaced)
	// each time written grows, for Flush.
	queued, written uint64
	progress        chan struct{}
	wake            chan struct{}
	done            chan struct{}

	f *os.File // owned by the writer goroutine after Open
}

// Open opens (creating) path for appending and starts the writer.
func Open(path string, log *slog.Logger) (*Writer, error) {
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{path: path, log: log, progress: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := w.open(); err != nil {
		return nil, err
	}
	go w.run()
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
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.log.Error("queue_log line after shutdown not written", "line", line)
		return
	}
	w.queue = append(w.queue, line)
	w.queued++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Flush waits until every line appended before the call is written (or
// its write failed and was logged), or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	w.mu.Unlock()
	for {
		w.mu.Lock()
		done, progress := w.written >= target, w.progress
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-w.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("queuelog: flush: %w", ctx.Err())
		}
	}
}

// Close stops taking lines, writes the queued ones and closes the file.
// It stops waiting when ctx ends (the goroutine still finishes).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queuelog: close: %w", ctx.Err())
	}
}

func (w *Writer) run() {
	defer close(w.done)
	var b strings.Builder
	for {
		<-w.wake
		for {
			w.mu.Lock()
			batch, closed := w.queue, w.closed
			w.queue = nil
			w.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					w.closeFile()
					return
				}
				break
			}
			b.Reset()
			for _, l := range batch {
				b.WriteString(l)
				b.WriteByte('\n')
			}
			if err := w.write(b.String()); err != nil {
				w.log.Error("queue_log write failed", "lines", len(batch), "err", err)
			}
			w.mu.Lock()
			w.written += uint64(len(batch))
			close(w.progress)
			w.progress = make(chan struct{})
			w.mu.Unlock()
		}
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
