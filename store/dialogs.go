package store

import (
	"context"
	"fmt"
)

// cc_dialogs holds the SIP dialogs of each node's bridged queue calls
// (both legs, as opaque JSON the sip package writes): when a node dies,
// its adopter takes them in AdoptNode and sends BYE on each, so the
// agent's phone and the caller are freed (scale-out §4.4, stage 1).
// PostgreSQL only, like the other cluster tables.
func init() {
	addMigration(SQLite, "0520_cluster_dialogs")
	addMigration(Postgres, "0520_cluster_dialogs",
		`CREATE TABLE cc_dialogs (
			node TEXT NOT NULL,
			incarnation BIGINT NOT NULL,
			bridge TEXT NOT NULL,
			leg TEXT NOT NULL,
			agent TEXT NOT NULL,
			dialog TEXT NOT NULL,
			created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
			PRIMARY KEY (node, bridge, leg)
		)`,
	)
}

// BridgeDialog is one leg of a bridged queue call in cc_dialogs.
type BridgeDialog struct {
	// Bridge names the bridge (the caller's channel uuid), Leg the side
	// ("caller", "agent").
	Bridge, Leg, Agent string
	// Dialog is what the sip package needs to end the dialog (JSON).
	Dialog string
}

// maxBridgeDialog bounds a stored dialog: route sets are short.
const maxBridgeDialog = 16 << 10

// SaveBridgeDialogs records the dialogs of f's bridge, fenced: a node
// declared dead writes none (its adopter may have taken its rows).
func (s *Store) SaveBridgeDialogs(ctx context.Context, f NodeFence, ds []BridgeDialog) error {
	if err := s.clusterOK(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: save dialogs: %w", err)
	}
	defer tx.Rollback()
	var one int
	if err := tx.QueryRowContext(ctx, liveSelf, f.Node, f.Incarnation).Scan(&one); err != nil {
		return fmt.Errorf("store: save dialogs: %w", ErrFenced)
	}
	for _, d := range ds {
		if len(d.Dialog) > maxBridgeDialog {
			return fmt.Errorf("store: save dialogs: dialog of %d bytes", len(d.Dialog))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cc_dialogs (node, incarnation, bridge, leg, agent, dialog)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node, bridge, leg) DO UPDATE
			SET incarnation = EXCLUDED.incarnation, agent = EXCLUDED.agent, dialog = EXCLUDED.dialog`,
			f.Node, f.Incarnation, d.Bridge, d.Leg, d.Agent, d.Dialog); err != nil {
			return fmt.Errorf("store: save dialogs: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: save dialogs: %w", err)
	}
	return nil
}

// DropBridgeDialogs forgets f's bridge once it ended (not fenced: a node
// may always drop its own rows).
func (s *Store) DropBridgeDialogs(ctx context.Context, f NodeFence, bridge string) error {
	if err := s.clusterOK(); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM cc_dialogs WHERE node = ? AND bridge = ?`, f.Node, bridge); err != nil {
		return fmt.Errorf("store: drop dialogs %s: %w", bridge, err)
	}
	return nil
}
