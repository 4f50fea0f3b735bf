package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ccpbx/internal/pbxtest"
	"ccpbx/store/pgtest"
)

// The cluster state on a real PostgreSQL: several Store handles on one
// database stand for several nodes.

func openPG(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := OpenConfig(context.Background(), Config{Driver: Postgres, DSN: dsn, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func join(t *testing.T, s *Store, node string) NodeFence {
	t.Helper()
	f, err := s.JoinCluster(context.Background(), node, "hash-"+node)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// listenOn subscribes r for the test; stop ends the subscription and
// waits for its channel to close (cleanup does it too).
func listenOn(t *testing.T, r *Store) (ch <-chan Notice, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := r.Listen(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stop = func() {
		cancel()
		for range ch {
		}
	}
	t.Cleanup(stop)
	return ch, stop
}

// adminConn is a connection of the test's own, outside any store.
func adminConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// renewSeq is node's renew_seq in a Heartbeat's answer.
func renewSeq(t *testing.T, states []NodeState, node string) int64 {
	t.Helper()
	for _, s := range states {
		if s.Node == node {
			return s.RenewSeq
		}
	}
	t.Fatalf("node %s not in %+v", node, states)
	return 0
}

// nextNotice waits for the next notice that is not a node's own join or
// death announcement (those come from the tests' setup).
func nextNotice(t *testing.T, ch <-chan Notice) Notice {
	t.Helper()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for {
		select {
		case n, ok := <-ch:
			if !ok {
				t.Fatal("notice channel closed")
			}
			if n.Kind == NoticeNode {
				continue
			}
			return n
		case <-timer.C:
			t.Fatal("no notice within 20 s")
		}
	}
}

func TestClusterUnsupportedOnSQLite(t *testing.T) {
	s, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	f := NodeFence{Node: "n1", Incarnation: 1}
	_, e1 := s.JoinCluster(ctx, "n1", "")
	_, e2 := s.Heartbeat(ctx, f)
	_, e3 := s.ClaimAgent(ctx, f, Claim{Agent: "1001"})
	e4 := s.ReleaseClaim(ctx, f, "1001", 1)
	_, e5 := s.Claims(ctx)
	_, e6 := s.MarkDead(ctx, f, "n2", 1)
	_, e7 := s.AdoptNode(ctx, f, "n2", 1)
	e8 := s.Notify(ctx, NoticeAgent, "1001")
	_, e9 := s.Listen(ctx)
	e10 := s.EnableNotices("n1")
	e11 := s.AbandonClaim(ctx, f, Claim{Agent: "1001"})
	for i, err := range []error{e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11} {
		if !errors.Is(err, ErrClusterUnsupported) {
			t.Errorf("method %d on SQLite: %v", i+1, err)
		}
	}
	// The row readers work on both engines.
	if err := s.UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available"}); err != nil {
		t.Fatal(err)
	}
	if a, ok, err := s.LoadAgent(ctx, "1001"); err != nil || !ok || a.Status != "Available" {
		t.Fatalf("LoadAgent: %+v %v %v", a, ok, err)
	}
	if _, ok, err := s.LoadMember(ctx, "none"); err != nil || ok {
		t.Fatalf("LoadMember of a missing row: %v %v", ok, err)
	}
}

func TestClaimHasOneWinner(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const n = 6
	nodes := make([]*Store, n)
	fences := make([]NodeFence, n)
	for i := range n {
		nodes[i] = openPG(t, dsn)
		fences[i] = join(t, nodes[i], fmt.Sprint("n", i))
	}
	ctx := context.Background()
	if err := nodes[0].UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available", State: "Waiting"}); err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		agent := "1001"
		start := make(chan struct{})
		var wg sync.WaitGroup
		epochs := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				epochs[i], errs[i] = nodes[i].ClaimAgent(ctx, fences[i], Claim{Agent: agent, Queue: "q", MemberUUID: fmt.Sprint("m", i)})
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range n {
			switch {
			case errs[i] == nil && epochs[i] > 0:
				if winner >= 0 {
					t.Fatalf("round %d: nodes %d and %d both claimed %s", round, winner, i, agent)
				}
				winner = i
			case errors.Is(errs[i], ErrClaimLost) && !errors.Is(errs[i], ErrAgentUnavailable):
			default:
				t.Fatalf("round %d: node %d: epoch %d, %v", round, i, epochs[i], errs[i])
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody claimed %s", round, agent)
		}
		claims, err := nodes[0].Claims(ctx)
		want := []ClaimRow{{Claim: Claim{Agent: agent, Queue: "q", MemberUUID: fmt.Sprint("m", winner)},
			Node: fences[winner].Node, Incarnation: fences[winner].Incarnation, Epoch: epochs[winner]}}
		if err != nil || len(claims) != 1 {
			t.Fatalf("claims %+v, %v", claims, err)
		}
		claims[0].ClaimedAt = time.Time{}
		if !reflect.DeepEqual(claims, want) {
			t.Fatalf("claims %+v, want %+v", claims, want)
		}
		// Only the holder, with its epoch, releases.
		loser := (winner + 1) % n
		if err := nodes[loser].ReleaseClaim(ctx, fences[loser], agent, epochs[winner]); err != nil {
			t.Fatal(err)
		}
		if err := nodes[winner].ReleaseClaim(ctx, fences[winner], agent, epochs[winner]+1000); err != nil {
			t.Fatal(err)
		}
		if claims, _ := nodes[0].Claims(ctx); len(claims) != 1 {
			t.Fatalf("a release by someone else or with another epoch dropped the claim: %+v", claims)
		}
		if err := nodes[winner].ReleaseClaim(ctx, fences[winner], agent, epochs[winner]); err != nil {
			t.Fatal(err)
		}
		if claims, _ := nodes[0].Claims(ctx); len(claims) != 0 {
			t.Fatalf("claim left after its release: %+v", claims)
		}
	}
}

func TestClaimRefusesUnavailableAgents(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s := openPG(t, dsn)
	f := join(t, s, "n1")
	ctx := context.Background()
	for _, a := range []AgentRow{{Name: "break", Status: "On Break"}, {Name: "out", Status: "Logged Out"},
		{Name: "avail", Status: "Available"}, {Name: "demand", Status: "Available (On Demand)"}} {
		if err := s.UpsertAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"break", "out"} {
		_, err := s.ClaimAgent(ctx, f, Claim{Agent: name, Queue: "q", MemberUUID: "m"})
		if !errors.Is(err, ErrClaimLost) || !errors.Is(err, ErrAgentUnavailable) {
			t.Errorf("claim of %s: %v", name, err)
		}
	}
	for _, name := range []string{"avail", "demand", "no-row"} {
		if _, err := s.ClaimAgent(ctx, f, Claim{Agent: name, Queue: "q", MemberUUID: "m"}); err != nil {
			t.Errorf("claim of %s: %v", name, err)
		}
	}
}

func TestFencedNodesCannotWrite(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	fa, fb := join(t, a, "a"), join(t, b, "b")
	ctx := context.Background()
	for _, name := range []string{"1001", "1002", "1003"} {
		if err := a.UpsertAgent(ctx, AgentRow{Name: name, Status: "Available", State: "Waiting"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.ClaimAgent(ctx, fa, Claim{Agent: "1001", Queue: "q", MemberUUID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := a.UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available", State: "Receiving"}); err != nil {
		t.Fatal(err)
	}

	// A restart: the new incarnation releases the old one's claims, and
	// the old incarnation is fenced everywhere.
	fa2 := join(t, a, "a")
	if fa2.Incarnation <= fa.Incarnation {
		t.Fatalf("incarnation %d after %d", fa2.Incarnation, fa.Incarnation)
	}
	if claims, _ := a.Claims(ctx); len(claims) != 0 {
		t.Fatalf("old incarnation's claims kept: %+v", claims)
	}
	if ag, _, _ := a.LoadAgent(ctx, "1001"); ag.State != "Waiting" {
		t.Errorf("agent of a released claim is %q", ag.State)
	}
	if _, err := a.ClaimAgent(ctx, fa, Claim{Agent: "1002", Queue: "q", MemberUUID: "m2"}); !errors.Is(err, ErrFenced) {
		t.Errorf("claim by an old incarnation: %v", err)
	}
	if _, err := a.Heartbeat(ctx, fa); !errors.Is(err, ErrFenced) {
		t.Errorf("heartbeat by an old incarnation: %v", err)
	}
	if _, err := a.MarkDead(ctx, fa, "b", 1); !errors.Is(err, ErrFenced) {
		t.Errorf("mark dead by an old incarnation: %v", err)
	}

	// Declared dead: fenced, even for a claim nobody else holds.
	states, err := a.Heartbeat(ctx, fa2)
	if err != nil {
		t.Fatal(err)
	}
	var seq int64
	for _, s := range states {
		if s.Node == "a" {
			seq = s.RenewSeq
			if s.Incarnation != fa2.Incarnation || s.Dead || s.Age < 0 || s.Age > time.Minute || s.ConfigHash != "hash-a" {
				t.Errorf("own row after heartbeat: %+v", s)
			}
		}
	}
	if ok, err := b.MarkDead(ctx, fb, "a", seq); !ok || err != nil {
		t.Fatalf("mark dead: %v %v", ok, err)
	}
	if _, err := a.ClaimAgent(ctx, fa2, Claim{Agent: "1003", Queue: "q", MemberUUID: "m3"}); !errors.Is(err, ErrFenced) {
		t.Errorf("claim by a dead node: %v", err)
	}
	if _, err := a.Heartbeat(ctx, fa2); !errors.Is(err, ErrFenced) {
		t.Errorf("heartbeat by a dead node: %v", err)
	}
	if _, err := a.AdoptNode(ctx, fa2, "b", 1); !errors.Is(err, ErrFenced) {
		t.Errorf("adoption by a dead node: %v", err)
	}
	// Rejoining makes it live again.
	fa3 := join(t, a, "a")
	if _, err := a.ClaimAgent(ctx, fa3, Claim{Agent: "1003", Queue: "q", MemberUUID: "m3"}); err != nil {
		t.Errorf("claim after rejoining: %v", err)
	}
}

func TestMarkDeadHasOneWinner(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	victim := openPG(t, dsn)
	fv := join(t, victim, "victim")
	states, err := victim.Heartbeat(context.Background(), fv)
	if err != nil {
		t.Fatal(err)
	}
	seq := renewSeq(t, states, "victim")
	const n = 5
	nodes := make([]*Store, n)
	fences := make([]NodeFence, n)
	for i := range n {
		nodes[i] = openPG(t, dsn)
		fences[i] = join(t, nodes[i], fmt.Sprint("n", i))
	}
	ctx := context.Background()
	// A stale sequence number (the victim renewed since) wins nothing.
	if ok, err := nodes[0].MarkDead(ctx, fences[0], "victim", seq-1); ok || err != nil {
		t.Fatalf("mark dead on a stale renew_seq: %v %v", ok, err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	won := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			won[i], errs[i] = nodes[i].MarkDead(ctx, fences[i], "victim", seq)
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if won[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners", winners)
	}
}

func TestAdoptNodeTakesOnlyTheDeadNodesState(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	fa, fb := join(t, a, "a"), join(t, b, "b")
	ctx := context.Background()
	for _, ag := range []AgentRow{{Name: "1001", Status: "Available", State: "Receiving"},
		{Name: "1002", Status: "Available", State: "In a queue call"}, {Name: "1003", Status: "Available", State: "Idle"}} {
		if err := a.UpsertAgent(ctx, ag); err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range []TierRow{{Queue: "q", Agent: "1001", State: "Offering"}, {Queue: "q", Agent: "1002", State: "Active Inbound"},
		{Queue: "q2", Agent: "1001", State: "No Answer"}} {
		if err := a.UpsertTier(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}
	members := []MemberRow{
		{UUID: "a-wait", Queue: "q", InstanceID: "a", ServingSystem: "a", State: "Waiting", JoinedEpoch: 100, BaseScore: 7},
		{UUID: "b-wait", Queue: "q", InstanceID: "b", ServingSystem: "b", State: "Waiting", JoinedEpoch: 101},
		{UUID: "a-try", Queue: "q", InstanceID: "a", ServingSystem: "a", State: "Trying", JoinedEpoch: 102, ServingAgent: "1001"},
		{UUID: "a-gone", Queue: "q", InstanceID: "a", ServingSystem: "a", State: "Abandoned", JoinedEpoch: 90, AbandonedEpoch: 95},
		{UUID: "a-talk", Queue: "q", InstanceID: "a", ServingSystem: "a", State: "Answered", JoinedEpoch: 103, ServingAgent: "1002"},
	}
	for _, m := range members {
		if err := a.UpsertMember(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.ClaimAgent(ctx, fa, Claim{Agent: "1001", Queue: "q", MemberUUID: "a-try"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ClaimAgent(ctx, fa, Claim{Agent: "1002", Queue: "q", MemberUUID: "a-talk"}); err != nil {
		t.Fatal(err)
	}
	eb, err := b.ClaimAgent(ctx, fb, Claim{Agent: "1003", Queue: "q", MemberUUID: "b-wait"})
	if err != nil {
		t.Fatal(err)
	}
	// Not dead yet: nothing to adopt.
	if res, err := b.AdoptNode(ctx, fb, "a", 200); err != nil || len(res.Members)+len(res.Agents) != 0 {
		t.Fatalf("adoption of a live node: %+v %v", res, err)
	}
	states, err := b.Heartbeat(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.MarkDead(ctx, fb, "a", renewSeq(t, states, "a")); !ok || err != nil {
		t.Fatalf("mark dead: %v %v", ok, err)
	}
	res, err := b.AdoptNode(ctx, fb, "a", 200)
	if err != nil {
		t.Fatal(err)
	}
	var want []MemberRow
	for _, m := range members {
		if m.InstanceID == "a" && m.State != "Abandoned" {
			m.State, m.AbandonedEpoch, m.InstanceID, m.ServingSystem = "Abandoned", 200, "b", "b"
			want = append(want, m)
		}
	}
	if !reflect.DeepEqual(res.Members, want) {
		t.Errorf("adopted members\n got %+v\nwant %+v", res.Members, want)
	}
	if !reflect.DeepEqual(res.Agents, []string{"1001", "1002"}) {
		t.Errorf("released agents %v", res.Agents)
	}
	rows, err := b.LoadCallcenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rows.Members {
		switch m.UUID {
		case "b-wait":
			if m.State != "Waiting" || m.InstanceID != "b" {
				t.Errorf("survivor's member touched: %+v", m)
			}
		case "a-gone":
			if m.AbandonedEpoch != 95 || m.InstanceID != "a" {
				t.Errorf("already abandoned member touched: %+v", m)
			}
		}
	}
	wantAgents := map[string]string{"1001": "Waiting", "1002": "Waiting", "1003": "Idle"}
	for _, ag := range rows.Agents {
		if ag.State != wantAgents[ag.Name] || ag.NoAnswerCount != 0 {
			t.Errorf("agent %s: %s, %d no-answers", ag.Name, ag.State, ag.NoAnswerCount)
		}
	}
	wantTiers := map[string]string{"q|1001": "Ready", "q|1002": "Ready", "q2|1001": "No Answer"}
	for _, tr := range rows.Tiers {
		if tr.State != wantTiers[tr.Queue+"|"+tr.Agent] {
			t.Errorf("tier %s|%s: %s", tr.Queue, tr.Agent, tr.State)
		}
	}
	claims, err := b.Claims(ctx)
	if err != nil || len(claims) != 1 || claims[0].Agent != "1003" || claims[0].Epoch != eb {
		t.Errorf("claims after adoption: %+v %v", claims, err)
	}
	// Once only.
	if res, err := b.AdoptNode(ctx, fb, "a", 300); err != nil || len(res.Members)+len(res.Agents) != 0 {
		t.Errorf("second adoption: %+v %v", res, err)
	}
	states, _ = b.Heartbeat(ctx, fb)
	for _, s := range states {
		if s.Node == "a" && (!s.Dead || !s.Adopted) {
			t.Errorf("adopted node's row: %+v", s)
		}
	}
}

func TestNoticesArriveAtCommit(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w, r := openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	ch, stop := listenOn(t, r)
	// Without EnableNotices a write is silent: the marker comes first.
	if err := w.UpsertAgent(ctx, AgentRow{Name: "quiet"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(ctx, "marker", "1"); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n != (Notice{Kind: "marker", Key: "1"}) {
		t.Fatalf("got %+v, want the marker", n)
	}

	if err := w.EnableNotices("w"); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		do   func() error
		want Notice
	}{
		{func() error { return w.UpsertAgent(ctx, AgentRow{Name: "1001"}) }, Notice{NoticeAgent, "1001", "w"}},
		{func() error { return w.UpsertTier(ctx, TierRow{Queue: "q|x", Agent: "1001"}) }, Notice{NoticeTier, "q|x|1001", "w"}},
		{func() error { return w.UpsertMember(ctx, MemberRow{UUID: "m1"}) }, Notice{NoticeMember, "m1", "w"}},
		{func() error { return w.DeleteMember(ctx, "m1") }, Notice{NoticeMember, "m1", "w"}},
		{func() error { return w.DeleteTier(ctx, "q|x", "1001") }, Notice{NoticeTier, "q|x|1001", "w"}},
		{func() error { return w.DeleteAgent(ctx, "1001") }, Notice{NoticeAgent, "1001", "w"}},
		{func() error { return w.TruncateTiers(ctx) }, Notice{NoticeTier, "", "w"}},
		{func() error { return w.TruncateAgents(ctx) }, Notice{NoticeAgent, "", "w"}},
	}
	for i, wr := range writes {
		if err := wr.do(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if n := nextNotice(t, ch); n != wr.want {
			t.Fatalf("write %d: got %+v, want %+v", i, n, wr.want)
		}
	}
	if err := w.UpsertAgent(ctx, AgentRow{Name: "1001"}); err != nil {
		t.Fatal(err)
	}
	nextNotice(t, ch)

	// A failed write sends nothing: a trigger refuses one agent.
	for _, q := range []string{
		`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON agents FOR EACH ROW WHEN (NEW.name = 'boom') EXECUTE FUNCTION refuse()`,
	} {
		if _, err := w.db.raw.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.UpsertAgent(ctx, AgentRow{Name: "boom"}); err == nil {
		t.Fatal("the trigger did not refuse the write")
	}
	// A transaction holding a notice delivers it at its commit, after
	// what committed meanwhile.
	tx, err := w.db.raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify('ccpbx_cc', $1)`, payload("held", "1", "w")); err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(ctx, "marker", "2"); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n != (Notice{Kind: "marker", Key: "2", From: "w"}) {
		t.Fatalf("got %+v, want the second marker (the failed write sent a notice, or the open one did)", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n != (Notice{Kind: "held", Key: "1", From: "w"}) {
		t.Fatalf("got %+v, want the held notice at its commit", n)
	}

	// A rolled-back one never.
	tx2, err := w.db.raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx2.ExecContext(ctx, `SELECT pg_notify('ccpbx_cc', $1)`, payload("rolled back", "1", "w")); err != nil {
		t.Fatal(err)
	}
	tx2.Rollback()
	if err := w.Notify(ctx, "marker", "3"); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n != (Notice{Kind: "marker", Key: "3", From: "w"}) {
		t.Fatalf("got %+v after a rollback, want the third marker", n)
	}

	// Listen ends with its context.
	stop()
}

func TestListenSurvivesItsBackendsDeath(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w, r := openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	ch, stop := listenOn(t, r)
	admin := adminConn(t, dsn)
	for round := range 3 {
		var killed int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'ccpbx listen'`).Scan(&killed); err != nil || killed != 1 {
			t.Fatalf("round %d: terminated %d listeners: %v", round, killed, err)
		}
		if n := nextNotice(t, ch); n.Kind != NoticeResync {
			t.Fatalf("round %d: got %+v, want a resync after the reconnection", round, n)
		}
		if err := w.Notify(ctx, "marker", fmt.Sprint(round)); err != nil {
			t.Fatal(err)
		}
		if n := nextNotice(t, ch); n.Kind != "marker" || n.Key != fmt.Sprint(round) {
			t.Fatalf("round %d: got %+v after reconnecting", round, n)
		}
	}
	stop()
}

// TestNoClaimOutlivesAnAdoption races a node's claims against its death
// and adoption: whatever the interleaving, no claim of the dead
// incarnation is left once it was adopted.
func TestNoClaimOutlivesAnAdoption(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	fb := join(t, b, "b")
	ctx := context.Background()
	for round := range 4 {
		fa := join(t, a, "a")
		states, err := a.Heartbeat(ctx, fa)
		if err != nil {
			t.Fatal(err)
		}
		seq := renewSeq(t, states, "a")
		var wg sync.WaitGroup
		claimErr := make(chan error, 4)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					_, err := a.ClaimAgent(ctx, fa, Claim{Agent: fmt.Sprintf("r%d-w%d-%d", round, w, i), Queue: "q", MemberUUID: "m"})
					if errors.Is(err, ErrFenced) {
						return
					}
					if err != nil {
						claimErr <- err
						return
					}
				}
			}()
		}
		pbxtest.WaitFor(t, 30*time.Second, func() bool {
			claims, err := b.Claims(ctx)
			n := 0
			for _, c := range claims {
				if c.Node == "a" {
					n++
				}
			}
			return err == nil && n >= 4
		}, "node a's claims under way")
		if ok, err := b.MarkDead(ctx, fb, "a", seq); !ok || err != nil {
			t.Fatalf("round %d: mark dead %v %v", round, ok, err)
		}
		if _, err := b.AdoptNode(ctx, fb, "a", 1); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(claimErr)
		for err := range claimErr {
			t.Fatal(err)
		}
		claims, err := b.Claims(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range claims {
			if c.Node == "a" {
				t.Fatalf("round %d: claim %+v of the adopted node left", round, c)
			}
		}
	}
}

// TestListenPingsAnIdleConnection: a quiet channel is pinged, and the
// ping neither breaks the connection nor fakes a resync.
func TestListenPingsAnIdleConnection(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	w, r := openPG(t, dsn), openPG(t, dsn)
	// Restored after the listener stopped (cleanups run last first).
	t.Cleanup(func(d time.Duration) func() { return func() { listenIdle = d } }(listenIdle))
	listenIdle = 50 * time.Millisecond
	ctx := context.Background()
	ch, stop := listenOn(t, r)
	admin := adminConn(t, dsn)
	pings := func() int {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ccpbx listen'
			AND query = '-- ping'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	pbxtest.WaitFor(t, 30*time.Second, func() bool { return pings() == 1 }, "the idle listener pinged")
	if err := w.Notify(ctx, "marker", "1"); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n.Kind != "marker" {
		t.Fatalf("got %+v after pings, want the marker", n)
	}
	stop()
}

// TestClusterSurvivesDeadConnections: after a server restart or failover
// every pooled connection is dead; the cluster statements skip them like
// the others (they had not run, so running them again is safe).
func TestClusterSurvivesDeadConnections(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, other := openPG(t, dsn), openPG(t, dsn)
	f := join(t, s, "s")
	join(t, other, "o")
	ctx := context.Background()
	admin := adminConn(t, dsn)
	kill := func() {
		t.Helper()
		// Several idle pooled connections first.
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); s.Claims(ctx) }()
		}
		wg.Wait()
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"heartbeat", func() error { _, err := s.Heartbeat(ctx, f); return err }},
		{"claim", func() error {
			_, err := s.ClaimAgent(ctx, f, Claim{Agent: "1001", Queue: "q", MemberUUID: "m"})
			return err
		}},
		{"release", func() error { return s.ReleaseClaim(ctx, f, "1001", 1) }},
		{"abandon", func() error { return s.AbandonClaim(ctx, f, Claim{Agent: "1001", Queue: "q", MemberUUID: "m"}) }},
		{"claims", func() error { _, err := s.Claims(ctx); return err }},
		{"load agent", func() error { _, _, err := s.LoadAgent(ctx, "1001"); return err }},
		{"load member", func() error { _, _, err := s.LoadMember(ctx, "m"); return err }},
		{"notify", func() error { return s.Notify(ctx, "x", "y") }},
		{"mark dead", func() error { _, err := s.MarkDead(ctx, f, "o", 0); return err }},
		{"adopt", func() error { _, err := s.AdoptNode(ctx, f, "o", 1); return err }},
		{"join", func() error { var err error; f, err = s.JoinCluster(ctx, "s", ""); return err }},
	}
	for _, st := range steps {
		kill()
		if err := st.do(); err != nil {
			t.Errorf("%s after the connections died: %v", st.name, err)
		}
	}
}

func TestLoadTierAndTierKeys(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		defer s.Close()
		ctx := context.Background()
		want := TierRow{Queue: "q|x", Agent: "1001", State: "Ready", Level: 2, Position: 3}
		if err := s.UpsertTier(ctx, want); err != nil {
			t.Fatal(err)
		}
		q, a, ok := SplitTierKey(TierKey(want.Queue, want.Agent))
		if !ok {
			t.Fatal("tier key not split")
		}
		got, ok, err := s.LoadTier(ctx, q, a)
		if err != nil || !ok || got != want {
			t.Fatalf("LoadTier(%q, %q) = %+v %v %v", q, a, got, ok, err)
		}
		if _, ok, err := s.LoadTier(ctx, "q", "x|1001"); ok || err != nil {
			t.Fatalf("another split found a row: %v %v", ok, err)
		}
		if _, _, ok := SplitTierKey("nopipe"); ok {
			t.Error("a key without | split")
		}
	})
}

// TestFencedNodesCallcenterWritesFail: once a node joined, its agent,
// tier and member writes carry its fence: declared dead (a pause, a
// partition), they change nothing and announce nothing, so its late
// writes cannot undo what the adopter did; rejoined, they work again.
func TestFencedNodesCallcenterWritesFail(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b, r := openPG(t, dsn), openPG(t, dsn), openPG(t, dsn)
	ctx := context.Background()
	fa := join(t, a, "a")
	// Enabling notices after joining keeps the fence.
	if err := a.EnableNotices("a"); err != nil {
		t.Fatal(err)
	}
	fb := join(t, b, "b")
	ch, _ := listenOn(t, r)
	if err := a.UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available", State: "In a queue call"}); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n != (Notice{NoticeAgent, "1001", "a"}) {
		t.Fatalf("got %+v", n)
	}
	states, err := a.Heartbeat(ctx, fa)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.MarkDead(ctx, fb, "a", renewSeq(t, states, "a")); !ok || err != nil {
		t.Fatalf("mark dead: %v %v", ok, err)
	}
	writes := map[string]func() error{
		"upsert agent":  func() error { return a.UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available", State: "Idle"}) },
		"delete agent":  func() error { return a.DeleteAgent(ctx, "1001") },
		"upsert tier":   func() error { return a.UpsertTier(ctx, TierRow{Queue: "q", Agent: "1001"}) },
		"delete tier":   func() error { return a.DeleteTier(ctx, "q", "1001") },
		"upsert member": func() error { return a.UpsertMember(ctx, MemberRow{UUID: "m1"}) },
		"delete member": func() error { return a.DeleteMember(ctx, "m1") },
		"truncate":      func() error { return a.TruncateAgents(ctx) },
		"batch": func() error {
			return a.ApplyCallcenter(ctx, []CallcenterWrite{{Kind: UpsertMemberWrite, Member: MemberRow{UUID: "m1"}},
				{Kind: DeleteAgentWrite, Agent: AgentRow{Name: "1001"}}})
		},
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, ErrFenced) {
			t.Errorf("%s by a dead node: %v", name, err)
		}
	}
	if ag, ok, err := b.LoadAgent(ctx, "1001"); err != nil || !ok || ag.State != "In a queue call" {
		t.Errorf("agent after fenced writes: %+v %v %v", ag, ok, err)
	}
	if err := b.Notify(ctx, "marker", "1"); err != nil {
		t.Fatal(err)
	}
	if n := nextNotice(t, ch); n.Kind != "marker" {
		t.Fatalf("a fenced write announced itself: %+v", n)
	}
	// Rejoined: the store writes with the new fence.
	join(t, a, "a")
	if err := a.UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available", State: "Waiting"}); err != nil {
		t.Fatalf("write after rejoining: %v", err)
	}
	if n := nextNotice(t, ch); n != (Notice{NoticeAgent, "1001", "a"}) {
		t.Fatalf("got %+v", n)
	}
}

// TestClaimAgainAndAbandon: a claim whose answer was lost is found again
// by the same caller's retry, and AbandonClaim drops exactly it.
func TestClaimAgainAndAbandon(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	fa, fb := join(t, a, "a"), join(t, b, "b")
	ctx := context.Background()
	c := Claim{Agent: "1001", Queue: "q", MemberUUID: "m1"}
	e1, err := a.ClaimAgent(ctx, fa, c)
	if err != nil {
		t.Fatal(err)
	}
	if e2, err := a.ClaimAgent(ctx, fa, c); err != nil || e2 != e1 {
		t.Fatalf("the same claim again: %d %v, want %d", e2, err, e1)
	}
	for _, other := range []struct {
		s *Store
		f NodeFence
		c Claim
	}{
		{a, fa, Claim{Agent: "1001", Queue: "q", MemberUUID: "m2"}},
		{a, fa, Claim{Agent: "1001", Queue: "q2", MemberUUID: "m1"}},
		{b, fb, c},
	} {
		if _, err := other.s.ClaimAgent(ctx, other.f, other.c); !errors.Is(err, ErrClaimLost) {
			t.Errorf("%s claiming %+v held for another caller, queue or node: %v", other.f.Node, other.c, err)
		}
		// Abandoning someone else's claim does nothing.
		if err := other.s.AbandonClaim(ctx, other.f, other.c); err != nil {
			t.Fatal(err)
		}
	}
	if claims, _ := a.Claims(ctx); len(claims) != 1 || claims[0].Epoch != e1 {
		t.Fatalf("claims %+v", claims)
	}
	if err := a.AbandonClaim(ctx, fa, c); err != nil {
		t.Fatal(err)
	}
	if claims, _ := a.Claims(ctx); len(claims) != 0 {
		t.Fatalf("claims after abandoning: %+v", claims)
	}
	if _, err := b.ClaimAgent(ctx, fb, c); err != nil {
		t.Fatalf("claim after the abandon: %v", err)
	}
}
