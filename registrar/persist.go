package registrar

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"ccpbx/store"
)

// Bounds of the write-behind queue of binding changes.
const (
	// defaultMaxPending bounds the binding changes waiting for the store
	// (one entry per binding, however often it changed): about 300 bytes
	// each. A REGISTER that would go beyond it waits for the writer, and
	// after storeTimeout is answered 500 with nothing changed.
	defaultMaxPending = 8192
	// maxBatch bounds one transaction: a few milliseconds of SQLite work,
	// so a crash loses little and the next batch starts soon.
	maxBatch = 1024
	// writeInterval is how often the writer starts a transaction while
	// changes keep coming: the first change after a quiet spell is written
	// at once, later ones gather for up to this long, so a busy second
	// costs tens of transactions, not one per REGISTER. It is also about
	// what a crash can lose.
	writeInterval = 20 * time.Millisecond
	// writeRetryFirst and writeRetryMax pace retries of a failed batch;
	// after writeGiveUp of failures in a row a batch is dropped (logged):
	// its phones write it again at their next refresh, and load() drops
	// rows that expired meanwhile.
	writeRetryFirst = 50 * time.Millisecond
	writeRetryMax   = 2 * time.Second
	writeGiveUp     = time.Minute
)

// errQueueFull is put's answer when the store has not taken the queued
// changes for storeTimeout.
var errQueueFull = errors.New("registrar: store writes behind by too much")

// pendingWrite is the last change of one binding not yet in the store:
// a save (row) or a delete.
type pendingWrite struct {
	del bool
	row store.Registration
}

// writeBehind persists binding changes after the registrar has answered:
// memory is the location service, the store is its copy for restarts.
// Changes are coalesced per binding (the last one wins, so a phone that
// refreshes twice between writes costs one row, and a save then a delete
// is one delete) and written by one goroutine, a batch per transaction,
// in the order the registrar made them (it calls put under writeMu).
// The goroutine runs only while there is something to write.
//
// Durability: a clean stop (Close) writes everything; a crash loses the
// changes not yet committed, those of the last batch or two (milliseconds
// of REGISTERs), which the phones repeat at their next refresh.
type writeBehind struct {
	st         store.Registrations
	log        *slog.Logger
	maxPending int

	mu      sync.Mutex
	pending map[store.RegistrationKey]pendingWrite
	running bool
	closed  bool
	// progress is closed (and replaced) whenever the writer takes a batch
	// or goes idle: put waits on it for room, sync for idle.
	progress chan struct{}
	// hurry cuts the writer's wait for more changes short (sync, close).
	hurry chan struct{}
}

func newWriteBehind(st store.Registrations, log *slog.Logger) *writeBehind {
	return &writeBehind{st: st, log: log, maxPending: defaultMaxPending,
		pending: make(map[store.RegistrationKey]pendingWrite), progress: make(chan struct{}),
		hurry: make(chan struct{}, 1)}
}

// put queues saves and deletes (deletes of keys also saved are the
// caller's to avoid). It waits, at most storeTimeout, while the queue is
// full; errQueueFull then means nothing was queued. After close it also
// waits, as long, until they are written (write-through); they stay
// queued either way, so that wait does not fail the change.
func (w *writeBehind) put(save []store.Registration, del []store.RegistrationKey) error {
	var timeout <-chan time.Time // made only when the queue is full
	w.mu.Lock()
	for !w.fits(save, del) {
		if timeout == nil {
			t := time.NewTimer(storeTimeout)
			defer t.Stop()
			timeout = t.C
		}
		progress := w.progress
		w.mu.Unlock()
		select {
		case <-progress:
		case <-timeout:
			return errQueueFull
		}
		w.mu.Lock()
	}
	for _, k := range del {
		w.pending[k] = pendingWrite{del: true}
	}
	for _, r := range save {
		w.pending[store.RegistrationKey{User: r.User, Key: r.Key}] = pendingWrite{row: r}
	}
	if !w.running {
		w.running = true
		go w.run()
	}
	closed := w.closed
	w.mu.Unlock()
	if closed {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_ = w.sync(ctx)
	}
	return nil
}

// fits says whether the changes have room; an empty queue takes any.
// The caller holds mu.
func (w *writeBehind) fits(save []store.Registration, del []store.RegistrationKey) bool {
	if len(w.pending) == 0 {
		return true
	}
	n := len(w.pending)
	for _, k := range del {
		if _, ok := w.pending[k]; !ok {
			n++
		}
	}
	for _, r := range save {
		if _, ok := w.pending[store.RegistrationKey{User: r.User, Key: r.Key}]; !ok {
			n++
		}
	}
	return n <= w.maxPending
}

// advance wakes put and sync waiters. The caller holds mu.
func (w *writeBehind) advance() {
	close(w.progress)
	w.progress = make(chan struct{})
}

// run writes batches until the queue is empty.
func (w *writeBehind) run() {
	var failingSince, lastWrite time.Time
	backoff := writeRetryFirst
	gather := time.NewTimer(0)
	defer gather.Stop()
	for {
		if wait := writeInterval - time.Since(lastWrite); !lastWrite.IsZero() && wait > 0 && !w.full() {
			gather.Reset(wait)
			select {
			case <-gather.C:
			case <-w.hurry:
			}
		}
		lastWrite = time.Now()
		w.mu.Lock()
		if len(w.pending) == 0 {
			w.running = false
			w.advance()
			w.mu.Unlock()
			return
		}
		batch := make(map[store.RegistrationKey]pendingWrite, min(len(w.pending), maxBatch))
		for k, p := range w.pending {
			if len(batch) == maxBatch {
				break
			}
			batch[k] = p
			delete(w.pending, k)
		}
		w.advance()
		w.mu.Unlock()

		var save []store.Registration
		var del []store.RegistrationKey
		for k, p := range batch {
			if p.del {
				del = append(del, k)
			} else {
				save = append(save, p.row)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := w.st.ApplyRegistrations(ctx, save, del)
		cancel()
		if err == nil {
			failingSince, backoff = time.Time{}, writeRetryFirst
			continue
		}
		now := time.Now()
		if failingSince.IsZero() {
			failingSince = now
		}
		if now.Sub(failingSince) >= writeGiveUp {
			w.log.Error("registrar: bindings not persisted, dropped after retrying", "saves", len(save),
				"deletes", len(del), "failing_for", now.Sub(failingSince).Round(time.Second), "err", err)
			continue
		}
		w.log.Error("registrar: persist bindings, will retry", "saves", len(save), "deletes", len(del),
			"retry_in", backoff, "err", err)
		w.mu.Lock()
		for k, p := range batch {
			if _, newer := w.pending[k]; !newer {
				w.pending[k] = p
			}
		}
		w.mu.Unlock()
		time.Sleep(backoff)
		backoff = min(2*backoff, writeRetryMax)
	}
}

// full says whether a whole batch is waiting (no reason to gather more).
func (w *writeBehind) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) >= maxBatch
}

// sync waits until everything queued so far, and whatever is queued
// meanwhile, is written (or dropped after retries), or ctx ends.
func (w *writeBehind) sync(ctx context.Context) error {
	select {
	case w.hurry <- struct{}{}:
	default:
	}
	for {
		w.mu.Lock()
		idle, progress := !w.running && len(w.pending) == 0, w.progress
		w.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close writes what is queued; later changes are written before put
// returns.
func (w *writeBehind) close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return w.sync(ctx)
}
