package acd

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/store"
)

// fakeCluster is the claim table of a PostgreSQL cluster in memory: one
// claim per agent, one winner; it records claims and releases in order.
type fakeCluster struct {
	node string
	mu   sync.Mutex
	// claims: agent → holding node; epochs: agent → epoch.
	claims  map[string]string
	epochs  map[string]int64
	epoch   int64
	fenced  bool
	log     []string
	agents  map[string]store.AgentRow
	tiers   map[string]store.TierRow
	members map[string]store.MemberRow
	// agentLoads counts LoadAgent calls (mirror reads).
	agentLoads int
}

func newFakeCluster(node string) *fakeCluster {
	return &fakeCluster{node: node, claims: map[string]string{}, epochs: map[string]int64{},
		agents: map[string]store.AgentRow{}, tiers: map[string]store.TierRow{}, members: map[string]store.MemberRow{}}
}

func (f *fakeCluster) Node() string { return f.node }

func (f *fakeCluster) ClaimAgent(_ context.Context, agent, queue, member string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fenced {
		f.log = append(f.log, "fenced "+agent)
		return 0, fmt.Errorf("claim %s: %w", agent, ErrFenced)
	}
	if n, ok := f.claims[agent]; ok {
		f.log = append(f.log, "lost "+agent+" to "+n)
		return 0, fmt.Errorf("claim %s: %w", agent, ErrClaimLost)
	}
	f.epoch++
	f.claims[agent], f.epochs[agent] = f.node, f.epoch
	f.log = append(f.log, "claim "+agent)
	return f.epoch, nil
}

func (f *fakeCluster) ReleaseClaim(_ context.Context, agent string, epoch int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claims[agent] == f.node && f.epochs[agent] == epoch {
		delete(f.claims, agent)
		f.log = append(f.log, "release "+agent)
	}
	return nil
}

func (f *fakeCluster) LoadAgent(_ context.Context, name string) (store.AgentRow, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agentLoads++
	r, ok := f.agents[name]
	return r, ok, nil
}

func (f *fakeCluster) LoadTier(_ context.Context, queue, agent string) (store.TierRow, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.tiers[store.TierKey(queue, agent)]
	return r, ok, nil
}

func (f *fakeCluster) LoadMember(_ context.Context, uuid string) (store.MemberRow, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.members[uuid]
	return r, ok, nil
}

// holdElsewhere makes another node hold agent's claim.
func (f *fakeCluster) holdElsewhere(agent, node string) {
	f.mu.Lock()
	f.claims[agent] = node
	f.mu.Unlock()
}

func (f *fakeCluster) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func withCluster(c Cluster) func(*Options) { return func(o *Options) { o.Cluster = c } }

