package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ccpbx/internal/pbxtest"
	"ccpbx/store"
	"ccpbx/store/pgtest"
)

func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// Test leases: short, so a death is seen in seconds; the bounds the
// tests wait with are generous (a loaded 2-core machine).
const (
	testTTL = time.Second
	bound   = 30 * time.Second
)

var portRE = regexp.MustCompile(`port=\d+`)

// viaProxy is dsn with its port replaced by the proxy's.
func viaProxy(dsn string, p *pgProxy) string {
	return portRE.ReplaceAllString(dsn, fmt.Sprintf("port=%d", p.port()))
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.OpenConfig(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recorder keeps every event a node emits (the owner must read them).
type recorder struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func record(n *Node) *recorder {
	r := &recorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for e := range n.Events() {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}()
	return r
}

// find returns the first event of kind about node, if any.
func (r *recorder) find(kind EventKind, node string) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == kind && (node == "" || e.Node == node) {
			return e, true
		}
	}
	return Event{}, false
}

func (r *recorder) kinds() []EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []EventKind
	for _, e := range r.events {
		if e.Kind != Notice {
			out = append(out, e.Kind)
		}
	}
	return out
}

func (r *recorder) String() string { return fmt.Sprint(r.kinds()) }

func start(t *testing.T, st store.Cluster, node string) (*Node, *recorder) {
	t.Helper()
	n, err := Start(context.Background(), st, Config{Node: node, TTL: testTTL, ConfigHash: "h",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := record(n)
	t.Cleanup(func() { n.Close(); <-r.done })
	return n, r
}

func TestDeadNodeIsDeclaredAndAdopted(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	sa, sb := openStore(t, dsn), openStore(t, dsn)
	ctx := context.Background()
	a, _ := start(t, sa, "a")
	b, rb := start(t, sb, "b")
	if err := sa.UpsertAgent(ctx, store.AgentRow{Name: "1001", Status: "Available", State: "Receiving"}); err != nil {
		t.Fatal(err)
	}
	if err := sa.UpsertMember(ctx, store.MemberRow{UUID: "m1", Queue: "q", InstanceID: "a", ServingSystem: "a", State: "Trying", JoinedEpoch: 42}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ClaimAgent(ctx, store.Claim{Agent: "1001", Queue: "q", MemberUUID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ClaimAgent(ctx, store.Claim{Agent: "1001", Queue: "q", MemberUUID: "m2"}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("second claim: %v", err)
	}
	if ma, mb := a.Metrics(), b.Metrics(); ma.Claims != 1 || mb.ClaimsLost != 1 {
		t.Errorf("claims %d, lost %d", ma.Claims, mb.ClaimsLost)
	}
	pbxtest.WaitFor(t, bound, func() bool { return len(b.Status()) == 2 && a.Healthy() && b.Healthy() },
		"both nodes up and seen")

	// a dies: its goroutines stop, its rows stay.
	a.Close()
	pbxtest.WaitFor(t, bound, func() bool { _, ok := rb.find(Adopted, "a"); return ok }, "b adopting a (events %v)", rb)
	if _, ok := rb.find(NodeDead, "a"); !ok {
		t.Errorf("adopted without a NodeDead event: %v", rb)
	}
	e, _ := rb.find(Adopted, "a")
	if len(e.Adopt.Members) != 1 || e.Adopt.Members[0].UUID != "m1" || e.Adopt.Members[0].JoinedEpoch != 42 ||
		e.Adopt.Members[0].State != "Abandoned" || e.Adopt.Members[0].InstanceID != "b" {
		t.Errorf("adopted members %+v", e.Adopt.Members)
	}
	if len(e.Adopt.Agents) != 1 || e.Adopt.Agents[0] != "1001" {
		t.Errorf("released agents %v", e.Adopt.Agents)
	}
	if _, err := b.ClaimAgent(ctx, store.Claim{Agent: "1001", Queue: "q", MemberUUID: "m2"}); err != nil {
		t.Errorf("claim of the released agent: %v", err)
	}
	m := b.Metrics()
	if m.NodesDeclaredDead != 1 || m.Adoptions != 1 || m.AdoptedMembers != 1 || m.Renewals == 0 {
		t.Errorf("metrics %+v", m)
	}
	if !b.Healthy() {
		t.Error("the survivor is not healthy")
	}
	pbxtest.WaitFor(t, bound, func() bool {
		for _, s := range b.Status() {
			if s.Node == "a" {
				return s.Dead && s.Adopted
			}
		}
		return false
	}, "a shown dead and adopted in b's status")
}

// minAge is how old the database thinks every lease but skip's is.
func minAge(t *testing.T, admin *pgx.Conn, skip string) time.Duration {
	t.Helper()
	var us int64
	if err := admin.QueryRow(context.Background(), `SELECT COALESCE(min((extract(epoch FROM now() - renewed_at) * 1000000)::bigint), 0)
		FROM cc_nodes WHERE node <> $1`, skip).Scan(&us); err != nil {
		t.Fatal(err)
	}
	return time.Duration(us) * time.Microsecond
}

func TestDatabaseOutageAdoptsNobody(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	proxy := newPGProxy(t, "127.0.0.1:"+portRE.FindString(dsn)[len("port="):])
	sa, sb := openStore(t, viaProxy(dsn, proxy)), openStore(t, viaProxy(dsn, proxy))
	a, ra := start(t, sa, "a")
	b, rb := start(t, sb, "b")
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	pbxtest.WaitFor(t, bound, func() bool { return len(a.Status()) == 2 && len(b.Status()) == 2 }, "both nodes seen")

	for round := range 2 {
		proxy.pause()
		// Long enough that every lease looks expired to the database and
		// both nodes fence themselves.
		pbxtest.WaitFor(t, bound, func() bool { return !a.Healthy() && !b.Healthy() }, "both nodes self-fenced")
		pbxtest.WaitFor(t, bound, func() bool { return minAge(t, admin, "") > 2*testTTL }, "every lease older than 2 TTL")
		proxy.resume()
		pbxtest.WaitFor(t, bound, func() bool { return a.Healthy() && b.Healthy() }, "round %d: both nodes healthy again", round)
		// Several more TTLs of renewals after the outage.
		ma, mb := a.Metrics().Renewals, b.Metrics().Renewals
		pbxtest.WaitFor(t, bound, func() bool {
			return a.Metrics().Renewals >= ma+9 && b.Metrics().Renewals >= mb+9
		}, "renewals after the outage")
	}
	for _, r := range []*recorder{ra, rb} {
		for _, k := range r.kinds() {
			t.Errorf("event %v during or after a database outage (events %v)", k, r)
		}
	}
	for _, s := range b.Status() {
		if s.Dead {
			t.Errorf("node %s declared dead by a database outage", s.Node)
		}
	}
}

func TestSuspendedNodeIsFencedAndRejoins(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	proxy := newPGProxy(t, "127.0.0.1:"+portRE.FindString(dsn)[len("port="):])
	sa, sb := openStore(t, viaProxy(dsn, proxy)), openStore(t, dsn)
	ctx := context.Background()
	a, ra := start(t, sa, "a")
	b, rb := start(t, sb, "b")
	if err := sb.UpsertMember(ctx, store.MemberRow{UUID: "m1", Queue: "q", InstanceID: "a", State: "Waiting", JoinedEpoch: 7}); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, bound, func() bool { return len(a.Status()) == 2 && len(b.Status()) == 2 }, "both nodes seen")
	old := a.Fence()

	// a is cut off (a stalled VM, a partition): b adopts it, a fences
	// itself meanwhile.
	proxy.pause()
	pbxtest.WaitFor(t, bound, func() bool { _, ok := rb.find(Adopted, "a"); return ok }, "b adopting a (events %v)", rb)
	pbxtest.WaitFor(t, bound, func() bool { return !a.Healthy() }, "a self-fenced")
	proxy.resume()
	pbxtest.WaitFor(t, bound, func() bool { _, ok := ra.find(Rejoined, ""); return ok }, "a rejoining (events %v)", ra)
	kinds := ra.kinds()
	if len(kinds) != 2 || kinds[0] != Fenced || kinds[1] != Rejoined {
		t.Errorf("a's events %v, want [fenced rejoined]", kinds)
	}
	if f := a.Fence(); f.Incarnation <= old.Incarnation {
		t.Errorf("fence %+v after rejoining, was %+v", f, old)
	}
	pbxtest.WaitFor(t, bound, a.Healthy, "a healthy after rejoining")
	if _, err := a.ClaimAgent(ctx, store.Claim{Agent: "1001", Queue: "q", MemberUUID: "m9"}); err != nil {
		t.Errorf("claim after rejoining: %v", err)
	}
	if m := a.Metrics(); m.Rejoins != 1 || m.FencedWrites == 0 {
		t.Errorf("a's metrics %+v", m)
	}
	e, _ := rb.find(Adopted, "a")
	if len(e.Adopt.Members) != 1 || e.Adopt.Members[0].JoinedEpoch != 7 {
		t.Errorf("adopted %+v", e.Adopt)
	}
	// A claim with the old incarnation's fence is refused.
	if _, err := sa.ClaimAgent(ctx, old, store.Claim{Agent: "1002", Queue: "q", MemberUUID: "m8"}); !errors.Is(err, store.ErrFenced) {
		t.Errorf("claim with the old fence: %v", err)
	}
}

func TestNoticesBecomeEvents(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	sa, sb := openStore(t, dsn), openStore(t, dsn)
	_, _ = start(t, sa, "a")
	_, rb := start(t, sb, "b")
	if err := sa.EnableNotices("a"); err != nil {
		t.Fatal(err)
	}
	if err := sb.EnableNotices("b"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// b's own write is not echoed back to b; a's is.
	if err := sb.UpsertAgent(ctx, store.AgentRow{Name: "own"}); err != nil {
		t.Fatal(err)
	}
	if err := sa.UpsertAgent(ctx, store.AgentRow{Name: "1001"}); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, bound, func() bool {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		for _, e := range rb.events {
			if e.Kind == Notice && e.Notice.Kind == store.NoticeAgent && e.Notice.Key == "1001" {
				return e.Notice.From == "a"
			}
		}
		return false
	}, "a's agent notice at b")
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for _, e := range rb.events {
		if e.Notice.From == "b" {
			t.Errorf("own notice delivered: %+v", e)
		}
	}
}

// TestEventsNeverBlockTheProducer: with nobody reading, notices beyond
// the bound are dropped and counted, membership events are kept, and one
// resync follows once the reader catches up.
func TestEventsNeverBlockTheProducer(t *testing.T) {
	q := newQueue(4)
	var dropped atomic.Uint64
	for i := range 10 {
		q.push(Event{Kind: Notice, Notice: store.Notice{Kind: "agent", Key: fmt.Sprint(i)}}, &dropped)
	}
	q.push(Event{Kind: Fenced}, &dropped)
	q.push(Event{Kind: Rejoined}, &dropped)
	if dropped.Load() != 6 {
		t.Fatalf("dropped %d", dropped.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.run(ctx) }()
	var got []string
	for range 7 {
		e := <-q.out
		if e.Kind == Notice {
			got = append(got, e.Notice.Kind+e.Notice.Key)
		} else {
			got = append(got, e.Kind.String())
		}
	}
	want := fmt.Sprint([]string{"agent0", "agent1", "agent2", "agent3", "fenced", "rejoined", store.NoticeResync})
	if fmt.Sprint(got) != want {
		t.Errorf("got %v, want %v", got, want)
	}
	cancel()
	<-done
	if _, ok := <-q.out; ok {
		t.Error("events not closed")
	}
}

// TestSecondProcessWithTheSameIDWins: a node id started twice (a
// misconfiguration, or a restart while the old process stalled) must not
// flap: the newer process keeps it, the older stays fenced.
func TestSecondProcessWithTheSameIDWins(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s1, s2 := openStore(t, dsn), openStore(t, dsn)
	old, rOld := start(t, s1, "a")
	pbxtest.WaitFor(t, bound, func() bool { return old.Metrics().Renewals > 0 }, "the first process renewing")
	newer, rNew := start(t, s2, "a")
	pbxtest.WaitFor(t, bound, func() bool { _, ok := rOld.find(Fenced, ""); return ok }, "the older process fenced (events %v)", rOld)
	pbxtest.WaitFor(t, bound, func() bool { return !old.Healthy() }, "the older process unhealthy")
	r := newer.Metrics().Renewals
	pbxtest.WaitFor(t, bound, func() bool { return newer.Metrics().Renewals >= r+6 }, "the newer process renewing")
	if k := rOld.kinds(); len(k) != 1 {
		t.Errorf("older process's events %v, want only fenced", k)
	}
	if k := rNew.kinds(); len(k) != 0 || !newer.Healthy() {
		t.Errorf("newer process's events %v, healthy %v", k, newer.Healthy())
	}
	if old.Metrics().Rejoins != 0 {
		t.Error("the older process rejoined")
	}
}

// TestAnOwnerThatDoesNotReadBlocksNothing: nobody reads Events while
// another node floods notices; the node keeps renewing, drops what is
// beyond the bound, and owes one resync.
func TestAnOwnerThatDoesNotReadBlocksNothing(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	sa, sb := openStore(t, dsn), openStore(t, dsn)
	a, err := Start(context.Background(), sa, Config{Node: "a", TTL: testTTL, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := sb.EnableNotices("b"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range eventBuffer + 100 {
		if err := sb.Notify(ctx, "flood", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	pbxtest.WaitFor(t, bound, func() bool { return a.Metrics().EventsDropped > 0 }, "notices beyond the bound dropped")
	r := a.Metrics().Renewals
	pbxtest.WaitFor(t, bound, func() bool { return a.Metrics().Renewals >= r+3 }, "renewals while nobody reads")
	if !a.Healthy() {
		t.Error("a node whose owner does not read became unhealthy")
	}
	// The owner catches up: the kept notices (eventBuffer waiting, plus
	// the one being handed over if the hand-over goroutine took it before
	// the flood filled the queue), then one resync.
	floods := 0
	timeout := time.After(bound)
	for {
		select {
		case e := <-a.Events():
			if e.Kind == Notice && e.Notice.Kind == "flood" {
				floods++
			}
			if e.Kind == Notice && e.Notice.Kind == store.NoticeResync {
				if floods != eventBuffer && floods != eventBuffer+1 {
					t.Errorf("%d notices before the resync, want %d or one more", floods, eventBuffer)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no resync after %d notices", floods)
		}
	}
}

// lossyStore loses ClaimAgent's answers: the claim commits (at once, or
// when late is closed) but the caller gets a timeout.
type lossyStore struct {
	*store.Store
	lose bool
	late chan struct{}
	done chan struct{} // closed once a late claim committed
	// failReleases is how many ReleaseClaim calls fail before running.
	failReleases atomic.Int32
}

func (l *lossyStore) ReleaseClaim(ctx context.Context, f store.NodeFence, agent string, epoch int64) error {
	if l.failReleases.Add(-1) >= 0 {
		return errors.New("connection reset")
	}
	return l.Store.ReleaseClaim(ctx, f, agent, epoch)
}

func (l *lossyStore) ClaimAgent(ctx context.Context, f store.NodeFence, c store.Claim) (int64, error) {
	if !l.lose {
		return l.Store.ClaimAgent(ctx, f, c)
	}
	if l.late != nil {
		go func() {
			defer close(l.done)
			<-l.late
			l.Store.ClaimAgent(context.Background(), f, c)
		}()
		return 0, context.DeadlineExceeded
	}
	l.Store.ClaimAgent(ctx, f, c)
	return 0, context.DeadlineExceeded
}

func TestClaimsOfUnknownOutcomeAreNotStranded(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	sa, sb := openStore(t, dsn), openStore(t, dsn)
	lossy := &lossyStore{Store: sa, lose: true}
	a, _ := start(t, lossy, "a")
	b, _ := start(t, sb, "b")
	ctx := context.Background()
	held := func() int {
		claims, err := sb.Claims(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(claims)
	}

	// The answer is lost, the claim committed: dropped before ClaimAgent
	// returns.
	c := store.Claim{Agent: "1001", Queue: "q", MemberUUID: "m1"}
	if _, err := a.ClaimAgent(ctx, c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lossy claim: %v", err)
	}
	if n := held(); n != 0 {
		t.Fatalf("%d claims stranded", n)
	}

	// The claim commits after its answer was lost and after the first
	// abandon: a later renewal drops it.
	lossy.late, lossy.done = make(chan struct{}), make(chan struct{})
	if _, err := a.ClaimAgent(ctx, c); err == nil {
		t.Fatal("lossy claim succeeded")
	}
	close(lossy.late)
	<-lossy.done
	pbxtest.WaitFor(t, bound, func() bool { return held() == 0 }, "the late claim dropped at a renewal")
	eb, err := b.ClaimAgent(ctx, c)
	if err != nil {
		t.Fatalf("claim by b after the abandons: %v", err)
	}
	if err := b.ReleaseClaim(ctx, "1001", eb); err != nil {
		t.Fatal(err)
	}

	// The owner claiming the same caller's agent again gets the claim,
	// and no pending abandon takes it away.
	lossy.late, lossy.done = nil, nil
	if _, err := a.ClaimAgent(ctx, store.Claim{Agent: "1002", Queue: "q", MemberUUID: "m2"}); err == nil {
		t.Fatal("lossy claim succeeded")
	}
	lossy.lose = false
	e, err := a.ClaimAgent(ctx, store.Claim{Agent: "1002", Queue: "q", MemberUUID: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	r := a.Metrics().Renewals
	pbxtest.WaitFor(t, bound, func() bool { return a.Metrics().Renewals >= r+4 }, "renewals after the claim")
	claims, _ := sb.Claims(ctx)
	if len(claims) != 1 || claims[0].Agent != "1002" || claims[0].Epoch != e {
		t.Fatalf("claims %+v, want 1002's with epoch %d", claims, e)
	}
}

func TestFailedReleasesAreRetried(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	lossy := &lossyStore{Store: openStore(t, dsn)}
	a, _ := start(t, lossy, "a")
	ctx := context.Background()
	e, err := a.ClaimAgent(ctx, store.Claim{Agent: "1001", Queue: "q", MemberUUID: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	lossy.failReleases.Store(3)
	if err := a.ReleaseClaim(ctx, "1001", e); err == nil {
		t.Fatal("the failing release succeeded")
	}
	pbxtest.WaitFor(t, bound, func() bool {
		claims, err := lossy.Claims(ctx)
		return err == nil && len(claims) == 0
	}, "the release retried at the renewals")
}
