package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"ccpbx/store"
)

// The grace rule and self-fencing on a stepped clock, against a scripted
// database: a peer's renewals and outages are functions of the clock.

type scriptedDB struct {
	store.Cluster // calls the script does not expect panic
	now           *time.Time
	down          func(time.Time) bool        // the database does not answer
	peerRenews    func(time.Time) []time.Time // the peer's renewals so far
	marked        []time.Time
	dead          bool // b, once declared
}

func (d *scriptedDB) Heartbeat(_ context.Context, f store.NodeFence) ([]store.NodeState, error) {
	if d.down(*d.now) {
		return nil, context.DeadlineExceeded
	}
	renews := d.peerRenews(*d.now)
	last := time.Time{}
	if len(renews) > 0 {
		last = renews[len(renews)-1]
	}
	return []store.NodeState{
		{Node: f.Node, Incarnation: f.Incarnation},
		{Node: "b", Incarnation: 1, RenewSeq: int64(len(renews)), Age: d.now.Sub(last), Dead: d.dead, Adopted: d.dead},
	}, nil
}

func (d *scriptedDB) MarkDead(context.Context, store.NodeFence, string, int64) (bool, error) {
	d.marked = append(d.marked, *d.now)
	d.dead = true
	return true, nil
}

func (d *scriptedDB) AdoptNode(context.Context, store.NodeFence, string, int64) (store.AdoptResult, error) {
	return store.AdoptResult{}, nil
}

// every lists the renewals a peer renewing every period from first made
// until now, skipping those for which skip is true.
func every(first, period time.Duration, until time.Duration, skip func(time.Duration) bool) func(time.Time) []time.Time {
	return func(now time.Time) []time.Time {
		var out []time.Time
		for t := first; t <= until && epoch.Add(t).Compare(now) <= 0; t += period {
			if skip == nil || !skip(t) {
				out = append(out, epoch.Add(t))
			}
		}
		return out
	}
}

var epoch = time.Unix(1_800_000_000, 0)

const (
	gTTL   = 3 * time.Second
	gRenew = time.Second
)

// run steps the clock by gRenew from 1 s to end, renewing at each step
// unless stalled says the process did not run then; it returns when the
// peer was declared dead (zero: never) and whether a was healthy at each
// step.
func run(t *testing.T, db *scriptedDB, end time.Duration, stalled func(time.Duration) bool) (time.Duration, map[time.Duration]bool) {
	t.Helper()
	now := epoch
	db.now = &now
	n := &Node{
		cfg: Config{Node: "a", TTL: gTTL, Renew: gRenew}, st: db,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), q: newQueue(16), kick: make(chan struct{}, 1),
		fence: store.NodeFence{Node: "a", Incarnation: 1}, lastOK: now, now: func() time.Time { return now },
	}
	lv := &liveness{seqs: map[string]int64{}, windowStart: now, prevOK: true, prevSent: now, hashes: map[string]string{}}
	healthy := map[time.Duration]bool{}
	for at := gRenew; at <= end; at += gRenew {
		now = epoch.Add(at)
		if stalled == nil || !stalled(at) {
			n.renew(context.Background(), lv)
		}
		healthy[at] = n.Healthy()
	}
	if len(db.marked) == 0 {
		return 0, healthy
	}
	return db.marked[0].Sub(epoch), healthy
}

func up(time.Time) bool { return false }

func TestGraceRuleDeclaresADeadPeerOneTTLAfterItsLastRenewal(t *testing.T) {
	// b renews at 0.5, 1.5, 2.5 and dies.
	db := &scriptedDB{down: up, peerRenews: every(500*time.Millisecond, gRenew, 2500*time.Millisecond, nil)}
	at, _ := run(t, db, 20*time.Second, nil)
	// Age 3 s at 5.5: the renewal at 6 s sees it.
	if at != 6*time.Second {
		t.Fatalf("declared dead at %v, want 6s (its last renewal 2.5s + TTL 3s, at the next renewal)", at)
	}
	if len(db.marked) != 1 {
		t.Errorf("declared %d times", len(db.marked))
	}
}

func TestGraceRuleSparesALivePeer(t *testing.T) {
	// b renews every 2.9 s: late for a renewal period, never for a TTL.
	db := &scriptedDB{down: up, peerRenews: every(500*time.Millisecond, 2900*time.Millisecond, time.Hour, nil)}
	if at, _ := run(t, db, 60*time.Second, nil); at != 0 {
		t.Fatalf("a live peer declared dead at %v", at)
	}
}

func TestGraceRuleSparesEveryoneAfterADatabaseOutage(t *testing.T) {
	// The database is down from 2.2 s to 10.2 s: nobody renews. b comes
	// back 2.8 s after it (its own backoff), which is within a TTL of a's
	// first renewal after the outage (11 s).
	down := func(now time.Time) bool {
		d := now.Sub(epoch)
		return d > 2200*time.Millisecond && d < 10200*time.Millisecond
	}
	db := &scriptedDB{down: down, peerRenews: every(500*time.Millisecond, gRenew, time.Hour, func(t time.Duration) bool {
		return t > 2200*time.Millisecond && t < 13*time.Second
	})}
	at, healthy := run(t, db, 30*time.Second, nil)
	if at != 0 {
		t.Fatalf("peer declared dead at %v because of a database outage", at)
	}
	// Self-fencing: unhealthy once renewals failed for TTL − TTL/6 = 2.5 s
	// after the last success (2 s), healthy again at the first success.
	for at, want := range map[time.Duration]bool{2 * time.Second: true, 4 * time.Second: true, 5 * time.Second: false,
		10 * time.Second: false, 11 * time.Second: true} {
		if healthy[at] != want {
			t.Errorf("healthy at %v = %v, want %v", at, healthy[at], want)
		}
	}
}

func TestGraceRuleStillSeesADeathAfterAnOutage(t *testing.T) {
	// Same outage; b never comes back: one unbroken TTL of a's renewals
	// after the outage (11 s → 14 s) and it is dead.
	down := func(now time.Time) bool {
		d := now.Sub(epoch)
		return d > 2200*time.Millisecond && d < 10200*time.Millisecond
	}
	db := &scriptedDB{down: down, peerRenews: every(500*time.Millisecond, gRenew, 1500*time.Millisecond, nil)}
	if at, _ := run(t, db, 30*time.Second, nil); at != 14*time.Second {
		t.Fatalf("declared dead at %v, want 14s", at)
	}
}

func TestGraceRuleSparesEveryoneAfterThisNodeStalled(t *testing.T) {
	// a's process does not run from 3 s to 9 s (GC, SIGSTOP, a VM
	// pause): when it runs again every lease it sees is old, but only to
	// it. b keeps renewing all along.
	stalled := func(at time.Duration) bool { return at >= 3*time.Second && at <= 9*time.Second }
	db := &scriptedDB{down: up, peerRenews: every(500*time.Millisecond, gRenew, time.Hour, func(t time.Duration) bool {
		// What a's first renewal after the stall sees: b's row as of its
		// last renewal before, as if its latest ones were still in flight.
		return t > 2*time.Second && t < 10*time.Second
	})}
	if at, _ := run(t, db, 30*time.Second, stalled); at != 0 {
		t.Fatalf("peer declared dead at %v after this node's own stall", at)
	}
}
