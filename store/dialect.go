package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Driver names a database engine the store runs on ([store] driver).
type Driver string

// The drivers. SQLite is the default: one file under the data directory.
const (
	SQLite   Driver = "sqlite"
	Postgres Driver = "postgres"
)

// dialect is what differs between the engines for the SQL this package
// writes once: the queries are written with SQLite's ? placeholders and
// portable syntax (ON CONFLICT … DO UPDATE, COALESCE), and a dialect
// rewrites or replaces only what cannot be shared. The schema (types,
// autoincrement, insertion order) is per dialect in the migrations.
type dialect struct {
	driver Driver
	// rebind turns ? placeholders into the engine's own; nil keeps them.
	rebind func(string) string
	// rowOrder is the column that keeps a table's insertion order, which
	// the call-center listings follow: SQLite's rowid, PostgreSQL's
	// identity column seq (PostgreSQL rows have no stable physical order).
	rowOrder string
	// returningID: INSERT … RETURNING id gives a new row's id (PostgreSQL
	// has no LastInsertId).
	returningID bool
	// migrationsDDL creates schema_migrations if missing.
	migrationsDDL string
	// lockMigrations, when set, is run first in every migration
	// transaction so that processes opening one database at once apply
	// each migration once (SQLite needs none: the data directory lock and
	// BEGIN IMMEDIATE already serialise them).
	lockMigrations string
	// deadConn reports an error that says the connection was found dead
	// before the statement ran (nothing was executed, so running it again
	// on another connection is safe); nil for engines without such errors.
	deadConn func(error) bool
	// maxRetries bounds how many dead pooled connections one call skips.
	maxRetries int
}

// dollarPlaceholders rewrites ? into $1, $2 … outside quoted literals and
// identifiers.
func dollarPlaceholders(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sqlDB is a *sql.DB that speaks the dialect: every query passes through
// rebind, so methods are written once with ? placeholders.
type sqlDB struct {
	raw *sql.DB
	d   *dialect
}

func (db sqlDB) q(query string) string {
	if db.d.rebind == nil {
		return query
	}
	return db.d.rebind(query)
}

// retry runs f again while it fails on a connection found dead before
// the statement ran (a server restart or failover leaves every pooled
// connection so), at most d.maxRetries times: each failure discards one.
func retry[T any](db sqlDB, f func() (T, error)) (T, error) {
	v, err := f()
	for i := 0; err != nil && db.d.deadConn != nil && i < db.d.maxRetries && db.d.deadConn(err); i++ {
		v, err = f()
	}
	return v, err
}

// The wrappers call straight through when the engine has no dead
// connections to skip (SQLite): no closure on its path.

func (db sqlDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = db.q(query)
	if db.d.deadConn == nil {
		return db.raw.ExecContext(ctx, query, args...)
	}
	return retry(db, func() (sql.Result, error) { return db.raw.ExecContext(ctx, query, args...) })
}

func (db sqlDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = db.q(query)
	if db.d.deadConn == nil {
		return db.raw.QueryContext(ctx, query, args...)
	}
	return retry(db, func() (*sql.Rows, error) { return db.raw.QueryContext(ctx, query, args...) })
}

func (db sqlDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.raw.QueryRowContext(ctx, db.q(query), args...)
}

// ScanRow runs a query of one row into dest, retrying like ExecContext
// (QueryRowContext cannot: its error comes out of Scan). It reports
// sql.ErrNoRows like Scan.
func (db sqlDB) ScanRow(ctx context.Context, query string, args []any, dest ...any) error {
	query = db.q(query)
	_, err := retry(db, func() (struct{}, error) {
		return struct{}{}, db.raw.QueryRowContext(ctx, query, args...).Scan(dest...)
	})
	return err
}

// BeginTx retries like ExecContext: a dead connection fails at BEGIN,
// before the transaction did anything.
func (db sqlDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (sqlTx, error) {
	if db.d.deadConn == nil {
		tx, err := db.raw.BeginTx(ctx, opts)
		return sqlTx{raw: tx, db: db}, err
	}
	tx, err := retry(db, func() (*sql.Tx, error) { return db.raw.BeginTx(ctx, opts) })
	return sqlTx{raw: tx, db: db}, err
}

// sqlTx is a *sql.Tx that speaks the dialect.
type sqlTx struct {
	raw *sql.Tx
	db  sqlDB
}

func (tx sqlTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.raw.ExecContext(ctx, tx.db.q(query), args...)
}

func (tx sqlTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.raw.QueryRowContext(ctx, tx.db.q(query), args...)
}

func (tx sqlTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.raw.PrepareContext(ctx, tx.db.q(query))
}

func (tx sqlTx) Commit() error   { return tx.raw.Commit() }
func (tx sqlTx) Rollback() error { return tx.raw.Rollback() }
