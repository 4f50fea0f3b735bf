package store

import (
	"context"
	"errors"
)

// errTODO marks the PostgreSQL queries still to come (contract commit).
var errTODO = errors.New("store: cluster state not implemented yet")

func (s *Store) clusterOK() error {
	if s.db.d.driver != Postgres {
		return ErrClusterUnsupported
	}
	return errTODO
}

// JoinCluster implements Cluster.JoinCluster.
func (s *Store) JoinCluster(ctx context.Context, node, configHash string) (NodeFence, error) {
	return NodeFence{}, s.clusterOK()
}

// Heartbeat implements Cluster.Heartbeat.
func (s *Store) Heartbeat(ctx context.Context, f NodeFence) ([]NodeState, error) {
	return nil, s.clusterOK()
}

// ClaimAgent implements Cluster.ClaimAgent.
func (s *Store) ClaimAgent(ctx context.Context, f NodeFence, c Claim) (int64, error) {
	return 0, s.clusterOK()
}

// ReleaseClaim implements Cluster.ReleaseClaim.
func (s *Store) ReleaseClaim(ctx context.Context, f NodeFence, agent string, epoch int64) error {
	return s.clusterOK()
}

// Claims implements Cluster.Claims.
func (s *Store) Claims(ctx context.Context) ([]ClaimRow, error) { return nil, s.clusterOK() }

// MarkDead implements Cluster.MarkDead.
func (s *Store) MarkDead(ctx context.Context, f NodeFence, dead string, seenSeq int64) (bool, error) {
	return false, s.clusterOK()
}

// AdoptNode implements Cluster.AdoptNode.
func (s *Store) AdoptNode(ctx context.Context, f NodeFence, dead string, now int64) (AdoptResult, error) {
	return AdoptResult{}, s.clusterOK()
}

// LoadAgent implements Cluster.LoadAgent.
func (s *Store) LoadAgent(ctx context.Context, name string) (AgentRow, bool, error) {
	return AgentRow{}, false, s.clusterOK()
}

// LoadMember implements Cluster.LoadMember.
func (s *Store) LoadMember(ctx context.Context, uuid string) (MemberRow, bool, error) {
	return MemberRow{}, false, s.clusterOK()
}
