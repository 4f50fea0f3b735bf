package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the SQLite database file created inside the data directory.
const FileName = "ccpbx.db"

// sqliteDialect: the queries run as written.
var sqliteDialect = &dialect{
	driver:   SQLite,
	rowOrder: "rowid",
	migrationsDDL: `CREATE TABLE IF NOT EXISTS schema_migrations (
		id TEXT PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`,
}

// openSQLite opens dir/ccpbx.db in WAL mode with a busy timeout.
func openSQLite(ctx context.Context, dir string) (sqlDB, string, error) {
	path := filepath.Join(dir, FileName)
	// WAL lets readers (API listings) run while a REGISTER writes;
	// busy_timeout makes concurrent writers wait instead of failing;
	// _txlock=immediate takes the write lock at BEGIN so two read-then-write
	// transactions cannot deadlock on lock upgrade.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return sqlDB{}, path, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return sqlDB{}, path, fmt.Errorf("store: open %s: %w", path, err)
	}
	return sqlDB{raw: db, d: sqliteDialect}, path, nil
}
