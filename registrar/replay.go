package registrar

import (
	"strconv"
	"sync"
	"time"
)

// maxTrackedNonces bounds the replay table; past it, nonces are forgotten
// in the order they were first used, which at worst lets a replay through
// for a nonce used that long ago (and still within its short life). Only
// a right password adds an entry, so a flood cannot fill it cheaply.
const maxTrackedNonces = 65536

// replayGuard remembers the highest nonce count used with each nonce, so a
// captured Authorization cannot be replayed while its nonce is fresh
// (RFC 7616 §3.4: nc must increase). Every operation is O(1) amortised:
// entries are also queued in first-use order, which is close to issue
// order, so expiry and eviction pop the queue's head.
type replayGuard struct {
	mu    sync.Mutex
	seen  map[string]replayEntry
	order []string // nonces in first-use order; order[head:] are live
	head  int
}

type replayEntry struct {
	issued time.Time
	nc     uint64
}

// use records nc for nonce and reports whether it is higher than any count
// seen before with that nonce.
func (g *replayGuard) use(nonce string, issued time.Time, ncHex string) bool {
	nc, err := strconv.ParseUint(ncHex, 16, 32)
	if err != nil || nc == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = make(map[string]replayEntry)
	}
	if e, ok := g.seen[nonce]; ok {
		if nc <= e.nc {
			return false
		}
		g.seen[nonce] = replayEntry{issued: e.issued, nc: nc}
		return true
	}
	for len(g.seen) >= maxTrackedNonces {
		g.popLocked()
	}
	g.seen[nonce] = replayEntry{issued: issued, nc: nc}
	g.order = append(g.order, nonce)
	return true
}

// popLocked forgets the nonce first used longest ago.
func (g *replayGuard) popLocked() {
	delete(g.seen, g.order[g.head])
	g.order[g.head] = ""
	g.head++
	if g.head > len(g.order)/2 {
		// Compact, so the queue's memory follows the live entries.
		g.order = append(g.order[:0], g.order[g.head:]...)
		g.head = 0
	}
}

// prune forgets nonces issued before cutoff (they are stale anyway), from
// the head of the queue; an older one queued behind a newer one waits for
// the next sweep, or for eviction.
func (g *replayGuard) prune(cutoff time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.head < len(g.order) && g.seen[g.order[g.head]].issued.Before(cutoff) {
		g.popLocked()
	}
}

// len is the number of nonces remembered.
func (g *replayGuard) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}
