// Package cluster is node membership and liveness of ccpbx nodes sharing
// one PostgreSQL: each node joins with a new incarnation, renews its lease
// (cc_nodes) on a timer, fences itself when it cannot renew, declares
// peers dead by the grace rule, adopts a dead peer's callers and claims,
// and relays the database's notices to its owner as events.
//
// The rules (reference/scale-out.md §4.4):
//   - Renewal every Config.Renew; the lease lives on the database's clock.
//   - Grace rule (R4): a peer is dead only when its renew_seq has not moved
//     across this node's own successful renewals spanning at least one
//     TTL, with no failed or late renewal of its own in between (a
//     database outage makes every lease look old: it must not adopt then),
//     and the database itself says the peer's row is a TTL old (which
//     dates the peer's last renewal, so the death is seen within
//     TTL + Renew of it, not a renewal period later). Then
//     MarkDead (one winner among survivors), AdoptNode, events NodeDead and
//     Adopted. A peer found dead and not adopted (its declarer died in
//     between) is adopted by whoever sees it.
//   - Self-fencing (R7): Healthy turns false once this node's own renewals
//     have failed for TTL − TTL/6, measured on the monotonic clock from the
//     send time of the last successful one; the owner then answers new
//     calls 503.
//   - Fenced: a renewal (or a claim) refused because a survivor declared
//     this node dead, or another process joined with the same node id.
//     The node emits Fenced, joins again with a new incarnation and emits
//     Rejoined. Fenced by a newer live incarnation of its own id (a second
//     process started with the same node_id), it stays fenced and
//     unhealthy instead: the newest process wins, no flapping.
//   - Claims go through Node.ClaimAgent and Node.ReleaseClaim, which count
//     them and see that no claim is stranded by a lost answer: a claim of
//     unknown outcome is abandoned, a failed release retried, at every
//     renewal.
//
// Use: open the store with driver postgres, call its EnableNotices(node)
// so every call-center write announces itself, Start a Node, read Events
// for as long as it runs, claim agents through Node.ClaimAgent (one
// winner cluster-wide), answer new calls 503 while !Healthy(), and Close
// at shutdown.
//
// Design choice (issue #16): every node runs its own ACD for its own
// callers; the atomic claim (store.Cluster.ClaimAgent, through
// Node.ClaimAgent) is the one arbiter of an agent, so there is no ACD
// leader to fail over, and a lease is needed only for liveness and
// adoption.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"ccpbx/store"
)

// Config configures a node ([cluster]).
type Config struct {
	// Node is this node's id ([cluster] node_id).
	Node string
	// TTL is the lease: a node not renewing for this long may be declared
	// dead by a survivor, and fences itself a margin earlier.
	TTL time.Duration
	// Renew is the renewal period (TTL/3 when zero).
	Renew time.Duration
	// ConfigHash is published in cc_nodes so drift between nodes shows.
	ConfigHash string
	// Log receives the node's decisions (slog.Default when nil).
	Log *slog.Logger
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// Notice: another node's notice (Event.Notice), or a
	// store.NoticeResync (reload what you mirror: notices were lost).
	Notice EventKind = iota + 1
	// NodeDead: this node declared Event.Node dead.
	NodeDead
	// Adopted: this node adopted Event.Node (Event.Adopt).
	Adopted
	// Fenced: this node was declared dead or superseded; its claims and
	// waiting members are gone (the owner hangs up its queue calls and
	// forgets its claims). Rejoined follows, unless a newer process
	// took this node id (then the node stays fenced). Until Rejoined the
	// store refuses this node's call-center writes (store.ErrFenced);
	// after it they pass again, so an owner that queued writes before a
	// stall drops them here rather than replay stale state.
	Fenced
	// Rejoined: this node joined again with a new incarnation (Fence()).
	Rejoined
)

