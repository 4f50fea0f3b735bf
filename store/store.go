// Package store owns ccpbx's persistent state: the schema, its versioned
// migrations, and small typed read/write methods per concept
// (registrations, call-center state, queue statistics, bans, call detail
// records), on one of two engines:
//
//   - SQLite (the default, sqlite.go): one file, data_dir/ccpbx.db, through
//     modernc.org/sqlite (pure Go), for a single box;
//   - PostgreSQL (postgres.go): a server named by a DSN, through
//     github.com/jackc/pgx/v5 (pure Go), the system of record a cluster
//     of nodes will share.
//
// Consumers depend on the per-concern interfaces below (Registrations,
// Callcenter, Statistics, Bans, CDRs, and Cluster: the nodes' leases,
// agent claims and notices, PostgreSQL only, see cluster.go), never on
// the engine. The queries
// are written once (dialect.go says how); the schema is written per engine
// (migrations.go says how to port a table). store/storetest runs a test on
// both engines; store/pgtest gives tests a throwaway PostgreSQL.
//
// It must not hold business rules: callers (registrar, acd, cdr) decide
// what to save and when; store only reads and writes rows. It imports no
// other ccpbx package.
package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// Registrations keeps the registrar's bindings.
type Registrations interface {
	ApplyRegistrations(ctx context.Context, save []Registration, del []RegistrationKey) error
	Registrations(ctx context.Context) ([]Registration, error)
}

// Callcenter keeps mod_callcenter's agents, tiers and members for acd.
type Callcenter interface {
	LoadCallcenter(ctx context.Context) (*CallcenterRows, error)
	UpsertAgent(ctx context.Context, a AgentRow) error
	DeleteAgent(ctx context.Context, name string) error
	UpsertTier(ctx context.Context, t TierRow) error
	DeleteTier(ctx context.Context, queue, agent string) error
	UpsertMember(ctx context.Context, m MemberRow) error
	DeleteMember(ctx context.Context, uuid string) error
	TruncateAgents(ctx context.Context) error
	TruncateTiers(ctx context.Context) error
	ApplyCallcenter(ctx context.Context, ws []CallcenterWrite) error
}

// Statistics keeps the queue statistics and counters acd adds up.
type Statistics interface {
	AddQueueStats(ctx context.Context, deltas []StatsRow) error
	QueueStats(ctx context.Context, since int64) ([]StatsRow, error)
	SaveQueueCounters(ctx context.Context, queue string, c QueueCounters) error
	LoadQueueCounters(ctx context.Context) (map[string]QueueCounters, error)
}

// Bans keeps the SIP and event socket bans (cmd/ccpbx wires them).
type Bans interface {
	SaveBan(ctx context.Context, b Ban) error
	DeleteBan(ctx context.Context, source, addr string) error
	Bans(ctx context.Context, now time.Time) ([]Ban, error)
}

// CDRs keeps call detail records for package cdr.
type CDRs interface {
	InsertCDRs(ctx context.Context, recs []CDR) error
	RecentCDRs(ctx context.Context, n int) ([]CDR, error)
}

// Both engines implement every concern.
var (
	_ Registrations = (*Store)(nil)
	_ Callcenter    = (*Store)(nil)
	_ Statistics    = (*Store)(nil)
	_ Bans          = (*Store)(nil)
	_ CDRs          = (*Store)(nil)
)

// Config chooses and locates the database ([store] and core.data_dir).
type Config struct {
	// Driver is SQLite (also when empty) or Postgres.
	Driver Driver
	// DSN is PostgreSQL's connection string (URL or keyword/value form,
	// several hosts and target_session_attrs allowed); unused by SQLite.
	DSN string
	// DataDir is locked while the store is open, whatever the driver: it
	// holds the local files of this ccpbx (Master.csv), and with SQLite
	// the database itself.
	DataDir string
}

// Store is an open database with all migrations applied.
type Store struct {
	db   sqlDB
	lock *dirLock
	// tmpDir is removed on Close (OpenMemory only).
	tmpDir string
	// pgcfg dials Listen's own connections (PostgreSQL only).
	pgcfg *pgx.ConnConfig
	// cluster is this node's identity for notices (notices.go).
	cluster clusterSelf
	// stmts are the batch writes' statements, prepared once (prepared.go).
	stmts preparedStmts
}

// Open opens the SQLite database of dir (see OpenConfig).
func Open(dir string) (*Store, error) {
	return OpenConfig(context.Background(), Config{DataDir: dir})
}

// OpenConfig creates the data directory if needed, takes its lock
// (ccpbx.lock; an *InUseError, wrapping ErrInUse, when another ccpbx holds
// it), opens the configured database and applies pending migrations. The
// lock is held until Close. ctx bounds connecting and migrating.
func OpenConfig(ctx context.Context, c Config) (*Store, error) {
	if c.DataDir == "" {
		return nil, errors.New("store: empty data directory")
	}
	if c.Driver == "" {
		c.Driver = SQLite
	}
	if c.Driver != SQLite && c.Driver != Postgres {
		return nil, fmt.Errorf("store: unknown driver %q (sqlite, postgres)", c.Driver)
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	// The lock comes before the database is touched: a second process
	// must not run migrations or open a WAL beside a live one.
	lock, err := lockDir(c.DataDir)
	if err != nil {
		return nil, err
	}
	var db sqlDB
	var where string
	var pgcfg *pgx.ConnConfig
	if c.Driver == Postgres {
		db, pgcfg, where, err = openPostgres(ctx, c.DSN)
	} else {
		db, where, err = openSQLite(ctx, c.DataDir)
	}
	if err != nil {
		lock.release()
		return nil, err
	}
	s := &Store{db: db, lock: lock, pgcfg: pgcfg}
	if err := s.migrate(ctx); err != nil {
		db.raw.Close()
		lock.release()
		return nil, fmt.Errorf("store: migrate %s: %w", where, err)
	}
	return s, nil
}

// OpenMemory opens a throw-away SQLite database for tests. It is a real
// file in a fresh temporary directory (removed by Close) rather than
// SQLite's :memory:, so tests get the same WAL and locking behaviour as
// production and every connection of the pool sees the same data.
func OpenMemory() (*Store, error) {
	dir, err := os.MkdirTemp("", "ccpbx-store-")
	if err != nil {
		return nil, fmt.Errorf("store: temp dir: %w", err)
	}
	s, err := Open(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.tmpDir = dir
	return s, nil
}

// Driver says which engine the store runs on.
func (s *Store) Driver() Driver { return s.db.d.driver }

// Close closes the database, releases the directory's lock (and removes an
// OpenMemory directory).
func (s *Store) Close() error {
	s.stmts.close()
	err := s.db.raw.Close()
	s.lock.release()
	if s.tmpDir != "" {
		if rerr := os.RemoveAll(s.tmpDir); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}
