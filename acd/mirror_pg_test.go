package acd

import (
	"context"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/store/pgtest"
)

// The mirror's stale-read race (the cluster test's "agent never offered"):
// another node's notice for an agent makes this node read the row from
// PostgreSQL while this node's own newer write of it still waits in the
// persister. The persister is held by a gate so the race happens every
// time; ready_time stands for every column the claim holder owns
// (last_offered_call, state, tiers' state).

// mirrorIdle waits until n has written everything queued and applied
// every mirror read.
func mirrorIdle(t *testing.T, n *pgNode) {
	t.Helper()
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var busy bool
		n.h.acd.do(func() { busy = n.h.acd.mir.inFlight > 0 || len(n.h.acd.mir.reading) > 0 || n.h.acd.mir.resyncing })
		if busy || n.h.acd.persist.pending() > 0 {
			return false
		}
		// The op the writer may be running ends before this one.
		done := make(chan struct{})
		n.h.acd.persist.addEffect(func(context.Context) error { close(done); return nil })
		<-done
		n.h.acd.settle()
		n.h.acd.do(func() { busy = n.h.acd.mir.inFlight > 0 })
		return !busy
	}, "mirror reads and writes done")
}

// startSharedPair starts nodes a and b sharing agent 1001, settled: the
// row seeded, both nodes' copies Available, nothing in flight.
func startSharedPair(t *testing.T) (a, b *pgNode) {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	a = startPGNode(t, dsn, "node-a", sharedAgentConfig())
	b = startPGNode(t, dsn, "node-b", sharedAgentConfig())
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		r, ok, err := a.st.LoadAgent(context.Background(), "1001")
		return err == nil && ok && r.Status == "Available" &&
			a.h.agent("1001").Status == "Available" && b.h.agent("1001").Status == "Available"
	}, "1001 seeded and Available on both nodes")
	mirrorIdle(t, a)
	mirrorIdle(t, b)
	return a, b
}

// TestClusterMirrorReadWaitsForLocalWrite: node a sets 1001's ready_time
// (its write queued), then node b writes 1001's row (b has not seen a's
// change: its row has the old ready_time) and a gets b's notice. a's read
// of the row must come after its own write: read before, it would take
// b's old ready_time over a's newer one, and nothing would correct it (a
// ignores its own notices).
func TestClusterMirrorReadWaitsForLocalWrite(t *testing.T) {
	a, b := startSharedPair(t)
	open := gatePersister(t, a.h.acd)
	ready := int64(baseEpoch + 100)
	a.h.mustOK("agent set ready_time 1001 " + itoa(ready))
	queued := a.h.acd.persist.pending()

	b.h.mustOK("agent set max_no_answer 1001 7")
	// a's read of 1001 for b's notice either ran already (it did not wait
	// for a's write) or waits behind it.
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		return a.h.agent("1001").MaxNoAnswer == 7 || a.h.acd.persist.pending() > queued
	}, "a reads 1001 for b's notice")
	eq(t, "a's ready_time while its write waits", a.h.agent("1001").ReadyTime, ready)

	open()
	mirrorIdle(t, a)
	eq(t, "a's ready_time after its write and the read", a.h.agent("1001").ReadyTime, ready)
	r, _, err := a.st.LoadAgent(context.Background(), "1001")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "ready_time in PostgreSQL", r.ReadyTime, ready)
	// b learns it from a's notice.
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return b.h.agent("1001").ReadyTime == ready }, "b mirrors a's ready_time")
}

