package acd

import (
	"context"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/cluster"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/store"
	"ccpbx/store/pgtest"
)

// Two ACD nodes on one real PostgreSQL (store/pgtest), each with its own
// store handle, cluster.Node and virtual-time harness, sharing one agent.

type pgNode struct {
	h    *harness
	st   *store.Store
	node *cluster.Node
	stop func() // closes the node (it stops renewing: a crash to its peers)
}

// startPGNode opens a store on dsn, joins the cluster as id and starts an
// ACD on cfg that receives the node's events.
func startPGNode(t *testing.T, dsn, id string, cfg config.Callcenter) *pgNode {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenConfig(ctx, store.Config{Driver: store.Postgres, DSN: dsn, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.EnableNotices(id); err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Start(ctx, st, cluster.Config{Node: id, TTL: time.Second, ConfigHash: "test", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, cfg, st, baseEpoch, withCluster(n.ACDView()))
	routed := make(chan struct{})
	go func() {
		defer close(routed)
		for ev := range n.Events() {
			switch ev.Kind {
			case cluster.Notice:
				h.acd.Notice(ev.Notice.Kind, ev.Notice.Key, ev.Notice.From)
			case cluster.Adopted:
				h.acd.Adopted(ev.Adopt.Members, ev.Adopt.Agents)
			case cluster.Fenced:
				h.acd.Fenced()
			case cluster.Rejoined:
				h.acd.Rejoined()
			}
		}
	}()
	p := &pgNode{h: h, st: st, node: n}
	closed := false
	p.stop = func() {
		if !closed {
			closed = true
			n.Close()
			<-routed
		}
	}
	// Runs before the harness's cleanup (LIFO): no events reach a closed
	// ACD.
	t.Cleanup(p.stop)
	return p
}

func sharedAgentConfig() config.Callcenter {
	cfg := queueCfg("longest-idle-agent", func(q *config.Queue) { q.AbandonedResumeAllowed = true })
	cfg.Agents = []config.Agent{{Name: "1001", Type: "callback", Contact: "user/1001", Status: config.StatusAvailable}}
	cfg.Tiers = []config.Tier{{Queue: q1, Agent: "1001", Level: 1, Position: 1}}
	return cfg
}

func (p *pgNode) agentState() config.AgentState {
	return p.h.agent("1001").State
}

func claimsOf(t *testing.T, st *store.Store) []store.ClaimRow {
	t.Helper()
	c, err := st.Claims(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClusterTwoNodesShareOneAgent: a caller on each node, one agent: the
// agent rings for exactly one of them; the other caller gets it once the
// first call ends, on its own node.
func TestClusterTwoNodesShareOneAgent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := startPGNode(t, dsn, "node-a", sharedAgentConfig())
	b := startPGNode(t, dsn, "node-b", sharedAgentConfig())
	// a seeds the agent through its write-behind persister; b may start
	// before that row lands and learns the status from a's notice.
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return b.h.agent("1001").Status == config.StatusAvailable }, "seeded once, mirrored by b")

	a.h.call("5550001", q1, nil)
	leg := a.h.bridged(a.h.dialFor("1001"))
	claims := claimsOf(t, a.st)
	if len(claims) != 1 || claims[0].Node != "node-a" || claims[0].Agent != "1001" {
		t.Fatalf("claims %+v, want 1001 held by node-a", claims)
	}
	// b learns that the agent is in a call on a, and its caller waits.
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return b.agentState() == config.StateInAQueueCall }, "b mirrors 1001 In a queue call")
	b.h.call("5550002", q1, nil)
	b.h.noDial()
	eq(t, "serving system", a.h.agent("1001").InstanceID, "node-a")

	// The first call ends: a writes the agent Waiting, then releases the
	// claim; b's caller gets the agent.
	leg.Hangup(call.NormalClearing)
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		ag := b.h.agent("1001")
		return ag.State == config.StateWaiting && ag.LastBridgeEnd == baseEpoch
	}, "b mirrors the end of a's call")
	// Offered from the next second on, as on a single box.
	b.h.advance(1)
	r := b.h.dialFor("1001")
	eq(t, "b's caller", r.opts.Caller.Var("caller_id_number"), "5550002")
	claims = claimsOf(t, b.st)
	if len(claims) != 1 || claims[0].Node != "node-b" {
		t.Fatalf("claims %+v, want 1001 held by node-b", claims)
	}
	a.h.noDial()
	b.h.bridged(r)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.agentState() == config.StateInAQueueCall }, "a mirrors 1001 In a queue call")
}