func (k EventKind) String() string {
	switch k {
	case Notice:
		return "notice"
	case NodeDead:
		return "node-dead"
	case Adopted:
		return "adopted"
	case Fenced:
		return "fenced"
	case Rejoined:
		return "rejoined"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something the node's owner acts on.
type Event struct {
	Kind   EventKind
	Notice store.Notice
	Adopt  store.AdoptResult
	// Node is the peer of NodeDead and Adopted, this node's id otherwise.
	Node string
}

// Node is this ccpbx's membership in the cluster.
type Node struct {
	cfg    Config
	st     store.Cluster
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	q      *queue
	// kick asks the renewal loop to renew now (a claim found the node
	// fenced).
	kick chan struct{}
	m    counters
	// now is the monotonic clock of the liveness rules (tests step it).
	now func() time.Time

	// abandons are claims of unknown outcome to drop (ClaimAgent), and
	// releases the releases to try again (ReleaseClaim).
	claimMu  sync.Mutex
	abandons map[store.Claim]abandon
	releases map[release]store.NodeFence

	mu     sync.Mutex
	fence  store.NodeFence
	fenced bool // between Fenced and Rejoined
	// superseded: fenced by a newer live incarnation of this node id (a
	// second process): stays fenced, never rejoins.
	superseded bool
	// lastOK is the send time of the last successful renewal (monotonic).
	lastOK time.Time
	status []store.NodeState
}

// Bounds.
const (
	// minTTL keeps the timers sane; production uses seconds.
	minTTL = 100 * time.Millisecond
	// eventBuffer bounds the notices queued for a slow owner (see queue).
	eventBuffer = 1024
	// abandonTimeout bounds the cleanup of a claim of unknown outcome.
	abandonTimeout = 2 * time.Second
)

// Start joins the cluster as a new incarnation of cfg.Node, subscribes to
// the notices, and starts the renewal and listening goroutines, which run
// until Close (ctx only bounds the start).
func Start(ctx context.Context, st store.Cluster, cfg Config) (*Node, error) {
	if cfg.Node == "" {
		return nil, errors.New("cluster: empty node id")
	}
	if cfg.TTL < minTTL {
		return nil, fmt.Errorf("cluster: lease TTL %v below %v", cfg.TTL, minTTL)
	}
	if cfg.Renew <= 0 {
		cfg.Renew = cfg.TTL / 3
	}
	if cfg.Renew >= cfg.TTL/2 {
		return nil, fmt.Errorf("cluster: renew period %v must be under half the TTL %v", cfg.Renew, cfg.TTL)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	lctx, cancel := context.WithCancel(context.Background())
	notices, err := st.Listen(lctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	sent := time.Now()
	f, err := st.JoinCluster(ctx, cfg.Node, cfg.ConfigHash)
	if err != nil {
		cancel()
		for range notices {
		}
		return nil, fmt.Errorf("cluster: join: %w", err)
	}
	n := &Node{
		cfg: cfg, st: st, log: cfg.Log.With("node", cfg.Node), cancel: cancel,
		q: newQueue(eventBuffer), kick: make(chan struct{}, 1),
		fence: f, lastOK: sent, now: time.Now,
		abandons: map[store.Claim]abandon{}, releases: map[release]store.NodeFence{},
	}
	n.log.Info("cluster: joined", "incarnation", f.Incarnation, "ttl", cfg.TTL, "renew", cfg.Renew)
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.q.run(lctx) }()
	go func() { defer n.wg.Done(); n.listen(notices) }()
	go func() { defer n.wg.Done(); n.renewLoop(lctx) }()
	return n, nil
}

// Fence is the node's current fence (a new one after Rejoined).
func (n *Node) Fence() store.NodeFence {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fence
}

// Events delivers the node's events in order; closed by Close. The owner
// must keep reading: the renewal loop never waits for it. Fenced,
// Rejoined, NodeDead and Adopted are always delivered; when eventBuffer
// notices are waiting (besides the one being handed over), further
// notices are dropped (counted
// in Metrics.EventsDropped) and one store.NoticeResync notice takes their
// place once the owner catches up, so the owner reloads instead.
func (n *Node) Events() <-chan Event { return n.q.out }

// Healthy is false once the node's own renewals have failed for TTL
// minus a margin (TTL/6), and while it is fenced: new calls go elsewhere
// (503).
func (n *Node) Healthy() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.fenced && n.now().Sub(n.lastOK) < n.selfFenceAfter()
}

func (n *Node) selfFenceAfter() time.Duration { return n.cfg.TTL - n.cfg.TTL/6 }

// Status is every node's row as of the last successful renewal.
func (n *Node) Status() []store.NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]store.NodeState(nil), n.status...)
}

// Close stops the goroutines and closes Events. It releases nothing in
// the database: peers see the lease expire and adopt (a restart with the
// same id rejoins first and keeps its rows).
func (n *Node) Close() {
	n.cancel()
	n.wg.Wait()
}

// listen turns the store's notices into events; other nodes' only (the
// owner already knows what it wrote).
func (n *Node) listen(notices <-chan store.Notice) {
	for nt := range notices {
		if nt.From == n.cfg.Node {
			continue
		}
		n.q.push(Event{Kind: Notice, Notice: nt}, &n.m.eventsDropped)
	}
}