// TestClusterLostClaimNextAgent: the first agent in strategy order is
// claimed by another node, so it never rings here; the caller gets the
// next agent, and the first is tried again once a notice says its claim
// moved.
func TestClusterLostClaimNextAgent(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("top-down", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1:1:1", "a2:1:2")
	fc.holdElsewhere("a1", "node-b")
	h.call("5550001", q1, nil)
	r := h.nextDial()
	eq(t, "dialed", dialed(r), "a2")
	h.noDial()
	eq(t, "claims", fc.events(), []string{"lost a1 to node-b", "claim a2"})
	eq(t, "a1 state", h.get("state", "a1"), "Waiting")
	var sys string
	h.acd.do(func() {
		for _, m := range h.acd.members {
			sys = m.ServingSystem
		}
	})
	eq(t, "serving_system", sys, "node-a")

	// a2 does not answer: the claim is released after its Waiting row.
	r.fail(call.NoAnswer)
	h.acd.settle()
	// a1 is still held elsewhere (no notice yet) and a2 is in its
	// no-answer delay: nobody rings.
	h.noDial()
	fc.mu.Lock()
	delete(fc.claims, "a1")
	fc.mu.Unlock()
	h.acd.Notice(NoticeClaim, "a1", "node-b")
	eq(t, "after the claim notice", dialed(h.nextDial()), "a1")
}

// TestClusterClaimReleasedAfterAgentRow: the release follows the write of
// the agent's row with its new state, in the persister's order, so the
// next node to win the agent reads the state this node left.
func TestClusterClaimReleasedAfterAgentRow(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fc := newFakeCluster("node-a")
	rec := &recordingStore{Store: st, fc: fc}
	h := newHarness(t, queueCfg("longest-idle-agent", nil), rec, baseEpoch, withCluster(fc))
	h.agents("a1")
	h.call("5550001", q1, nil)
	r := h.nextDial()
	r.fail(call.UserBusy)
	h.acd.settle()
	h.acd.Close()
	ev := fc.events()
	last := ev[len(ev)-1]
	eq(t, "last", last, "release a1")
	eq(t, "before release", ev[len(ev)-2], "upsert a1 Waiting")
}

// recordingStore logs agent upserts (one by one or in the persister's
// batches) into the fake cluster's log.
type recordingStore struct {
	*store.Store
	fc *fakeCluster
}

func (r *recordingStore) UpsertAgent(ctx context.Context, a store.AgentRow) error {
	r.fc.mu.Lock()
	r.fc.log = append(r.fc.log, "upsert "+a.Name+" "+a.State)
	r.fc.mu.Unlock()
	return r.Store.UpsertAgent(ctx, a)
}

func (r *recordingStore) ApplyCallcenter(ctx context.Context, ws []store.CallcenterWrite) error {
	r.fc.mu.Lock()
	for _, w := range ws {
		if w.Kind == store.UpsertAgentWrite {
			r.fc.log = append(r.fc.log, "upsert "+w.Agent.Name+" "+w.Agent.State)
		}
	}
	r.fc.mu.Unlock()
	return r.Store.ApplyCallcenter(ctx, ws)
}

// TestClusterFenced: a node declared dead ends its queue calls (the
// ringing offer is cancelled, the caller hung up; the survivor released
// the claim and adopted the member) without writing the agent back, offers
// nothing while fenced, and offers again once it rejoined.
func TestClusterFenced(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1")
	c1 := h.call("5550001", q1, nil)
	r := h.nextDial()
	h.acd.Fenced()
	<-r.ctx.Done()
	c1.wait(t)
	h.acd.settle()
	eq(t, "no release by the fenced node", fc.events(), []string{"claim a1"})
	// The adopter released the claim and set the agent Waiting.
	ag := h.agent("a1")
	row := ag.row()
	row.State = string(config.StateWaiting)
	fc.mu.Lock()
	delete(fc.claims, "a1")
	fc.agents["a1"] = row
	fc.mu.Unlock()
	h.acd.Notice(NoticeAgent, "a1", "node-b")
	for e := h.waitAction("agent-state-change"); e.Get("CC-Agent-State") != "Waiting"; e = h.waitAction("agent-state-change") {
	}
	eq(t, "tier", h.tierState(q1, "a1"), "Offering")
	fc.mu.Lock()
	fc.tiers[store.TierKey(q1, "a1")] = store.TierRow{Queue: q1, Agent: "a1", State: "Ready", Level: 1, Position: 1}
	fc.mu.Unlock()
	h.acd.Notice(NoticeTier, store.TierKey(q1, "a1"), "node-b")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return h.tierState(q1, "a1") == "Ready" }, "tier mirrored Ready")
	c2 := h.call("5550002", q1, nil)
	h.advance(2)
	h.noDial()
	h.acd.do(func() {
		for _, m := range h.acd.members {
			if m.app != nil {
				fc.members[m.UUID] = m.row()
			}
		}
	})
	h.acd.Rejoined()
	h.acd.settle()
	r = h.nextDial()
	eq(t, "offered to", r.opts.Caller.Var("caller_id_number"), "5550002")
	eq(t, "second caller up", c2.ch.Ready(), true)

	// A claim refused for a fence the event has not reported yet.
	fc2 := newFakeCluster("node-a")
	fc2.fenced = true
	h2 := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch, withCluster(fc2))
	h2.agents("a1")
	h2.call("5550001", q1, nil)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return len(fc2.events()) > 0 }, "claim tried")
	h2.noDial()
	eq(t, "fenced claim", fc2.events()[0], "fenced a1")
	eq(t, "a1 state", h2.get("state", "a1"), "Waiting")
}

