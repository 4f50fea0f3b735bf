package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/store"
	"ccpbx/store/pgtest"
)

// TestClusterStatusLayout: nodes and claims as |-separated listings, the
// node whose call-center configuration drifted marked.
func TestClusterStatusLayout(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	got := formatClusterStatus(store.NodeFence{Node: "node-a", Incarnation: 3}, true, "abc",
		[]store.NodeState{
			{Node: "node-a", Incarnation: 3, RenewSeq: 40, Age: 120 * time.Millisecond, ConfigHash: "abc"},
			{Node: "node-b", Incarnation: 1, RenewSeq: 7, Age: 4 * time.Second, Dead: true, Adopted: true, ConfigHash: "def"},
		},
		[]store.ClaimRow{{Claim: store.Claim{Agent: "1001", Queue: "3000@default", MemberUUID: "m-1"}, Node: "node-a",
			Incarnation: 3, Epoch: 17, ClaimedAt: at}})
	want := `node node-a incarnation 3: healthy
node|incarnation|renew_seq|renew_age|dead|adopted|config_hash
node-a|3|40|120ms|false|false|abc
node-b|1|7|4s|true|true|def*
* config hash differs from this node's: the [callcenter] sections are not the same
agent|queue|member_uuid|node|incarnation|epoch|claimed_at
1001|3000@default|m-1|node-a|3|17|2026-12-02T16:00:00Z
+OK
`
	if got != want {
		t.Errorf("cluster status:\n%s\nwant:\n%s", got, want)
	}
	if s := formatClusterStatus(store.NodeFence{Node: "n", Incarnation: 1}, false, "", nil, nil); !strings.Contains(s, "NOT HEALTHY") {
		t.Errorf("unhealthy node not shown: %s", s)
	}
}

// TestConfigHashStable: two loads of one file hash alike (the section
// holds pointers), a changed queue does not.
func TestConfigHashStable(t *testing.T) {
	load := func() *config.Config {
		c, err := config.Load("../../config.toml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := load(), load()
	if configHash(a) != configHash(b) {
		t.Errorf("one file, two hashes: %s %s", configHash(a), configHash(b))
	}
	b.Callcenter.Queues[0].Strategy = "ring-all"
	if configHash(a) == configHash(b) {
		t.Error("a changed strategy kept the hash")
	}
}

// TestClusterCommandUsage: `ccpbx cluster` without status explains itself.
func TestClusterCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"cluster", "drain"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "usage: ccpbx cluster status") {
		t.Errorf("stderr %q", errb.String())
	}
	for _, args := range [][]string{{"cluster"}, {"cluster", "acd", "1001", "1002"}, {"cluster", "status", "1001"}, {"cluster", "-bogus"}} {
		errb.Reset()
		if code := run(args, strings.NewReader(""), &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// clusterNode configures testPBX as node id of a cluster on dsn, with the
// shipped agents written Logged Out (a restart must not apply that to
// the shared agents).
func clusterNode(dsn, id string) func(*config.Config) {
	return func(c *config.Config) {
		c.Store = config.Store{Driver: config.StorePostgres, DSN: dsn}
		c.Cluster = config.Cluster{NodeID: id, LeaseTTL: config.Duration{Duration: time.Second},
			RenewInterval: config.Duration{Duration: 300 * time.Millisecond}}
		for i := range c.Callcenter.Agents {
			c.Callcenter.Agents[i].Status = config.StatusLoggedOut
		}
	}
}

// TestClusterNodesShareAgents: two nodes on one PostgreSQL see each other
// in `cluster status`; an agent's status set on one shows on the other
// (with its event there); a node's restart seeds nothing over the shared
// agents (FreeSWITCH #3091); the node exports its cluster metrics.
func TestClusterNodesShareAgents(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := testPBX(t, clusterNode(dsn, "node-a"))
	b := testPBX(t, clusterNode(dsn, "node-b"))
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		s := a.api(t, "cluster status")
		return strings.Contains(s, "\nnode-a|") && strings.Contains(s, "\nnode-b|")
	}, "both nodes in a's cluster status")
	if s := a.api(t, "cluster status"); !strings.HasPrefix(s, "node node-a incarnation ") || !strings.HasSuffix(s, "+OK\n") {
		t.Errorf("cluster status:\n%s", s)
	}
	if s := a.api(t, "cluster acd 1001"); !strings.HasPrefix(s, "node node-a: offering;") || !strings.Contains(s, "\n1001|") {
		t.Errorf("cluster acd:\n%s", s)
	}

	events, stop := b.core.Bus.Subscribe(64, func(e *call.Event) bool {
		return e.Get("CC-Action") == "agent-status-change" && e.Get("CC-Agent") == "1001"
	})
	defer stop()
	if r := a.api(t, "callcenter_config agent set status 1001 Available"); r != "+OK\n" {
		t.Fatalf("set status: %q", r)
	}
	select {
	case e := <-events:
		if e.Get("CC-Agent-Status") != "Available" {
			t.Errorf("b's event: %s", e.Get("CC-Agent-Status"))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no agent-status-change on b for a's change")
	}
	eq := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	eq("b's status of 1001", agentField(t, b, "1001", "status"), "Available")

	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	b.shutdown(sctx)
	b2 := testPBX(t, clusterNode(dsn, "node-b"))
	eq("1001 after b's restart, on b", agentField(t, b2, "1001", "status"), "Available")
	eq("1001 after b's restart, on a", agentField(t, a, "1001", "status"), "Available")

	families, err := a.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		found[f.GetName()] = true
	}
	for _, n := range []string{"ccpbx_cluster_healthy", "ccpbx_cluster_claims_total", "ccpbx_cluster_claims_lost_total",
		"ccpbx_cluster_fenced_writes_total", "ccpbx_cluster_adoptions_total"} {
		if !found[n] {
			t.Errorf("metric %s not exported", n)
		}
	}
}

// TestSingleBoxHasNoClusterMetrics: without [cluster] nothing of it is
// exported or registered.
func TestSingleBoxHasNoClusterMetrics(t *testing.T) {
	p := testPBX(t, nil)
	families, err := p.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "ccpbx_cluster_") {
			t.Errorf("single box exports %s", f.GetName())
		}
	}
	if r := p.api(t, "cluster status"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("cluster status on a single box: %q", r)
	}
	// `cluster acd` is the ACD's own view, on a single box too.
	for _, cmd := range []string{"cluster acd", "cluster  ACD ", "cluster acd\t1001"} {
		if r := p.api(t, cmd); !strings.HasPrefix(r, "single_box: not a cluster node") || !strings.Contains(r, "\n1001|") {
			t.Errorf("%q on a single box: %q", cmd, r)
		}
	}
	for _, bad := range []string{"cluster", "cluster acd 1001 1002", "cluster status now", "cluster \x00", "cluster acd nobody"} {
		if r := p.api(t, bad); !strings.HasPrefix(r, "-USAGE") && !strings.HasPrefix(r, "-ERR") {
			t.Errorf("%q: %q", bad, r)
		}
	}
}

