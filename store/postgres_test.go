package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"ccpbx/store/pgtest"
)

// What only the PostgreSQL engine has to get right: placeholders, DSNs,
// several nodes migrating at once, collation, dropped connections.

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