// TestClusterDeadNodeAgentAdopted: a node dies holding the agent's claim
// in a call; the survivor adopts it, the agent is Waiting again (its tier
// in another queue, Standby during the dead node's offer, Ready again) and
// the survivor's caller gets it, and the dead node's caller is kept
// Abandoned with its place for a call back.
func TestClusterDeadNodeAgentAdopted(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	cfg := sharedAgentConfig()
	const q2 = "q2@default"
	cfg.Queues = append(cfg.Queues, config.Queue{Name: q2, Strategy: "longest-idle-agent"})
	cfg.Tiers = append(cfg.Tiers, config.Tier{Queue: q2, Agent: "1001", Level: 1, Position: 1})
	for i := range cfg.Queues {
		cfg.Queues[i].SetDefaults()
	}
	a := startPGNode(t, dsn, "node-a", cfg)
	b := startPGNode(t, dsn, "node-b", cfg)

	b.h.call("5550002", q1, nil)
	b.h.bridged(b.h.dialFor("1001"))
	var bMember string
	b.h.acd.do(func() {
		for _, m := range b.h.acd.members {
			bMember = m.UUID
		}
	})
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.agentState() == config.StateInAQueueCall }, "a mirrors 1001 In a queue call")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.h.tierState(q2, "1001") == "Standby" }, "a mirrors 1001's other tier Standby")
	// a's caller waits in q2, where 1001's tier is Standby.
	a.h.call("5550001", q2, nil)
	a.h.noDial()

	// b stops renewing its lease: a declares it dead and adopts it (after
	// an unbroken TTL of its own renewals, which a loaded machine delays:
	// the bound is generous).
	b.stop()
	pbxtest.WaitFor(t, 60*time.Second, func() bool {
		for _, c := range claimsOf(t, a.st) {
			if c.Node == "node-b" {
				return false
			}
		}
		return true
	}, "a adopts b's claim")
	r := a.h.dialFor("1001")
	eq(t, "a's caller", r.opts.Caller.Var("caller_id_number"), "5550001")
	claims := claimsOf(t, a.st)
	if len(claims) != 1 || claims[0].Node != "node-a" {
		t.Fatalf("claims %+v, want 1001 held by node-a", claims)
	}
	row, ok, err := a.st.LoadMember(context.Background(), bMember)
	if err != nil || !ok || row.State != "Abandoned" || row.InstanceID != "node-a" {
		t.Fatalf("b's member after adoption: %+v %v %v", row, ok, err)
	}
	var kept bool
	a.h.acd.do(func() { _, kept = a.h.acd.members[bMember] })
	eq(t, "adopted member kept for resume on a", kept, true)
	// a offers 1001 in q2 now: its q1 tier is Standby, by a's own offer.
	eq(t, "q1 tier during a's offer", a.h.tierState(q1, "1001"), "Standby")
}

// BenchmarkClusterJoinToOriginate is BenchmarkJoinToOriginate on a cluster
// node: the agent is claimed in PostgreSQL (store/pgtest, on this machine)
// before it is offered, off the loop. The difference between the two is
// the price of the claim: one database round trip and a message back to
// the loop.
func BenchmarkClusterJoinToOriginate(b *testing.B) {
	dsn := pgtest.NewDatabase(b)
	ctx := context.Background()
	st, err := store.OpenConfig(ctx, store.Config{Driver: store.Postgres, DSN: dsn, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.EnableNotices("bench"); err != nil {
		b.Fatal(err)
	}
	n, err := cluster.Start(ctx, st, cluster.Config{Node: "bench", TTL: 3 * time.Second, ConfigHash: "bench", Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	core := call.NewCore("bench", quietLog())
	ep := &ringingEndpoint{dialed: make(chan time.Time, 1)}
	core.RegisterEndpoint("user", ep)
	a, err := New(queueCfg("longest-idle-agent", nil), core, st, Options{Log: quietLog(), Cluster: n.ACDView()})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	a.command("agent add a Callback")
	a.command("agent set contact a [call_timeout=60]user/a")
	a.command("tier add " + q1 + " a")
	a.command("agent set status a Available")
	settled := func() bool {
		r, ok, err := st.LoadAgent(ctx, "a")
		if err != nil || !ok || r.Status != "Available" || r.State != "Waiting" {
			return false
		}
		c, err := st.Claims(ctx)
		return err == nil && len(c) == 0
	}
	pbxtest.WaitFor(b, 10*time.Second, settled, "agent a Available in the database")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch := core.NewChannel(call.ChannelSpec{Name: "bench", Vars: map[string]string{"caller_id_number": "1"}})
		ch.MarkAnswered()
		start := time.Now()
		var m *Member
		a.do(func() { m = a.join(ch, q1).m })
		at := <-ep.dialed
		lat = append(lat, at.Sub(start))
		b.StopTimer()
		a.do(func() { a.leave(m, config.ReasonBreakOut); a.dropMember(m) })
		ch.Hangup(call.NormalClearing)
		// The released claim and the agent's Waiting row reach the
		// database before the next join.
		pbxtest.WaitFor(b, 10*time.Second, settled, "agent a free in the database")
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}
