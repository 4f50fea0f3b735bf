package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
func TestPostgresNodesMigrateTogether(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	const n = 4
	var wg sync.WaitGroup
	stores := make([]*Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = OpenConfig(context.Background(), Config{Driver: Postgres, DSN: dsn, DataDir: t.TempDir()})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("node %d: %v", i, errs[i])
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	ids, err := stores[0].AppliedMigrations(context.Background())
	if err != nil || len(ids) != len(sortedMigrations(Postgres)) {
		t.Fatalf("applied %v, %v", ids, err)
	}
}

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

func TestDollarPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                            `SELECT 1`,
		`INSERT INTO t VALUES (?, ?, ?)`:      `INSERT INTO t VALUES ($1, $2, $3)`,
		`SELECT '?' , "a?b", ? FROM t`:        `SELECT '?' , "a?b", $1 FROM t`,
		`UPDATE t SET a = 'it''s?' WHERE b=?`: `UPDATE t SET a = 'it''s?' WHERE b=$1`,
	} {
		if got := dollarPlaceholders(in); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestParseDSN(t *testing.T) {
	good := []string{
		"postgres://ccpbx:secret@db1:5432,db2:5433/ccpbx?target_session_attrs=read-write&sslmode=disable",
		"host=db1,db2 port=5432,5433 user=ccpbx dbname=ccpbx target_session_attrs=read-write",
	}
	for _, dsn := range good {
		cfg, err := parseDSN(dsn)
		if err != nil {
			t.Errorf("%s: %v", dsn, err)
			continue
		}
		if len(cfg.Fallbacks) == 0 || cfg.ValidateConnect == nil {
			t.Errorf("%s: hosts or target_session_attrs lost: %+v", dsn, cfg)
		}
		if got := describePostgres(cfg); got != "postgres db1:5432,db2:5433/ccpbx" {
			t.Errorf("describe %s = %q", dsn, got)
		}
	}
	for _, dsn := range []string{"", "postgres://ccpbx:hunter2@db1:notaport/x", "host=db1 target_session_attrs=sometimes password=hunter2"} {
		_, err := parseDSN(dsn)
		if err == nil {
			t.Errorf("%q accepted", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
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
func TestPostgresSortsBytewiseUnderAnyLocale(t *testing.T) {
	dsn := pgtest.NewDatabaseWith(t, "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
	s, err := OpenConfig(context.Background(), Config{Driver: Postgres, DSN: dsn, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var collation string
	if err := s.db.QueryRowContext(ctx, `SELECT datcollate || '/' || COALESCE(daticulocale, '') FROM pg_database WHERE datname = current_database()`).Scan(&collation); err != nil {
		t.Fatal(err)
	}
	var icuOrder string
	if err := s.db.QueryRowContext(ctx, `SELECT string_agg(k, ',' ORDER BY k) FROM (VALUES ('a'), ('B'), ('_z')) AS v(k)`).Scan(&icuOrder); err != nil {
		t.Fatal(err)
	}
	if icuOrder == "B,_z,a" {
		t.Fatalf("database %s already sorts bytewise: the test proves nothing", collation)
	}
	now := time.Now()
	keys := []string{"a", "B", "_z"}
	for _, k := range keys {
		if err := s.ApplyRegistrations(ctx, []Registration{{User: k, Key: k, Expires: now, Registered: now}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveBan(ctx, Ban{Source: "sip", Addr: k, Until: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddQueueStats(ctx, []StatsRow{{IntervalStart: 900, Queue: k}}); err != nil {
			t.Fatal(err)
		}
	}
	var regs, bans, stats []string
	rs, err := s.Registrations(ctx)
	for _, r := range rs {
		regs = append(regs, r.User)
	}
	bs, err2 := s.Bans(ctx, now)
	for _, b := range bs {
		bans = append(bans, b.Addr)
	}
	ss, err3 := s.QueueStats(ctx, 0)
	for _, r := range ss {
		stats = append(stats, r.Queue)
	}
	if err := errors.Join(err, err2, err3); err != nil {
		t.Fatal(err)
	}
	want := []string{"B", "_z", "a"}
	for what, got := range map[string][]string{"registrations": regs, "bans": bans, "queue stats": stats} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s in %v order on %s (it sorts %s), want %v", what, got, collation, icuOrder, want)
		}
	}
}

// TestPostgresSurvivesDeadConnections: after the server has dropped every
// connection of the pool (a restart, a failover, pg_terminate_backend), the
// next writes and reads succeed on new connections. (Which way a dead
// connection is noticed depends on how long it sat idle: pgx pings one idle
// over a second, database/sql then retries; a fresher one reads the FATAL,
// which TestRetrySkipsDeadConnections covers.)
func TestPostgresSurvivesDeadConnections(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, err := OpenConfig(context.Background(), Config{Driver: Postgres, DSN: dsn, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// Fill the pool with several idle connections.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.UpsertMember(ctx, MemberRow{UUID: fmt.Sprint("m", i)}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("terminated %d backends: %v", killed, err)
	}
	for i := range 6 {
		if err := s.UpsertMember(ctx, MemberRow{UUID: fmt.Sprint("n", i)}); err != nil {
			t.Fatalf("write %d after %d connections died: %v", i, killed, err)
		}
	}
	if err := s.ApplyRegistrations(ctx, []Registration{{User: "u", Key: "k"}}, nil); err != nil {
		t.Fatal(err)
	}
	rows, err := s.LoadCallcenter(ctx)
	if err != nil || len(rows.Members) != 10 {
		t.Fatalf("members %v, %v", rows, err)
	}
}

// TestRetrySkipsDeadConnections: a call failing on a connection found dead
// (PostgreSQL's FATAL 57P01 waiting on an idle socket) is run again, once
// per dead connection up to the bound; other errors are returned at once.
func TestRetrySkipsDeadConnections(t *testing.T) {
	dead := fmt.Errorf("upsert: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"})
	for _, err := range []error{dead, &pgconn.PgError{Severity: "FATAL", Code: "57P02"}} {
		if !pgDeadConn(err) {
			t.Errorf("%v not seen as a dead connection", err)
		}
	}
	for _, err := range []error{errors.New("disk full"), &pgconn.PgError{Severity: "ERROR", Code: "23505"}, nil} {
		if pgDeadConn(err) {
			t.Errorf("%v seen as a dead connection", err)
		}
	}
	db := sqlDB{d: postgresDialect}
	calls := 0
	failing := func(n int, final error) func() (int, error) {
		calls = 0
		return func() (int, error) {
			calls++
			if calls <= n {
				return 0, dead
			}
			return calls, final
		}
	}
	if v, err := retry(db, failing(3, nil)); err != nil || v != 4 {
		t.Errorf("3 dead connections then success: %d, %v", v, err)
	}
	if _, err := retry(db, failing(100, nil)); !errors.Is(err, dead) || calls != postgresDialect.maxRetries+1 {
		t.Errorf("endless dead connections: %d calls, %v", calls, err)
	}
	other := errors.New("syntax error")
	if _, err := retry(db, failing(0, other)); err != other || calls != 1 {
		t.Errorf("another error: %d calls, %v", calls, err)
	}
	if _, err := retry(sqlDB{d: sqliteDialect}, failing(1, nil)); !errors.Is(err, dead) || calls != 1 {
		t.Errorf("sqlite retried: %d calls, %v", calls, err)
	}
}
