package store

import (
	"context"
	"fmt"
)

// A claim is one cc_claims row per agent: the primary key makes a second
// claim impossible (INSERT … ON CONFLICT DO NOTHING: one winner, no
// waiting on the loser's side), and the fence check locks the claimer's
// node row (liveSelf), so no claim commits for a node once it is declared
// dead. The agents row is checked too: a status set elsewhere a moment
// ago (On Break, Logged Out) wins over a node's stale mirror. An agent
// without a row is not refused: the row, not the claim, is the ACD's.

// ClaimAgent implements Cluster.ClaimAgent in one statement (one round
// trip), its notice delivered at its commit. It is idempotent: when f
// already holds the agent for the same caller and queue (a first attempt
// committed but its answer was lost to a timeout), the existing claim's
// epoch is returned, so a retry does not strand it.
func (s *Store) ClaimAgent(ctx context.Context, f NodeFence, c Claim) (int64, error) {
	if err := s.clusterOK(); err != nil {
		return 0, err
	}
	var live, offerable bool
	var epoch int64
	var sent int
	err := s.db.ScanRow(ctx, `WITH me AS (`+liveSelf+`),
		ok AS (SELECT NOT EXISTS (SELECT 1 FROM agents WHERE name = ?
			AND COALESCE(status, '') NOT IN ('Available', 'Available (On Demand)')) AS v),
		ins AS (INSERT INTO cc_claims (agent, queue, member_uuid, node, incarnation, epoch)
			SELECT ?, ?, ?, ?, ?, nextval('cc_claim_epoch')
			 WHERE EXISTS (SELECT 1 FROM me) AND (SELECT v FROM ok)
			ON CONFLICT (agent) DO NOTHING
			RETURNING agent, epoch),
		sent AS (SELECT `+notifySQL(NoticeClaim, "agent", "?::text")+` FROM ins)
		SELECT EXISTS (SELECT 1 FROM me), (SELECT v FROM ok),
			COALESCE((SELECT epoch FROM ins), (SELECT epoch FROM cc_claims
				WHERE agent = ? AND queue = ? AND member_uuid = ? AND node = ? AND incarnation = ?), 0),
			(SELECT count(*) FROM sent)`,
		[]any{f.Node, f.Incarnation, c.Agent, c.Agent, c.Queue, c.MemberUUID, f.Node, f.Incarnation, f.Node,
			c.Agent, c.Queue, c.MemberUUID, f.Node, f.Incarnation},
		&live, &offerable, &epoch, &sent)
	switch {
	case err != nil:
		return 0, fmt.Errorf("store: claim %s: %w", c.Agent, err)
	case !live:
		return 0, ErrFenced
	case epoch != 0:
		return epoch, nil
	case !offerable:
		return 0, fmt.Errorf("claim %s: %w: %w", c.Agent, ErrClaimLost, ErrAgentUnavailable)
	}
	return 0, ErrClaimLost
}

// ReleaseClaim implements Cluster.ReleaseClaim. It is not fenced: a node
// may always drop its own claim (adoption may have dropped it already).
func (s *Store) ReleaseClaim(ctx context.Context, f NodeFence, agent string, epoch int64) error {
	if err := s.clusterOK(); err != nil {
		return err
	}
	var sent int
	err := s.db.ScanRow(ctx, `WITH del AS (
			DELETE FROM cc_claims WHERE agent = ? AND node = ? AND incarnation = ? AND epoch = ? RETURNING agent),
		sent AS (SELECT `+notifySQL(NoticeClaim, "agent", "?::text")+` FROM del)
		SELECT count(*) FROM sent`, []any{agent, f.Node, f.Incarnation, epoch, f.Node}, &sent)
	if err != nil {
		return fmt.Errorf("store: release claim %s: %w", agent, err)
	}
	return nil
}

// AbandonClaim implements Cluster.AbandonClaim.
func (s *Store) AbandonClaim(ctx context.Context, f NodeFence, c Claim) error {
	if err := s.clusterOK(); err != nil {
		return err
	}
	var sent int
	err := s.db.ScanRow(ctx, `WITH del AS (
			DELETE FROM cc_claims WHERE agent = ? AND queue = ? AND member_uuid = ? AND node = ? AND incarnation = ?
			RETURNING agent),
		sent AS (SELECT `+notifySQL(NoticeClaim, "agent", "?::text")+` FROM del)
		SELECT count(*) FROM sent`, []any{c.Agent, c.Queue, c.MemberUUID, f.Node, f.Incarnation, f.Node}, &sent)
	if err != nil {
		return fmt.Errorf("store: abandon claim %s: %w", c.Agent, err)
	}
	return nil
}

// Claims implements Cluster.Claims.
func (s *Store) Claims(ctx context.Context) ([]ClaimRow, error) {
	if err := s.clusterOK(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT agent, queue, member_uuid, node, incarnation, epoch, claimed_at
		FROM cc_claims ORDER BY agent`)
	if err != nil {
		return nil, fmt.Errorf("store: claims: %w", err)
	}
	defer rows.Close()
	var out []ClaimRow
	for rows.Next() {
		var c ClaimRow
		if err := rows.Scan(&c.Agent, &c.Queue, &c.MemberUUID, &c.Node, &c.Incarnation, &c.Epoch, &c.ClaimedAt); err != nil {
			return nil, fmt.Errorf("store: claims: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claims: %w", err)
	}
	return out, nil
}
