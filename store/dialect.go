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

func (db sqlDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.raw.ExecContext(ctx, db.q(query), args...)
}

func (db sqlDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.raw.QueryContext(ctx, db.q(query), args...)
}

func (db sqlDB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.raw.QueryRowContext(ctx, db.q(query), args...)
}

func (db sqlDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (sqlTx, error) {
	tx, err := db.raw.BeginTx(ctx, opts)
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
