package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// cc_nodes and cc_claims exist on PostgreSQL only: SQLite records the
// migration id (the registry keeps both engines' lists equal) and creates
// nothing, since a single box has no cluster state.
//
// The lease is on the database's clock: renewed_at = now() at each
// renewal, and ages are now() − renewed_at, so the nodes' clocks never
// meet. renew_seq only grows, across incarnations too: a survivor that
// saw it at some value and sees it again a TTL later knows the node did
// not renew (or restart) meanwhile.
func init() {
	addMigration(SQLite, "0500_cluster")
	addMigration(Postgres, "0500_cluster",
		`CREATE TABLE cc_nodes (
			node TEXT COLLATE "C" PRIMARY KEY,
			incarnation BIGINT NOT NULL,
			renew_seq BIGINT NOT NULL DEFAULT 0,
			renewed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
			started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
			dead BOOLEAN NOT NULL DEFAULT false,
			adopted BOOLEAN NOT NULL DEFAULT false,
			config_hash TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE TABLE cc_claims (
			agent TEXT COLLATE "C" PRIMARY KEY,
			queue TEXT NOT NULL,
			member_uuid TEXT NOT NULL,
			node TEXT NOT NULL,
			incarnation BIGINT NOT NULL,
			epoch BIGINT NOT NULL,
			claimed_at TIMESTAMPTZ NOT NULL DEFAULT now()
		)`,
		`CREATE INDEX cc_claims_node ON cc_claims (node, incarnation)`,
		`CREATE SEQUENCE cc_claim_epoch`,
		`CREATE INDEX members_instance ON members (instance_id)`,
	)
	// cc_fenced raises the error a fenced call-center write ends with
	// (notices.go): SQL has no RAISE of its own.
	addMigration(SQLite, "0510_cluster_fence")
	addMigration(Postgres, "0510_cluster_fence",
		`CREATE FUNCTION cc_fenced() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
		BEGIN
			RAISE EXCEPTION 'ccpbx node fenced (declared dead or superseded)' USING ERRCODE = '`+fenceErrCode+`';
		END $$`,
	)
}

// clusterOK refuses the cluster methods on SQLite.
func (s *Store) clusterOK() error {
	if s.db.d.driver != Postgres {
		return ErrClusterUnsupported
	}
	return nil
}

// liveSelf is the fence check every fenced statement carries: the
// caller's node row, live and at its incarnation. FOR SHARE locks it
// until the statement's transaction ends, so a concurrent MarkDead or
// JoinCluster (which update the row) waits for the fenced write, or the
// write waits for them and then sees the row changed: a write can never
// commit for an incarnation already declared dead, and AdoptNode, which
// runs after MarkDead, sees every claim that got in.
const liveSelf = `SELECT 1 FROM cc_nodes WHERE node = ? AND incarnation = ? AND NOT dead FOR SHARE`

// notifySQL is a pg_notify call of a notice built in SQL (keyExpr and from
// are SQL expressions), for notices of rows a statement found itself. A
// SELECT in WITH runs only as far as the main query reads it, so the
// statements make the main query count such a CTE's rows. A payload of
// 8000 bytes or more fails the statement: ccpbx's names are far shorter.
func notifySQL(kind, keyExpr, from string) string {
	return `pg_notify('` + noticeChannel + `', json_build_object('kind', '` + kind + `', 'key', ` + keyExpr + `, 'from', ` + from + `)::text)`
}

// resetAgentsSQL is the tail of a statement whose CTE "released" lists
// the agents (column agent) whose claims were dropped with their node: the
// agents that were ringing or talking for it go back to Waiting (no
// no-answer penalty: the node, not the agent, failed), their offering or
// active tiers back to Ready, and every change is announced, from the
// node id in CTE "n".
var resetAgentsSQL = `, agents_reset AS (
		UPDATE agents SET state = 'Waiting'
		 WHERE name IN (SELECT agent FROM released) AND state IN ('Receiving', 'In a queue call')
		RETURNING name),
	tiers_reset AS (
		UPDATE tiers SET state = 'Ready'
		 WHERE agent IN (SELECT agent FROM released) AND state IN ('Offering', 'Active Inbound')
		RETURNING queue, agent),
	sent AS (
		SELECT ` + notifySQL(NoticeClaim, "agent", "n.id") + ` FROM released, n
		UNION ALL SELECT ` + notifySQL(NoticeAgent, "name", "n.id") + ` FROM agents_reset, n
		UNION ALL SELECT ` + notifySQL(NoticeTier, "queue || '|' || agent", "n.id") + ` FROM tiers_reset, n)
	SELECT agent FROM released WHERE (SELECT count(*) FROM sent) >= 0 ORDER BY agent`

