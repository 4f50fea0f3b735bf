package store

import (
	"context"
	"fmt"
)

// Writable reports whether the database accepts a write now: it opens a
// write transaction and runs a DELETE that matches no row, then rolls back,
// so nothing changes. A read-only or vanished SQLite file, a full disk
// holding the lock, or a PostgreSQL hot standby fails here. It is the
// database check of /healthz.
func (s *Store) Writable(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM schema_migrations WHERE 1 = 0"); err != nil {
		return fmt.Errorf("store: write: %w", err)
	}
	return nil
}
