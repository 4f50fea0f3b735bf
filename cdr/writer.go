package cdr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"ccpbx/call"
	"ccpbx/internal/spool"
	"ccpbx/store"
)

// CSVDirName is the directory under data_dir that holds Master.csv, as
// mod_cdr_csv names it under its log-base.
const CSVDirName = "cdr-csv"

// MasterFile is the CSV file every record goes to.
const MasterFile = "Master.csv"

// Options configure a Writer.
type Options struct {
	// Store receives every record (required).
	Store store.CDRs
	// CSVDir is where Master.csv is written; empty writes no CSV.
	CSVDir string
	// RotateDaily renames Master.csv to Master.csv.YYYY-MM-DD at the first
	// record of a new local day.
	RotateDaily bool
	Log         *slog.Logger
	// Clock decides the day for rotation; nil = time.Now.
	Clock func() time.Time
}

// Writer turns CHANNEL_HANGUP_COMPLETE events into stored records.
type Writer struct {
	opt Options
	log *slog.Logger

	// The spool holds records, not events: a leg's complete event carries
	// every header of the channel (~14 KB for a queue call), the record a
	// few hundred bytes, and the spool may hold thousands while the
	// writer catches up under load.
	sp *spool.Spool[store.CDR]

	mu      sync.Mutex
	stopBus func()

	// Owned by the spool's goroutine.
	buf []byte
	f   *os.File
	day string // local date of the records in f, "" when f is empty
}

// New returns a Writer; Start attaches it to a switch.
func New(opt Options) (*Writer, error) {
	if opt.Store == nil {
		return nil, errors.New("cdr: no store")
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	w := &Writer{opt: opt, log: opt.Log}
	if opt.CSVDir != "" {
		if err := os.MkdirAll(opt.CSVDir, 0o750); err != nil {
			return nil, fmt.Errorf("cdr: %w", err)
		}
		if err := w.openCSV(); err != nil {
			return nil, err
		}
	}
	w.sp = spool.New(w.write, w.closeCSV)
	return w, nil
}

// Start observes core's bus for complete legs and registers the `cdr`
// API command.
func (w *Writer) Start(core *call.Core) {
	// Bare: a record is read from the event's channel (FromChannel), so
	// the complete event need not carry every channel header for it.
	stop := core.Bus.ObserveBare(call.Kinds(EventName), func(e *call.Event) bool { return e.Name == EventName }, w.Enqueue)
	w.mu.Lock()
	w.stopBus = stop
	w.mu.Unlock()
	core.RegisterAPI("cdr", "Call detail records: cdr list [<count>] [json]", w.api)
}

// Enqueue queues the record of a complete leg. It never blocks (the queue
// grows) and never drops one while the Writer is open.
//
// An event about a channel (e.Channel) is read from the channel, as it is
// fired; another (a full event from elsewhere) from its headers.
func (w *Writer) Enqueue(e *call.Event) {
	var r store.CDR
	if e.Channel != nil {
		r = FromChannel(e.Channel, e)
	} else {
		r = FromEvent(e)
	}
	if !w.sp.Put(r) {
		w.log.Error("cdr: record after shutdown not written", "uuid", r.UUID)
	}
}

// Flush waits until every record queued before the call has been written
// (or its write has failed and been logged), or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.sp.Flush(ctx); err != nil {
		return fmt.Errorf("cdr: flush: %w", err)
	}
	return nil
}

// Close stops taking records, writes every queued one, fsyncs and closes
// Master.csv. It gives up waiting when ctx ends (the goroutine still
// finishes its batch).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.stopBus != nil {
		w.stopBus()
		w.stopBus = nil
	}
	w.mu.Unlock()
	if err := w.sp.Close(ctx); err != nil {
		return fmt.Errorf("cdr: close: %w", err)
	}
	return nil
}

// write stores one batch: the database first (one transaction), then the
// CSV lines in one write and an fsync. A failure of one is logged and does
// not stop the other.
func (w *Writer) write(recs []store.CDR) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := w.opt.Store.InsertCDRs(ctx, recs)
	cancel()
	if err != nil {
		w.log.Error("cdr: database write failed", "records", len(recs), "first_uuid", recs[0].UUID, "err", err)
	}
	if w.opt.CSVDir == "" {
		return
	}
	w.buf = w.buf[:0]
	for i := range recs {
		w.buf = AppendCSV(w.buf, &recs[i])
	}
	if err := w.appendCSV(w.buf); err != nil {
		w.log.Error("cdr: "+MasterFile+" write failed", "records", len(recs), "first_uuid", recs[0].UUID, "err", err)
	}
}

func (w *Writer) path() string { return filepath.Join(w.opt.CSVDir, MasterFile) }

func (w *Writer) today() string { return w.opt.Clock().Local().Format(time.DateOnly) }

// openCSV opens Master.csv for appending and learns which day its records
// are from (its modification time), so a restart still rotates it.
func (w *Writer) openCSV() error {
	f, err := os.OpenFile(w.path(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("cdr: %w", err)
	}
	w.f, w.day = f, ""
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		w.day = st.ModTime().Local().Format(time.DateOnly)
	}
	return nil
}

func (w *Writer) appendCSV(b []byte) error {
	if w.opt.RotateDaily {
		if today := w.today(); w.day != "" && w.day != today {
			if err := w.rotate(); err != nil {
				w.log.Error("cdr: rotating "+MasterFile+" failed, appending to it", "err", err)
			}
		}
	}
	if w.f == nil {
		if err := w.openCSV(); err != nil {
			return err
		}
	}
	if _, err := w.f.Write(b); err != nil {
		return err
	}
	if w.day == "" {
		w.day = w.today()
	}
	return w.f.Sync()
}

// rotate renames the full Master.csv after the day it holds and opens a
// new one.
func (w *Writer) rotate() error {
	old := w.day
	w.closeCSV()
	dst := w.path() + "." + old
	for n := 1; ; n++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%s.%d", w.path(), old, n)
	}
	if err := os.Rename(w.path(), dst); err != nil {
		return err
	}
	w.log.Info("cdr: rotated "+MasterFile, "to", dst)
	return w.openCSV()
}

func (w *Writer) closeCSV() {
	if w.f == nil {
		return
	}
	if err := w.f.Sync(); err != nil {
		w.log.Error("cdr: "+MasterFile+" sync failed", "err", err)
	}
	if err := w.f.Close(); err != nil {
		w.log.Error("cdr: "+MasterFile+" close failed", "err", err)
	}
	w.f = nil
}