// TestClusterOneAgentTwoNodesSIP: the whole PBX twice, in process, on one
// PostgreSQL; agent 1001's phone registers with node a, and node b rings it
// too once it has re-read the shared bindings (registrar Config.Resync). A
// customer on each node, one agent: the phone rings for a's call only
// while it is up, then node b's caller gets the agent through b. Real SIP,
// RTP and claims.
//
// (It had a phone registered on each node, from when bindings were per
// node; since nodes share them, a's offer forked to both phones whenever a
// resync came first, and b's phone then held a cancelled call that the
// test took for b's offer.)
func TestClusterOneAgentTwoNodesSIP(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a := testPBX(t, clusterNode(dsn, "node-a"))
	b := testPBX(t, clusterNode(dsn, "node-b"))
	phone := agentPhone(t, a, "1001")
	for _, cmd := range []string{"agent set wrap_up_time 1001 0", "agent set status 1001 Available"} {
		if r := a.api(t, "callcenter_config "+cmd); r != "+OK\n" {
			t.Fatalf("%s: %q", cmd, r)
		}
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return agentField(t, b, "1001", "status") == "Available" }, "b sees 1001 Available")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return len(b.reg.Lookup("1001")) == 1 }, "b sees 1001's binding")

	trunk := testphone.New(t)
	custA := trunkCall(t, a, trunk, "5550001")
	inA := answerAndTalk(t, phone, custA)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return agentField(t, b, "1001", "state") == "In a queue call" }, "b sees 1001 in a's call")
	custB := trunkCall(t, b, trunk, "5550002")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// b's caller waits while the agent talks on a: the one claim is a's.
	// (Had b rung 1001 meanwhile, that INVITE would be the phone's next
	// incoming call, already cancelled, and answering it below fails.)
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(b.api(t, "callcenter_config queue list members 3000@default"), "|Waiting|")
	}, "b's caller waiting")
	if s := b.api(t, "cluster status"); !strings.Contains(s, "\n1001|3000@default|") || !strings.Contains(s, "|node-a|") {
		t.Errorf("cluster status while a holds 1001:\n%s", s)
	}
	if err := custA.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inA.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	inB := answerAndTalk(t, phone, custB)
	if err := custB.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inB.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		return agentField(t, a, "1001", "state") == "Waiting" && agentField(t, b, "1001", "state") == "Waiting"
	}, "1001 Waiting on both nodes")
}
