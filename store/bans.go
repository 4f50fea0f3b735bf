package store

import (
	"context"
	"fmt"
	"time"
)

func init() {
	addMigration(SQLite, "0300_bans", `CREATE TABLE bans (
		source   TEXT NOT NULL,
		addr     TEXT NOT NULL,
		until_ms INTEGER NOT NULL,
		failures INTEGER NOT NULL,
		PRIMARY KEY (source, addr)
	)`)
	// PostgreSQL: milliseconds need BIGINT; the key sorts bytewise.
	addMigration(Postgres, "0300_bans", `CREATE TABLE bans (
		source   TEXT COLLATE "C" NOT NULL,
		addr     TEXT COLLATE "C" NOT NULL,
		until_ms BIGINT NOT NULL,
		failures BIGINT NOT NULL,
		PRIMARY KEY (source, addr)
	)`)
}

// Ban is one persisted ban of an address by one listener ("sip",
// "event_socket"). Whoever wires the ban tables owns its meaning; store
// only keeps the row.
type Ban struct {
	Source   string
	Addr     string
	Until    time.Time
	Failures int
}

// SaveBan inserts or replaces the ban of (b.Source, b.Addr).
func (s *Store) SaveBan(ctx context.Context, b Ban) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO bans (source, addr, until_ms, failures) VALUES (?, ?, ?, ?)
		ON CONFLICT (source, addr) DO UPDATE SET until_ms = excluded.until_ms, failures = excluded.failures`,
		b.Source, b.Addr, b.Until.UnixMilli(), b.Failures)
	if err != nil {
		return fmt.Errorf("store: save ban %s %s: %w", b.Source, b.Addr, err)
	}
	return nil
}

// DeleteBan removes the ban of addr by source; a missing row is not an
// error.
func (s *Store) DeleteBan(ctx context.Context, source, addr string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE source = ? AND addr = ?`, source, addr); err != nil {
		return fmt.Errorf("store: delete ban %s %s: %w", source, addr, err)
	}
	return nil
}

// Bans deletes the bans that ended by now and returns the others, ordered
// by source and address.
func (s *Store) Bans(ctx context.Context, now time.Time) ([]Ban, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE until_ms <= ?`, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("store: prune bans: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT source, addr, until_ms, failures FROM bans ORDER BY source, addr`)
	if err != nil {
		return nil, fmt.Errorf("store: list bans: %w", err)
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var (
			b  Ban
			ms int64
		)
		if err := rows.Scan(&b.Source, &b.Addr, &ms, &b.Failures); err != nil {
			return nil, fmt.Errorf("store: list bans: %w", err)
		}
		b.Until = time.UnixMilli(ms)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list bans: %w", err)
	}
	return out, nil
}
