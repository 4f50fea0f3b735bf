package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/store/pgtest"
)

// TestMain fails the package if a test leaves a goroutine running (an
// unclosed store keeps database/sql's connection opener goroutine alive).
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// backend is one empty database of one driver for a test. open may be
// called again after Close to reopen the same data, as a restart does.
type backend struct {
	driver Driver
	cfg    Config
}

func (b backend) open(t testing.TB) *Store {
	t.Helper()
	s, err := OpenConfig(context.Background(), b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eachDriver runs f once per driver, as subtests named after the driver:
// every behaviour of the store is the same on both engines.
func eachDriver(t *testing.T, f func(t *testing.T, b backend)) {
	t.Run(string(SQLite), func(t *testing.T) {
		f(t, backend{driver: SQLite, cfg: Config{Driver: SQLite, DataDir: t.TempDir()}})
	})
	t.Run(string(Postgres), func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		f(t, backend{driver: Postgres, cfg: Config{Driver: Postgres, DSN: dsn, DataDir: t.TempDir()}})
	})
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		if s.Driver() != b.driver {
			t.Fatalf("driver %s, want %s", s.Driver(), b.driver)
		}
		ids, err := s.AppliedMigrations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := make([]string, 0)
		for _, m := range sortedMigrations(b.driver) {
			want = append(want, m.id)
		}
		if len(ids) == 0 || ids[0] != "0001_registrations" || !reflect.DeepEqual(ids, want) {
			t.Fatalf("applied migrations = %v, want %v", ids, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Reopening must not re-run migrations (CREATE TABLE would fail).
		s2 := b.open(t)
		defer s2.Close()
		ids2, err := s2.AppliedMigrations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids2, ids) {
			t.Fatalf("migrations after reopen = %v, want %v", ids2, ids)
		}
		if b.driver != SQLite {
			return
		}
		var mode string
		if err := s2.db.raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Fatalf("journal_mode = %q, want wal", mode)
		}
		if _, err := filepath.Glob(filepath.Join(b.cfg.DataDir, FileName)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestDataDirLockedWithEveryDriver: the data directory's lock guards the
// local files (Master.csv) whatever holds the database.
func TestDataDirLockedWithEveryDriver(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		defer s.Close()
		if _, err := OpenConfig(context.Background(), b.cfg); !errors.Is(err, ErrInUse) {
			t.Fatalf("second open of %s: %v, want ErrInUse", b.cfg.DataDir, err)
		}
	})
}

// TestPostgresNodesMigrateTogether: processes opening one PostgreSQL
// database at once (each with its own data directory) apply each migration
// once and all start.
func TestOpenRejectsEmptyDirAndUnknownDriver(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	if _, err := OpenConfig(context.Background(), Config{Driver: "mysql", DataDir: t.TempDir()}); err == nil {
		t.Fatal("driver mysql accepted")
	}
}

// TestMigrationsCoverEveryDriver: a table added for one engine only would
// leave the other without it.
func TestMigrationsCoverEveryDriver(t *testing.T) {
	ids := func(d Driver) []string {
		var out []string
		for _, m := range sortedMigrations(d) {
			out = append(out, m.id)
		}
		return out
	}
	if lite, pg := ids(SQLite), ids(Postgres); !reflect.DeepEqual(lite, pg) {
		t.Fatalf("migration ids differ:\nsqlite   %v\npostgres %v", lite, pg)
	}
}

func TestDuplicateMigrationPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate migration id did not panic")
		}
	}()
	addMigration(SQLite, "0001_registrations", "SELECT 1")
}