// TestClusterMirrorAgent: a notice applies another node's agent row: the
// status always (On Break cancels the ringing offer here, as a local
// `agent set status` would), the state only while this node does not
// hold the agent's claim.
func TestClusterMirrorAgent(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1", "a2")
	setRow := func(name string, f func(*store.AgentRow)) {
		ag := h.agent(name)
		r := ag.row()
		f(&r)
		fc.mu.Lock()
		fc.agents[name] = r
		fc.mu.Unlock()
	}

	// a2 is not held here: its state comes from another node's row, with
	// the event a local change fires.
	setRow("a2", func(r *store.AgentRow) { r.State = string(config.StateInAQueueCall) })
	h.acd.Notice(NoticeAgent, "a2", "node-b")
	e := h.waitAction("agent-state-change")
	eq(t, "mirrored state", e.Get("CC-Agent")+" "+e.Get("CC-Agent-State"), "a2 In a queue call")

	h.call("5550001", q1, nil)
	r := h.nextDial()
	eq(t, "offered", dialed(r), "a1")
	h.drain()

	// While a1 rings here, another node writes its row: status On Break
	// and a stale state; only the status is taken, and it cancels the
	// ringing offer as a local `agent set status` does.
	setRow("a1", func(r *store.AgentRow) {
		r.Status, r.State = string(config.StatusOnBreak), string(config.StateIdle)
	})
	h.acd.Notice(NoticeAgent, "a1", "node-b")
	e = h.waitAction("agent-status-change")
	eq(t, "status event", e.Get("CC-Agent")+" "+e.Get("CC-Agent-Status"), "a1 On Break")
	<-r.ctx.Done()
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return !h.agent("a1").held }, "offer ended")
	eq(t, "held agent's state", h.agent("a1").State, config.StateWaiting)
	// a2 is busy on the other node, a1 on break: nobody rings.
	h.noDial()

	// Own notices are ignored; a deleted agent disappears.
	h.acd.Notice(NoticeAgent, "a2", "node-a")
	fc.mu.Lock()
	delete(fc.agents, "a2")
	fc.mu.Unlock()
	h.acd.Notice(NoticeAgent, "a2", "node-b")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return h.get("status", "a2") == errAgentNotFound }, "a2 deleted")
}

// TestClusterStaleStatusLoses: another node's whole-row write that still
// carries the status from before this node's newer change does not undo
// it (the last status change wins, by last_status_change).
func TestClusterStaleStatusLoses(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1")
	ag := h.agent("a1")
	stale := ag.row() // Available, from before the change below
	h.advance(5)
	h.mustOK("agent set status a1 'On Break'")
	stale.State = string(config.StateIdle)
	fc.mu.Lock()
	fc.agents["a1"] = stale
	fc.mu.Unlock()
	h.acd.Notice(NoticeAgent, "a1", "node-b")
	e := h.waitAction("agent-state-change")
	eq(t, "state mirrored", e.Get("CC-Agent-State"), "Idle")
	eq(t, "status kept", h.get("status", "a1"), "On Break")

	// A newer change on the other node wins.
	newer := h.agent("a1")
	row := newer.row()
	row.Status, row.LastStatusChange = string(config.StatusAvailable), baseEpoch+6
	fc.mu.Lock()
	fc.agents["a1"] = row
	fc.mu.Unlock()
	h.acd.Notice(NoticeAgent, "a1", "node-b")
	e = h.waitAction("agent-status-change")
	eq(t, "newer status", e.Get("CC-Agent-Status"), "Available")
}

