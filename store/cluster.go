package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Cluster state: what ccpbx nodes sharing one PostgreSQL need beyond the
// call-center tables (package cluster drives it, acd uses the claims):
//
//   - cc_nodes, one row per node id: its current incarnation (a new one per
//     start), a renewal counter and time (the lease, on the database's
//     clock), whether a survivor declared it dead and whether its callers
//     were adopted;
//   - cc_claims, one row per agent being offered or bridged: the one
//     arbiter of "this agent rings for this caller", fenced by the
//     claiming node's incarnation;
//   - notices on channel ccpbx_cc (LISTEN/NOTIFY), always sent inside the
//     transaction of the write they announce, so they arrive at its commit
//     and never for a rolled-back write. A notice is a wake-up naming a
//     row, never the data: receivers read the row (LoadAgent, LoadTier,
//     LoadMember).
//
// Once a store joined (JoinCluster) with notices on (EnableNotices), its
// call-center writes are fenced too (notices.go).
//
// SQLite has none of it: every cluster method but the row readers
// returns ErrClusterUnsupported, and cluster mode requires driver =
// postgres.

// Errors of the cluster methods.
var (
	// ErrFenced: the caller's node row is dead, or its incarnation is no
	// longer the current one (a survivor adopted it, or it restarted).
	ErrFenced = errors.New("store: node fenced (declared dead or superseded)")
	// ErrClaimLost: another live claim holds the agent. Try the next one.
	ErrClaimLost = errors.New("store: agent claimed by another offer")
	// ErrAgentUnavailable: the agents row says the agent may not be
	// offered (its status is not Available or Available (On Demand)).
	// ClaimAgent returns it wrapped together with ErrClaimLost, so
	// errors.Is(err, ErrClaimLost) holds for both: try the next one.
	ErrAgentUnavailable = errors.New("store: agent not available")
	// ErrClusterUnsupported: the engine has no cluster state (SQLite).
	ErrClusterUnsupported = errors.New("store: cluster mode needs driver postgres")
)

// Notice kinds. A notice's Key names the row: the agent's name, the
// tier's TierKey ("queue|agent"), the member's uuid, the claimed agent's name, the
// node id. An empty Key means every row of that kind may have changed
// (TruncateAgents, TruncateTiers).
const (
	NoticeAgent  = "agent"
	NoticeTier   = "tier"
	NoticeMember = "member"
	// NoticeClaim: the agent's claim was taken or released.
	NoticeClaim = "claim"
	// NoticeNode: the node joined (new incarnation), was declared dead or
	// was adopted.
	NoticeNode = "node"
	// NoticeResync is sent by Listen itself (From empty) after its
	// connection broke and was made again: notices of the gap are lost,
	// so the receiver reloads what it mirrors.
	NoticeResync = "resync"
)

// TierKey is a tier notice's key: "queue|agent".
func TierKey(queue, agent string) string { return queue + "|" + agent }