func TestRegistrationsRoundTrip(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		defer s.Close()
		ctx := context.Background()
		now := time.UnixMilli(time.Now().UnixMilli())
		r := Registration{
			User: "1001", Key: "sip:1001@192.168.150.1:55232", Realm: "192.168.150.128",
			Contact: "sip:1001@192.168.150.1:55232;ob", CallID: "08103ee3f88145d8a3ca984addb18662", CSeq: 4294967295,
			Expires: now.Add(time.Hour), Registered: now, Source: "192.168.150.1:55232", Transport: "udp",
			UserAgent: "MicroSIP/3.21.3", Profile: "internal",
			Path: "<sip:10.0.0.9:5060;lr;received=sip:192.168.150.1:55232>, <sip:edge.example.com;lr>",
		}
		save := func(r Registration) {
			t.Helper()
			if err := s.ApplyRegistrations(ctx, []Registration{r}, nil); err != nil {
				t.Fatal(err)
			}
		}
		save(r)
		// Upsert: same key, new values.
		r.CSeq = 7
		r.Expires = now.Add(2 * time.Hour)
		r.Path = "<sip:10.0.0.9:5060;lr>"
		save(r)
		other := r
		other.User, other.Key, other.Expires = "1002", "sip:1002@10.0.0.2:5060", now.Add(-time.Second)
		save(other)
		got, err := s.Registrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("got %d rows, want 2: %+v", len(got), got)
		}
		if !got[0].Expires.Equal(r.Expires) || !got[0].Registered.Equal(r.Registered) {
			t.Fatalf("times = %v %v, want %v %v", got[0].Expires, got[0].Registered, r.Expires, r.Registered)
		}
		got[0].Expires, got[0].Registered = r.Expires, r.Registered
		if got[0] != r {
			t.Fatalf("row = %+v\nwant  %+v", got[0], r)
		}
		del := []RegistrationKey{{r.User, r.Key}, {other.User, other.Key}, {"1003", "never-saved"}}
		if err := s.ApplyRegistrations(ctx, nil, del); err != nil {
			t.Fatal(err)
		}
		got, err = s.Registrations(ctx)
		if err != nil || len(got) != 0 {
			t.Fatalf("after delete: %+v, %v", got, err)
		}
	})
}

func TestApplyRegistrationsIsAtomic(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		defer s.Close()
		ctx := context.Background()
		now := time.UnixMilli(time.Now().UnixMilli())
		a := Registration{User: "1001", Key: "a", Contact: "sip:a@h", Expires: now.Add(time.Hour), Registered: now}
		bb := Registration{User: "1001", Key: "b", Contact: "sip:b@h", Expires: now.Add(time.Hour), Registered: now}
		if err := s.ApplyRegistrations(ctx, []Registration{a, bb}, nil); err != nil {
			t.Fatal(err)
		}
		c := Registration{User: "1001", Key: "c", Contact: "sip:c@h", Expires: now.Add(time.Hour), Registered: now}
		if err := s.ApplyRegistrations(ctx, []Registration{c}, []RegistrationKey{{"1001", "a"}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Registrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Key != "b" || got[1].Key != "c" {
			t.Fatalf("rows = %+v, want b and c", got)
		}
		// A cancelled context fails the whole batch and changes nothing.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.ApplyRegistrations(cctx, []Registration{a}, []RegistrationKey{{"1001", "b"}}); err == nil {
			t.Fatal("ApplyRegistrations with cancelled context succeeded")
		}
		if got, _ = s.Registrations(ctx); len(got) != 2 || got[0].Key != "b" {
			t.Fatalf("rows after failed batch = %+v", got)
		}
	})
}

// TestPostgresSortsBytewiseUnderAnyLocale: listings come out in SQLite's
// bytewise order even on a database whose locale sorts "_z" < "a" < "B"
// (ICU en-US, like most production servers' en_US.UTF-8).
// TestPostgresSurvivesDeadConnections: after the server has dropped every
// connection of the pool (a restart, a failover, pg_terminate_backend), the
// next writes and reads succeed on new connections. (Which way a dead
// connection is noticed depends on how long it sat idle: pgx pings one idle
// over a second, database/sql then retries; a fresher one reads the FATAL,
// which TestRetrySkipsDeadConnections covers.)
// TestRetrySkipsDeadConnections: a call failing on a connection found dead
// (PostgreSQL's FATAL 57P01 waiting on an idle socket) is run again, once
// per dead connection up to the bound; other errors are returned at once.