// TestClusterAdoptedResume: members adopted from a dead node are kept
// Abandoned here with their joined_epoch, so the caller who calls back
// resumes its place.
func TestClusterAdoptedResume(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("longest-idle-agent", func(q *config.Queue) { q.AbandonedResumeAllowed = true }), nil, baseEpoch, withCluster(fc))
	h.acd.Adopted([]store.MemberRow{{Queue: q1, InstanceID: "node-a", UUID: "m-1", CIDNumber: "5550009",
		JoinedEpoch: baseEpoch - 100, AbandonedEpoch: baseEpoch, ServingSystem: "node-a", State: "Abandoned"}}, nil)
	h.acd.settle()
	h.call("5550009", q1, nil)
	var joined int64
	var inst string
	h.acd.do(func() {
		m := h.acd.members["m-1"]
		joined, inst = m.JoinedEpoch, m.InstanceID
	})
	eq(t, "joined kept", joined, baseEpoch-100)
	eq(t, "instance", inst, "node-a")

	// Another adopted caller calls back to node b, which resumes it: the
	// row is b's now, and a forgets it (it must not discard b's caller).
	h.acd.Adopted([]store.MemberRow{{Queue: q1, InstanceID: "node-a", UUID: "m-2", CIDNumber: "5550010",
		JoinedEpoch: baseEpoch - 50, AbandonedEpoch: baseEpoch, ServingSystem: "node-a", State: "Abandoned"}}, nil)
	fc.mu.Lock()
	fc.members["m-2"] = store.MemberRow{Queue: q1, InstanceID: "node-b", UUID: "m-2", CIDNumber: "5550010",
		JoinedEpoch: baseEpoch - 50, State: "Waiting"}
	fc.mu.Unlock()
	h.acd.Notice(NoticeMember, "m-2", "node-b")
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var gone bool
		h.acd.do(func() { _, kept := h.acd.members["m-2"]; gone = !kept })
		return gone
	}, "a forgets the caller b resumed")
}

// gatePersister holds a's persister until the returned open is called
// (also at cleanup): what a queues meanwhile waits, in order.
func gatePersister(t *testing.T, a *ACD) (open func()) {
	t.Helper()
	gate := make(chan struct{})
	opened := false
	open = func() {
		if !opened {
			opened = true
			close(gate)
		}
	}
	t.Cleanup(open)
	a.persist.addEffect(func(context.Context) error { <-gate; return nil })
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.persist.pending() == 0 }, "the persister runs the gate")
	return open
}

// TestClusterMirrorReadsCoalesce: notices for one row while its read waits
// (behind this node's writes) make one more read, not one each.
func TestClusterMirrorReadsCoalesce(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("top-down", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1:1:1")
	open := gatePersister(t, h.acd)
	for range 5 {
		h.acd.Notice(NoticeAgent, "a1", "node-b")
	}
	h.acd.settle()
	open()
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var idle bool
		h.acd.do(func() { idle = h.acd.mir.inFlight == 0 })
		return idle
	}, "mirror reads done")
	fc.mu.Lock()
	loads := fc.agentLoads
	fc.mu.Unlock()
	eq(t, "reads for five notices", loads, 2)
}

// TestClusterQueuedClaimReportsBack: a claim waiting in the persister when
// the node is fenced (its queued writes dropped) still runs and reports to
// the loop, so the agent is not left "claiming" (ineligible) for good.
func TestClusterQueuedClaimReportsBack(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1")
	open := gatePersister(t, h.acd)
	h.call("5550001", q1, nil)
	var claiming bool
	h.acd.do(func() { claiming = h.acd.agents["a1"].claiming })
	eq(t, "claim queued", claiming, true)
	fc.mu.Lock()
	fc.fenced = true
	fc.mu.Unlock()
	h.acd.Fenced()
	h.acd.settle()
	open()
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		var ag Agent
		h.acd.do(func() { ag = *h.acd.agents["a1"] })
		return !ag.claiming && ag.lastClaim == "fenced" && ag.retryAt == baseEpoch+1
	}, "the fenced claim reported back")
	h.noDial()
}
