// Package spool owns the hand-off of records from a path that must not
// block (a channel's hangup, the ACD's dispatch) to one goroutine that
// makes them durable: Put queues a record and never blocks or drops one
// while the spool is open, the goroutine passes every batch queued since
// its last one to the owner's write function in order, Flush waits for
// what was queued before it, and Close drains the queue and ends the
// goroutine. The cdr writer and queue_log use it.
//
// It knows nothing of what the records are or where they go.
package spool

import (
	"context"
	"sync"
)

// Spool queues records of type T for one writer goroutine.
type Spool[T any] struct {
	write  func(batch []T)
	finish func()

	mu     sync.Mutex
	queue  []T
	closed bool
	// queued and written count records; progress is closed (and replaced)
	// each time written grows, for Flush.
	queued, written uint64
	progress        chan struct{}
	wake            chan struct{}
	done            chan struct{}
}

// New starts a spool. write gets each batch on the spool's goroutine
// (a failure is write's to log); finish, if not nil, runs there once the
// queue is drained after Close.
func New[T any](write func(batch []T), finish func()) *Spool[T] {
	s := &Spool[T]{write: write, finish: finish, progress: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// Put queues v. It never blocks (the queue grows); after Close it queues
// nothing and returns false.
func (s *Spool[T]) Put(v T) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, v)
	s.queued++
	s.mu.Unlock()
	s.poke()
	return true
}

func (s *Spool[T]) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush waits until every record queued before the call has been written
// (or its write has failed), or ctx ends (its error is returned).
func (s *Spool[T]) Flush(ctx context.Context) error {
	s.mu.Lock()
	target := s.queued
	s.mu.Unlock()
	for {
		s.mu.Lock()
		done, progress := s.written >= target, s.progress
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-s.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops taking records and waits until the queued ones are written
// and finish has run, or ctx ends (its error is returned; the goroutine
// still finishes).
func (s *Spool[T]) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.poke()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Spool[T]) run() {
	defer close(s.done)
	for {
		<-s.wake
		for {
			s.mu.Lock()
			batch, closed := s.queue, s.closed
			s.queue = nil
			s.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					if s.finish != nil {
						s.finish()
					}
					return
				}
				break
			}
			s.write(batch)
			s.mu.Lock()
			s.written += uint64(len(batch))
			close(s.progress)
			s.progress = make(chan struct{})
			s.mu.Unlock()
		}
	}
}
