// Package cluster is node membership and liveness of ccpbx nodes sharing
// one PostgreSQL: each node joins with a new incarnation, renews its lease
// (cc_nodes) on a timer, fences itself when it cannot renew, declares
// peers dead by the grace rule, adopts a dead peer's callers and claims,
// and relays the database's notices to its owner as events.
package cluster

import (
	"context"
	"errors"
	"log/slog"
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
	// Notice: another node's notice (Event.Notice), or a NoticeResync.
	Notice EventKind = iota + 1
	// NodeDead: this node declared Event.Node dead.
	NodeDead
	// Adopted: this node adopted Event.Node (Event.Adopt).
	Adopted
	// Fenced: this node was declared dead or superseded; its claims and
	// waiting members are gone (the owner hangs up its queue calls).
	Fenced
	// Rejoined: this node joined again with a new incarnation (Fence()).
	Rejoined
)

// Event is something the node's owner acts on.
type Event struct {
	Kind   EventKind
	Notice store.Notice
	Adopt  store.AdoptResult
	Node   string
}

// Node is this ccpbx's membership in the cluster.
type Node struct {
	cfg Config
	st  store.Cluster
}

// Start joins the cluster and starts the renewal and listening goroutines.
func Start(ctx context.Context, st store.Cluster, cfg Config) (*Node, error) {
	return nil, errors.New("cluster: not implemented yet")
}

// Fence is the node's current fence (a new one after Rejoined).
func (n *Node) Fence() store.NodeFence { return store.NodeFence{} }

// Events delivers the node's events; closed by Close.
func (n *Node) Events() <-chan Event { return nil }

// Healthy is false once the node's own renewals have failed for TTL
// minus a margin: new calls go elsewhere (503).
func (n *Node) Healthy() bool { return false }

// Status is every node's row as of the last successful renewal.
func (n *Node) Status() []store.NodeState { return nil }

// Close stops the goroutines. It releases nothing in the database: the
// peers see the lease expire (a restart with the same id rejoins).
func (n *Node) Close() {}

// ClaimAgent claims an agent for a caller with the node's current fence
// (store.Cluster.ClaimAgent), counting claims, lost claims and fenced
// writes for Metrics. ErrFenced also starts the node's rejoin.
func (n *Node) ClaimAgent(ctx context.Context, c store.Claim) (epoch int64, err error) {
	return 0, errors.New("cluster: not implemented yet")
}

// ReleaseClaim releases a claim this node holds (store.Cluster.ReleaseClaim
// with the current fence).
func (n *Node) ReleaseClaim(ctx context.Context, agent string, epoch int64) error {
	return errors.New("cluster: not implemented yet")
}

// Metrics are the node's counters since Start, for api/metrics
// (Prometheus counters, and a summary of renewal latency).
type Metrics struct {
	// Claims taken, lost to another node or an unavailable agent, and
	// writes refused because this node was fenced.
	Claims, ClaimsLost, FencedWrites uint64
	// Adoptions of dead nodes by this node, and the members they moved.
	Adoptions, AdoptedMembers uint64
	// NodesDeclaredDead by this node.
	NodesDeclaredDead uint64
	// Renewals that succeeded and failed; RenewSeconds is the sum of the
	// successful renewals' round trips (a summary's _sum, with Renewals
	// as _count), LastRenew the latest one.
	Renewals, RenewFailures uint64
	RenewSeconds            float64
	LastRenew               time.Duration
	// Rejoins after being fenced, and events dropped because the owner
	// did not read Events in time.
	Rejoins, EventsDropped uint64
}

// Metrics reads the counters.
func (n *Node) Metrics() Metrics { return Metrics{} }
