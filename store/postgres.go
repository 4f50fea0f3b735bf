package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL runs through pgx's database/sql adapter (pgx/v5/stdlib) rather
// than a pgxpool: the queries, transactions and tests are then the same
// code for both engines, and only placeholders and the schema differ. The
// native connection stays reachable (sql.Conn.Raw gives the *pgx.Conn) for
// what clustering will need beyond SQL, such as LISTEN.

// Connection pool bounds. The writers are few (the ACD's persister, one
// transaction per REGISTER, CDR batches), so a small pool is plenty and
// leaves the server's max_connections to the other nodes.
const (
	pgMaxConns        = 8
	pgConnMaxIdleTime = 5 * time.Minute
	// pgConnectTimeout applies per host when the DSN sets no
	// connect_timeout, so one dead host of several is skipped, not waited on.
	pgConnectTimeout = 10 * time.Second
	// pgOpenTimeout bounds connecting and migrating at start.
	pgOpenTimeout = 60 * time.Second
	// pgMigrationLock is the advisory lock key migrations hold ("ccpb").
	pgMigrationLock = 0x63637062
)

// pgDialer probes idle connections often: a server gone without a reset
// (partition, failover to another host) is noticed in about
// Idle + Interval·Count = 11 s instead of Go's default two and a half
// minutes, so the pool and the listener move on.
var pgDialer = &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
	Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3,
}}

var postgresDialect = &dialect{
	driver:      Postgres,
	rebind:      dollarPlaceholders,
	rowOrder:    "seq",
	returningID: true,
	migrationsDDL: `CREATE TABLE IF NOT EXISTS schema_migrations (
		id TEXT COLLATE "C" PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`,
	lockMigrations: "SELECT pg_advisory_xact_lock(" + strconv.Itoa(pgMigrationLock) + ")",
	deadConn:       pgDeadConn,
	maxRetries:     pgMaxConns + 1,
}

// pgDeadConn: a backend that was terminated (restart, failover,
// pg_terminate_backend) while its connection sat idle in the pool leaves a
// FATAL of class 57P (operator intervention) waiting on the socket; the
// next statement sent reads it instead of running. (Errors the driver
// knows to be retryable before sending, database/sql already retries.)
func pgDeadConn(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Severity == "FATAL" && strings.HasPrefix(pe.Code, "57P")
}

// parseDSN reads a PostgreSQL connection string the way pgx does,
// without connecting. Its error never repeats the DSN, which may
// hold a password.
func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, errors.New("empty PostgreSQL DSN")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New(dsnError(err))
	}
	return cfg, nil
}

// dsnError is pgx's parse error without the connection string it quotes.
func dsnError(err error) string {
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// "cannot parse `<dsn>`: <why>"
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			return "cannot parse DSN: " + msg[i+3:]
		}
		return "cannot parse DSN"
	}
	return msg
}

// openPostgres connects to the first host of dsn that accepts (and that
// matches target_session_attrs), keeping the pool small.
// The returned config (a copy) is what Listen's own connections dial.
func openPostgres(ctx context.Context, dsn string) (sqlDB, *pgx.ConnConfig, string, error) {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return sqlDB{}, nil, "postgres", fmt.Errorf("store: postgres: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "ccpbx"
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	cfg.DialFunc = pgDialer.DialContext
	where := describePostgres(cfg)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	db.SetConnMaxIdleTime(pgConnMaxIdleTime)
	pctx, cancel := context.WithTimeout(ctx, pgOpenTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return sqlDB{}, nil, where, fmt.Errorf("store: open %s: %w", where, err)
	}
	return sqlDB{raw: db, d: postgresDialect}, cfg.Copy(), where, nil
}

// describePostgres names the server(s) and database for messages, without
// user or password.
func describePostgres(cfg *pgx.ConnConfig) string {
	hosts := []string{hostPort(cfg.Host, cfg.Port)}
	for _, f := range cfg.Fallbacks {
		if hp := hostPort(f.Host, f.Port); hp != hosts[len(hosts)-1] {
			hosts = append(hosts, hp)
		}
	}
	return "postgres " + strings.Join(hosts, ",") + "/" + cfg.Database
}

func hostPort(h string, p uint16) string {
	if strings.HasPrefix(h, "/") {
		return h // a unix socket directory
	}
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(int(p))
}