// TestClusterMirrorReadDiscardedAfterLocalWrite: a's read of 1001 (for b's
// notice) is already queued when a sets 1001's ready_time; the read runs
// before that write lands, so its row is older than a's copy: it is
// discarded and the row read again behind the write.
func TestClusterMirrorReadDiscardedAfterLocalWrite(t *testing.T) {
	a, b := startSharedPair(t)
	open := gatePersister(t, a.h.acd)
	b.h.mustOK("agent set max_no_answer 1001 7")
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var reading bool
		a.h.acd.do(func() { reading = len(a.h.acd.mir.reading) > 0 })
		return reading
	}, "a's read of 1001 queued behind the gate")
	ready := int64(baseEpoch + 100)
	a.h.mustOK("agent set ready_time 1001 " + itoa(ready))

	open()
	mirrorIdle(t, a)
	eq(t, "a's ready_time", a.h.agent("1001").ReadyTime, ready)
	var discarded int64
	a.h.acd.do(func() { discarded = a.h.acd.mir.discarded })
	if discarded == 0 {
		t.Fatal("a's older read was not discarded")
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return b.h.agent("1001").ReadyTime == ready }, "b mirrors a's ready_time")
}

// TestClusterMirrorTierReadWaitsForLocalWrite: the tier's state, which
// a's offers set, is not undone by b's older tier row (the cluster test's
// BridgedKill failure: a tier left Offering here, the agent never offered
// again by this node).
func TestClusterMirrorTierReadWaitsForLocalWrite(t *testing.T) {
	a, b := startSharedPair(t)
	a.h.mustOK("tier set state " + q1 + " 1001 Standby")
	mirrorIdle(t, a)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return b.h.tierState(q1, "1001") == "Standby" }, "b mirrors the Standby tier")
	open := gatePersister(t, a.h.acd)
	a.h.mustOK("tier set state " + q1 + " 1001 Ready")
	queued := a.h.acd.persist.pending()
	b.h.mustOK("tier set level " + q1 + " 1001 2")
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var level int64
		a.h.acd.do(func() {
			if t := a.h.acd.findTier(q1, "1001"); t != nil {
				level = t.Level
			}
		})
		return level == 2 || a.h.acd.persist.pending() > queued
	}, "a reads the tier for b's notice")
	eq(t, "a's tier while its write waits", a.h.tierState(q1, "1001"), "Ready")
	open()
	mirrorIdle(t, a)
	eq(t, "a's tier", a.h.tierState(q1, "1001"), "Ready")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return b.h.tierState(q1, "1001") == "Ready" }, "b mirrors the Ready tier")
}

// TestClusterMirrorResyncKeepsLocalWrite: a resync (after a listener's
// reconnect) queued before this node's tier write reads the older row; the
// tier keeps this node's state and is read again behind the write.
func TestClusterMirrorResyncKeepsLocalWrite(t *testing.T) {
	a, _ := startSharedPair(t)
	open := gatePersister(t, a.h.acd)
	a.h.acd.Notice(NoticeResync, "", "node-b")
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var r bool
		a.h.acd.do(func() { r = a.h.acd.mir.resyncing })
		return r
	}, "a's resync queued behind the gate")
	a.h.mustOK("tier set state " + q1 + " 1001 Standby")
	open()
	mirrorIdle(t, a)
	eq(t, "a's tier after the resync", a.h.tierState(q1, "1001"), "Standby")
	var discarded int64
	a.h.acd.do(func() { discarded = a.h.acd.mir.discarded })
	if discarded == 0 {
		t.Fatal("the resync's older tier row was not set aside")
	}
}

// TestClusterHolderRewritesItsState: node a writes 1001's row from an
// older copy (Waiting) while b has 1001 in a call (a node seeding the
// agent as it starts did this in TestClusterDeadNodeAgentAdopted); b, the
// claim holder, writes its state again, so the shared row and a's copy
// say In a queue call.
func TestClusterHolderRewritesItsState(t *testing.T) {
	a, b := startSharedPair(t)
	b.h.call("5550002", q1, nil)
	b.h.bridged(b.h.dialFor("1001"))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.agentState() == "In a queue call" }, "a mirrors 1001 In a queue call")
	ctx := context.Background()
	row, _, err := a.st.LoadAgent(ctx, "1001")
	if err != nil {
		t.Fatal(err)
	}
	row.State = "Waiting"
	if err := a.st.UpsertAgent(ctx, row); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		r, _, err := a.st.LoadAgent(ctx, "1001")
		return err == nil && r.State == "In a queue call"
	}, "b writes 1001's state again")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.agentState() == "In a queue call" }, "a mirrors it")
}
