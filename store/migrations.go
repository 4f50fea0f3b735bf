package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// migration is one schema change, applied once per database.
type migration struct {
	id    string
	stmts []string
}

var (
	migrationsMu sync.Mutex
	migrations   = map[string]migration{}
)

// addMigration registers a schema change. Files of this package call it
// from init(), one id per change ("0001_registrations",
// "0100_callcenter_agents" …). Ids are applied in lexical order, each
// exactly once, recorded in schema_migrations. A released migration is
// never edited: a later change gets a new id.
func addMigration(id string, stmts ...string) {
	migrationsMu.Lock()
	defer migrationsMu.Unlock()
	if id == "" {
		panic("store: migration with empty id")
	}
	if _, dup := migrations[id]; dup {
		// Two files claiming one id is a programming error caught by any test.
		panic("store: duplicate migration id " + id)
	}
	migrations[id] = migration{id: id, stmts: stmts}
}

// sortedMigrations returns the registry in application order.
func sortedMigrations() []migration {
	migrationsMu.Lock()
	defer migrationsMu.Unlock()
	out := make([]migration, 0, len(migrations))
	for _, m := range migrations {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// migrate applies every registered migration not yet recorded, each in its
// own transaction together with its schema_migrations row, so a crash
// leaves the database at a migration boundary.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		id TEXT PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range sortedMigrations() {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.id, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE id = ?`, m.id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for i, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)`, m.id, time.Now().Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// AppliedMigrations lists the ids recorded in schema_migrations, in order.
func (s *Store) AppliedMigrations(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM schema_migrations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list migrations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: list migrations: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list migrations: %w", err)
	}
	return ids, nil
}