// ClaimAgent claims an agent for a caller with the node's current fence
// (store.Cluster.ClaimAgent), counting claims, lost claims and fenced
// writes for Metrics. ErrFenced also makes the node renew at once, which
// starts its rejoin. Any other error leaves the outcome unknown: the
// claim may have committed, or commit later, after its answer was lost
// (a timeout, a dropped connection). So it is abandoned, at once and
// again at every renewal for a TTL (until the node rejoins), unless the
// owner claims the same agent for the same caller again first (which
// then gets that claim, ClaimAgent being idempotent). No claim is
// stranded by a lost answer.
func (n *Node) ClaimAgent(ctx context.Context, c store.Claim) (epoch int64, err error) {
	n.claimMu.Lock()
	delete(n.abandons, c)
	n.claimMu.Unlock()
	f := n.Fence()
	epoch, err = n.st.ClaimAgent(ctx, f, c)
	switch {
	case err == nil:
		n.m.claims.Add(1)
	case errors.Is(err, store.ErrClaimLost):
		n.m.claimsLost.Add(1)
	case errors.Is(err, store.ErrFenced):
		n.m.fencedWrites.Add(1)
		select {
		case n.kick <- struct{}{}:
		default:
		}
	default:
		n.claimMu.Lock()
		n.abandons[c] = abandon{f: f, since: n.now()}
		n.claimMu.Unlock()
		n.abandon(c)
	}
	return epoch, err
}

// abandon is a claim of unknown outcome to drop.
type abandon struct {
	f     store.NodeFence
	since time.Time
	done  bool // dropped once (a late commit may still come)
}

// abandon drops one pending claim if it is still pending; a ClaimAgent of
// the same claim waits for it (claimMu), so it never drops a claim the
// owner was just granted.
func (n *Node) abandon(c store.Claim) {
	n.claimMu.Lock()
	defer n.claimMu.Unlock()
	a, ok := n.abandons[c]
	if !ok {
		return
	}
	actx, cancel := context.WithTimeout(context.Background(), abandonTimeout)
	err := n.st.AbandonClaim(actx, a.f, c)
	cancel()
	if err != nil {
		n.log.Warn("cluster: a claim of unknown outcome not dropped yet (retried at the next renewal)",
			"agent", c.Agent, "member", c.MemberUUID, "err", err)
		return
	}
	a.done = true
	if n.now().Sub(a.since) >= n.cfg.TTL {
		delete(n.abandons, c)
		return
	}
	n.abandons[c] = a
}

// retryAbandons runs at every renewal.
func (n *Node) retryAbandons() {
	n.claimMu.Lock()
	pending := make([]store.Claim, 0, len(n.abandons))
	for c := range n.abandons {
		pending = append(pending, c)
	}
	n.claimMu.Unlock()
	for _, c := range pending {
		n.abandon(c)
	}
}

// ReleaseClaim releases a claim this node holds (store.Cluster.ReleaseClaim
// with the current fence). A release that fails is retried at every
// renewal until it succeeds or the node rejoins (which releases every
// older claim): a lost release must not keep an agent claimed. The error
// is still returned.
func (n *Node) ReleaseClaim(ctx context.Context, agent string, epoch int64) error {
	f := n.Fence()
	err := n.st.ReleaseClaim(ctx, f, agent, epoch)
	if err != nil {
		n.claimMu.Lock()
		n.releases[release{agent, epoch}] = f
		n.claimMu.Unlock()
	}
	return err
}

// release is a claim whose release failed.
type release struct {
	agent string
	epoch int64
}

// retryReleases runs at every renewal.
func (n *Node) retryReleases() {
	n.claimMu.Lock()
	pending := make(map[release]store.NodeFence, len(n.releases))
	for r, f := range n.releases {
		pending[r] = f
	}
	n.claimMu.Unlock()
	for r, f := range pending {
		ctx, cancel := context.WithTimeout(context.Background(), abandonTimeout)
		err := n.st.ReleaseClaim(ctx, f, r.agent, r.epoch)
		cancel()
		if err != nil {
			n.log.Warn("cluster: a claim's release failed again (retried at the next renewal)", "agent", r.agent, "err", err)
			continue
		}
		n.claimMu.Lock()
		delete(n.releases, r)
		n.claimMu.Unlock()
	}
}
