package cluster

import (
	"context"

	"ccpbx/store"
)

// ACDView is the node as the ACD uses it (acd.Cluster): its id, its agent
// claims, and the shared rows the ACD mirrors from other nodes' notices.
// acd does not import this package; the wiring (cmd/ccpbx) and acd's tests
// hand it this view.
type ACDView struct{ n *Node }

// ACDView returns the node's view for the ACD.
func (n *Node) ACDView() ACDView { return ACDView{n} }

// Node is this node's id.
func (v ACDView) Node() string { return v.n.cfg.Node }

// ClaimAgent claims agent for member of queue (Node.ClaimAgent).
func (v ACDView) ClaimAgent(ctx context.Context, agent, queue, member string) (int64, error) {
	return v.n.ClaimAgent(ctx, store.Claim{Agent: agent, Queue: queue, MemberUUID: member})
}

// ReleaseClaim drops this node's claim of that epoch (Node.ReleaseClaim).
func (v ACDView) ReleaseClaim(ctx context.Context, agent string, epoch int64) error {
	return v.n.ReleaseClaim(ctx, agent, epoch)
}

// LoadAgent reads one shared agent row.
func (v ACDView) LoadAgent(ctx context.Context, name string) (store.AgentRow, bool, error) {
	return v.n.st.LoadAgent(ctx, name)
}

// LoadTier reads one shared tier row.
func (v ACDView) LoadTier(ctx context.Context, queue, agent string) (store.TierRow, bool, error) {
	return v.n.st.LoadTier(ctx, queue, agent)
}

// LoadMember reads one shared member row.
func (v ACDView) LoadMember(ctx context.Context, uuid string) (store.MemberRow, bool, error) {
	return v.n.st.LoadMember(ctx, uuid)
}
