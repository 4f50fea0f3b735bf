package cluster

import (
	"context"
	"sync"
	"sync/atomic"

	"ccpbx/store"
)

// queue hands events to the owner without ever making their producers
// (the renewal loop, the listener) wait: push appends under a lock, and
// one goroutine (run) sends to the owner. Membership events (everything
// but Notice) are few, bounded by the number of peers and restarts, and
// are always kept; notices are kept up to max, then dropped, and one
// resync notice stands for them once the owner catches up.
type queue struct {
	out  chan Event
	wake chan struct{}
	max  int

	mu      sync.Mutex
	items   []Event
	notices int  // Notice events in items
	owed    bool // notices were dropped: a resync is due
}

func newQueue(max int) *queue {
	return &queue{out: make(chan Event), wake: make(chan struct{}, 1), max: max}
}

// push queues e; a notice beyond the bound is dropped and counted.
func (q *queue) push(e Event, dropped *atomic.Uint64) {
	q.mu.Lock()
	if e.Kind == Notice {
		if q.notices >= q.max {
			q.owed = true
			q.mu.Unlock()
			dropped.Add(1)
			return
		}
		q.notices++
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the next event, or the owed resync once the notices drained.
func (q *queue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		if q.owed {
			q.owed = false
			return Event{Kind: Notice, Notice: store.Notice{Kind: store.NoticeResync}}, true
		}
		return Event{}, false
	}
	e := q.items[0]
	q.items[0] = Event{}
	q.items = q.items[1:]
	if e.Kind == Notice {
		q.notices--
	}
	return e, true
}

// run delivers events until ctx ends, then closes out.
func (q *queue) run(ctx context.Context) {
	defer close(q.out)
	for {
		e, ok := q.pop()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case q.out <- e:
		case <-ctx.Done():
			return
		}
	}
}
