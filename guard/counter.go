package guard

import (
	"sync"
	"time"
)

// Counter counts events per key within a fixed window that starts at a
// key's first event, for at most a bounded number of keys. Bans uses one
// per source address and one per account name; it is generic so any
// listener can count what it needs. Safe for concurrent use.
type Counter[K comparable] struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu sync.Mutex
	m  map[K]*tally
}

type tally struct {
	first time.Time
	n     int
}

// NewCounter returns a counter with the given window and bound on keys
// (maxKeys ≤ 0 means DefaultMaxTracked); now nil means time.Now.
func NewCounter[K comparable](window time.Duration, maxKeys int, now func() time.Time) *Counter[K] {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxTracked
	}
	if now == nil {
		now = time.Now
	}
	return &Counter[K]{window: window, max: maxKeys, now: now, m: map[K]*tally{}}
}

// Add counts one event for k and returns the count within k's window,
// this one included. When the table is full of live windows a new key is
// not counted and Add returns 0: a flood of distinct keys costs bounded
// memory, at worst some uncounted events.
func (c *Counter[K]) Add(k K) int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.m[k]
	if t != nil && now.Sub(t.first) >= c.window {
		t = nil // the window is over: count afresh
	}
	if t == nil {
		if !c.roomLocked(now, k) {
			return 0
		}
		t = &tally{first: now}
		c.m[k] = t
	}
	t.n++
	return t.n
}

// roomLocked makes room for key k if the table is full, by dropping
// windows that are over.
func (c *Counter[K]) roomLocked(now time.Time, k K) bool {
	if _, ok := c.m[k]; ok || len(c.m) < c.max {
		return true
	}
	for key, t := range c.m {
		if now.Sub(t.first) >= c.window {
			delete(c.m, key)
		}
	}
	return len(c.m) < c.max
}

// Count returns k's count within its current window.
func (c *Counter[K]) Count(k K) int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.m[k]
	if t == nil || now.Sub(t.first) >= c.window {
		return 0
	}
	return t.n
}

// Reset forgets k's count.
func (c *Counter[K]) Reset(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

// Len is the number of keys remembered (live or not yet pruned).
func (c *Counter[K]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
