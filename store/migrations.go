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
	migrations   = map[Driver]map[string]migration{}
)

// addMigration registers a schema change for one driver. Files of this
// package call it from init(), one id per change ("0001_registrations",
// "0100_callcenter" …), once per driver with that engine's DDL: a new
// table is one addMigration(SQLite, …) and one addMigration(Postgres, …)
// with the same id (TestMigrationsCoverEveryDriver fails otherwise). Ids
// are applied in lexical order, each exactly once, recorded in
// schema_migrations. A released migration is never edited: a later change
// gets a new id.
func addMigration(d Driver, id string, stmts ...string) {
	migrationsMu.Lock()
	defer migrationsMu.Unlock()
	if id == "" {
		panic("store: migration with empty id")
	}
	if d != SQLite && d != Postgres {
		panic("store: migration " + id + " for unknown driver " + string(d))
	}
	if migrations[d] == nil {
		migrations[d] = map[string]migration{}
	}
	if _, dup := migrations[d][id]; dup {
		// Two files claiming one id is a programming error caught by any test.
		panic("store: duplicate migration id " + id + " for " + string(d))
	}
	migrations[d][id] = migration{id: id, stmts: stmts}
}

// sortedMigrations returns a driver's registry in application order.
func sortedMigrations(d Driver) []migration {
	migrationsMu.Lock()
	defer migrationsMu.Unlock()
	out := make([]migration, 0, len(migrations[d]))
	for _, m := range migrations[d] {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// migrate applies every registered migration not yet recorded, each in its
// own transaction together with its schema_migrations row, so a crash
// leaves the database at a migration boundary.
func (s *Store) migrate(ctx context.Context) error {
	if err := s.inMigrationTx(ctx, func(tx sqlTx) error {
		_, err := tx.ExecContext(ctx, s.db.d.migrationsDDL)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range sortedMigrations(s.db.d.driver) {
		if err := s.inMigrationTx(ctx, func(tx sqlTx) error { return apply(ctx, tx, m) }); err != nil {
			return fmt.Errorf("migration %s: %w", m.id, err)
		}
	}
	return nil
}

// inMigrationTx runs f in a transaction that holds the dialect's migration
// lock.
func (s *Store) inMigrationTx(ctx context.Context, f func(sqlTx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if l := s.db.d.lockMigrations; l != "" {
		if _, err := tx.ExecContext(ctx, l); err != nil {
			return fmt.Errorf("lock migrations: %w", err)
		}
	}
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func apply(ctx context.Context, tx sqlTx, m migration) error {
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
	_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)`, m.id, time.Now().Unix())
	return err
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