// JoinCluster implements Cluster.JoinCluster.
func (s *Store) JoinCluster(ctx context.Context, node, configHash string) (NodeFence, error) {
	if err := s.clusterOK(); err != nil {
		return NodeFence{}, err
	}
	if node == "" {
		return NodeFence{}, errors.New("store: join cluster: empty node id")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return NodeFence{}, fmt.Errorf("store: join cluster: %w", err)
	}
	defer tx.Rollback()
	f := NodeFence{Node: node}
	if err := tx.QueryRowContext(ctx, `INSERT INTO cc_nodes (node, incarnation, renew_seq, config_hash) VALUES (?, 1, 1, ?)
		ON CONFLICT (node) DO UPDATE SET incarnation = cc_nodes.incarnation + 1, renew_seq = cc_nodes.renew_seq + 1,
			renewed_at = now(), started_at = now(), dead = false, adopted = false, config_hash = excluded.config_hash
		RETURNING incarnation`, node, configHash).Scan(&f.Incarnation); err != nil {
		return NodeFence{}, fmt.Errorf("store: join cluster: %w", err)
	}
	rows, err := tx.raw.QueryContext(ctx, s.db.q(`WITH n AS (SELECT ?::text AS id),
		released AS (DELETE FROM cc_claims WHERE node = ? AND incarnation < ? RETURNING agent)`+resetAgentsSQL),
		node, node, f.Incarnation)
	if err != nil {
		return NodeFence{}, fmt.Errorf("store: join cluster: release old claims: %w", err)
	}
	if _, err := scanStrings(rows); err != nil {
		return NodeFence{}, fmt.Errorf("store: join cluster: release old claims: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+noticeChannel+`', ?)`, payload(NoticeNode, node, node)); err != nil {
		return NodeFence{}, fmt.Errorf("store: join cluster: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return NodeFence{}, fmt.Errorf("store: join cluster: %w", err)
	}
	s.cluster.update(func(v *self) { v.node, v.fence = node, f })
	return f, nil
}

// Heartbeat implements Cluster.Heartbeat: one statement renews f's row
// and reads every row (f's with its new values).
func (s *Store) Heartbeat(ctx context.Context, f NodeFence) ([]NodeState, error) {
	if err := s.clusterOK(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `WITH me AS (
			UPDATE cc_nodes SET renew_seq = renew_seq + 1, renewed_at = now()
			 WHERE node = ? AND incarnation = ? AND NOT dead
			RETURNING node, renew_seq, renewed_at)
		SELECT c.node, c.incarnation, COALESCE(me.renew_seq, c.renew_seq), COALESCE(me.renewed_at, c.renewed_at),
			c.started_at, c.dead, c.adopted, c.config_hash,
			(extract(epoch FROM now() - COALESCE(me.renewed_at, c.renewed_at)) * 1000000)::bigint,
			me.node IS NOT NULL
		FROM cc_nodes c LEFT JOIN me ON me.node = c.node ORDER BY c.node`, f.Node, f.Incarnation)
	if err != nil {
		return nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	defer rows.Close()
	var out []NodeState
	renewed := false
	for rows.Next() {
		var n NodeState
		var ageUS int64
		var mine bool
		if err := rows.Scan(&n.Node, &n.Incarnation, &n.RenewSeq, &n.RenewedAt, &n.StartedAt, &n.Dead, &n.Adopted,
			&n.ConfigHash, &ageUS, &mine); err != nil {
			return nil, fmt.Errorf("store: heartbeat: %w", err)
		}
		n.Age = time.Duration(ageUS) * time.Microsecond
		renewed = renewed || mine
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	if !renewed {
		return out, ErrFenced
	}
	return out, nil
}

// MarkDead implements Cluster.MarkDead. Concurrent callers serialise on
// the dead node's row; the later ones find it dead already (or its
// renew_seq moved) and get false.
func (s *Store) MarkDead(ctx context.Context, f NodeFence, dead string, seenSeq int64) (bool, error) {
	if err := s.clusterOK(); err != nil {
		return false, err
	}
	if dead == f.Node {
		return false, errors.New("store: mark dead: a node cannot declare itself dead")
	}
	// The caller's own row is checked, not locked: two nodes declaring
	// each other dead at once must not deadlock; the one found dead
	// afterwards is fenced from AdoptNode, which locks.
	var won, live bool
	var sent int
	err := s.db.ScanRow(ctx, `WITH me AS (SELECT 1 FROM cc_nodes WHERE node = ? AND incarnation = ? AND NOT dead),
		upd AS (UPDATE cc_nodes SET dead = true
			 WHERE node = ? AND renew_seq = ? AND NOT dead AND EXISTS (SELECT 1 FROM me)
			RETURNING node),
		sent AS (SELECT `+notifySQL(NoticeNode, "node", "?::text")+` FROM upd)
		SELECT EXISTS (SELECT 1 FROM upd), EXISTS (SELECT 1 FROM me), (SELECT count(*) FROM sent)`,
		[]any{f.Node, f.Incarnation, dead, seenSeq, f.Node}, &won, &live, &sent)
	if err != nil {
		return false, fmt.Errorf("store: mark %s dead: %w", dead, err)
	}
	if !live {
		return false, ErrFenced
	}
	return won, nil
}

// AdoptNode implements Cluster.AdoptNode.
func (s *Store) AdoptNode(ctx context.Context, f NodeFence, dead string, now int64) (AdoptResult, error) {
	if err := s.clusterOK(); err != nil {
		return AdoptResult{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: %w", dead, err)
	}
	defer tx.Rollback()
	var one int
	switch err := tx.QueryRowContext(ctx, liveSelf, f.Node, f.Incarnation).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return AdoptResult{}, ErrFenced
	case err != nil:
		return AdoptResult{}, fmt.Errorf("store: adopt %s: %w", dead, err)
	}
	// The dead node's row, locked: one adopter; a node that rejoined
	// meanwhile is not dead any more and keeps its rows.
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM cc_nodes WHERE node = ? AND dead AND NOT adopted FOR UPDATE`, dead).Scan(&one); {
	case errors.Is(err, sql.ErrNoRows):
		return AdoptResult{}, nil
	case err != nil:
		return AdoptResult{}, fmt.Errorf("store: adopt %s: %w", dead, err)
	}
	var res AdoptResult
	rows, err := tx.raw.QueryContext(ctx, s.db.q(`WITH moved AS (
			UPDATE members SET state = 'Abandoned', abandoned_epoch = ?, instance_id = ?, serving_system = ?
			 WHERE instance_id = ? AND state IN ('Waiting', 'Trying', 'Answered')
			RETURNING *),
		sent AS (SELECT `+notifySQL(NoticeMember, "uuid", "?::text")+` FROM moved)
		SELECT `+memberColumns+` FROM moved WHERE (SELECT count(*) FROM sent) >= 0 ORDER BY seq`), now, f.Node, f.Node, dead, f.Node)
	if err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: members: %w", dead, err)
	}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			rows.Close()
			return AdoptResult{}, fmt.Errorf("store: adopt %s: members: %w", dead, err)
		}
		res.Members = append(res.Members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: members: %w", dead, err)
	}
	rows, err = tx.raw.QueryContext(ctx, s.db.q(`WITH n AS (SELECT ?::text AS id),
		released AS (DELETE FROM cc_claims WHERE node = ? RETURNING agent)`+resetAgentsSQL), f.Node, dead)
	if err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: claims: %w", dead, err)
	}
	if res.Agents, err = scanStrings(rows); err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: claims: %w", dead, err)
	}
	// The dead node's bridged calls: the adopter ends their dialogs.
	drows, err := tx.raw.QueryContext(ctx, s.db.q(`DELETE FROM cc_dialogs WHERE node = ? RETURNING bridge, leg, agent, dialog`), dead)
	if err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: dialogs: %w", dead, err)
	}
	for drows.Next() {
		var d BridgeDialog
		if err := drows.Scan(&d.Bridge, &d.Leg, &d.Agent, &d.Dialog); err != nil {
			drows.Close()
			return AdoptResult{}, fmt.Errorf("store: adopt %s: dialogs: %w", dead, err)
		}
		res.Dialogs = append(res.Dialogs, d)
	}
	drows.Close()
	if err := drows.Err(); err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: dialogs: %w", dead, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cc_nodes SET adopted = true WHERE node = ?`, dead); err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: %w", dead, err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+noticeChannel+`', ?)`, payload(NoticeNode, dead, f.Node)); err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: %w", dead, err)
	}
	if err := tx.Commit(); err != nil {
		return AdoptResult{}, fmt.Errorf("store: adopt %s: %w", dead, err)
	}
	return res, nil
}

// scanStrings reads a one-column result and closes it.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