// SplitTierKey undoes TierKey, at the last "|" (mod_callcenter's queue
// names, "3000@default", and agent names hold none; if one ever does, it
// is the queue's).
func SplitTierKey(key string) (queue, agent string, ok bool) {
	i := strings.LastIndexByte(key, '|')
	if i < 0 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// NodeFence is a node's proof that it is the live, current incarnation of
// its node id; every fenced write carries it.
type NodeFence struct {
	Node        string
	Incarnation int64
}

// NodeState is one cc_nodes row as Heartbeat saw it.
type NodeState struct {
	Node                  string
	Incarnation, RenewSeq int64
	RenewedAt, StartedAt  time.Time
	// Dead: a survivor declared the node dead (MarkDead); Adopted: its
	// members and claims were taken over (AdoptNode).
	Dead, Adopted bool
	ConfigHash    string
	// Age is now() − renewed_at on the database's clock.
	Age time.Duration
}

// Claim asks for one agent for one caller of one queue.
type Claim struct {
	Agent, Queue, MemberUUID string
}

// ClaimRow is one cc_claims row.
type ClaimRow struct {
	Claim
	Node               string
	Incarnation, Epoch int64
	ClaimedAt          time.Time
}

// AdoptResult is what AdoptNode took over from a dead node.
type AdoptResult struct {
	// Members were Waiting, Trying or Answered on the dead node and are
	// now Abandoned (abandoned_epoch = the adoption time), instance_id and
	// serving_system = the adopter, joined_epoch and scores kept: a caller
	// who calls back resumes its place.
	Members []MemberRow
	// Agents had claims of the dead node, now released; their state is
	// back to Waiting without a no-answer penalty.
	Agents []string
	// Dialogs are the legs of the dead node's bridged queue calls
	// (SaveBridgeDialogs), taken off cc_dialogs: the adopter sends BYE.
	Dialogs []BridgeDialog
}

// Notice is one notification received on ccpbx_cc.
type Notice struct {
	Kind, Key string
	// From is the sending node's id (empty for NoticeResync).
	From string
}

// Cluster is the shared state of ccpbx nodes on one PostgreSQL.
type Cluster interface {
	// JoinCluster starts a new incarnation of node (creating its row on
	// first start), live and not dead, and releases the claims of its
	// older incarnations (their agents go back to Waiting; notices tell
	// the other nodes).
	JoinCluster(ctx context.Context, node, configHash string) (NodeFence, error)
	// Heartbeat renews f's lease (renew_seq+1, renewed_at = now()) and
	// returns every node's row. ErrFenced when f is dead or superseded.
	Heartbeat(ctx context.Context, f NodeFence) ([]NodeState, error)
	// ClaimAgent takes the agent for c: one winner among all nodes. The
	// epoch identifies the claim for ReleaseClaim. ErrClaimLost when
	// another claim holds the agent (or the agent is not offerable),
	// ErrFenced when f is not live. Claiming again what f already holds
	// for the same caller returns that claim's epoch.
	ClaimAgent(ctx context.Context, f NodeFence, c Claim) (epoch int64, err error)
	// AbandonClaim drops f's claim of c.Agent for that caller and queue,
	// whatever its epoch: the cleanup after a ClaimAgent whose outcome is
	// unknown (a timeout), which may have committed.
	AbandonClaim(ctx context.Context, f NodeFence, c Claim) error
	// ReleaseClaim drops the agent's claim if it is f's with that epoch
	// (a no-op otherwise: the claim was released or adopted already).
	ReleaseClaim(ctx context.Context, f NodeFence, agent string, epoch int64) error
	// Claims lists every claim, by agent.
	Claims(ctx context.Context) ([]ClaimRow, error)
	// MarkDead declares node dead if its renew_seq is still seenSeq and it
	// is not dead yet: true for the one caller that did it. ErrFenced
	// when f is not live.
	MarkDead(ctx context.Context, f NodeFence, dead string, seenSeq int64) (bool, error)
	// AdoptNode takes over a node declared dead and not yet adopted, in
	// one transaction: its live members become Abandoned and f's (see
	// AdoptResult), its claims are released and their agents set back to
	// Waiting, the node is marked adopted; notices go out at commit. An
	// empty result when there is nothing to adopt (adopted already, or
	// the node rejoined). now is the abandoned_epoch (Unix seconds).
	AdoptNode(ctx context.Context, f NodeFence, dead string, now int64) (AdoptResult, error)
	// LoadAgent, LoadTier and LoadMember read the one row a notice names
	// (false when there is none; they work on SQLite too). A tier
	// notice's key splits with SplitTierKey.
	LoadAgent(ctx context.Context, name string) (AgentRow, bool, error)
	LoadTier(ctx context.Context, queue, agent string) (TierRow, bool, error)
	LoadMember(ctx context.Context, uuid string) (MemberRow, bool, error)
	// Notify sends a notice from this node (EnableNotices or JoinCluster
	// named it).
	Notify(ctx context.Context, kind, key string) error
	// Listen receives the notices of every node on a connection of its
	// own (not the pool), made again with backoff when it breaks (then a
	// NoticeResync follows). It fails when the first LISTEN does (for
	// instance behind a transaction-mode pooler). The channel is closed
	// when ctx ends.
	Listen(ctx context.Context) (<-chan Notice, error)
}

var _ Cluster = (*Store)(nil)
