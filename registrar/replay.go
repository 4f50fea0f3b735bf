package registrar

import (
	"strconv"
	"sync"
	"time"
)

// maxTrackedNonces bounds the replay table; past it, nonces are forgotten
// oldest-first, which at worst lets a replay through for an old nonce.
const maxTrackedNonces = 100000

// replayGuard remembers the highest nonce count used with each nonce, so a
// captured Authorization cannot be replayed while its nonce is fresh
// (RFC 7616 §3.4: nc must increase).
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]replayEntry
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
	if e, ok := g.seen[nonce]; ok && nc <= e.nc {
		return false
	}
	if len(g.seen) >= maxTrackedNonces {
		g.evictOldestLocked()
	}
	g.seen[nonce] = replayEntry{issued: issued, nc: nc}
	return true
}

// prune forgets nonces issued before cutoff (they are stale anyway).
func (g *replayGuard) prune(cutoff time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, e := range g.seen {
		if e.issued.Before(cutoff) {
			delete(g.seen, k)
		}
	}
}

func (g *replayGuard) evictOldestLocked() {
	var (
		oldestKey string
		oldest    time.Time
		first     = true
	)
	for k, e := range g.seen {
		if first || e.issued.Before(oldest) {
			oldestKey, oldest, first = k, e.issued, false
		}
	}
	delete(g.seen, oldestKey)
}
