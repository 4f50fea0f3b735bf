// Package store owns ccpbx's persistent state: one SQLite database
// (modernc.org/sqlite, pure Go) under the configured data directory, its
// schema migrations, and small typed read/write helpers per concept
// (registrations, call-center state).
//
// It must not hold business rules: callers (registrar, acd) decide what to
// save and when; store only reads and writes rows. It imports no other
// ccpbx package.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file created inside the data directory.
const FileName = "ccpbx.db"

// Store is an open database with all migrations applied.
type Store struct {
	db   *sql.DB
	lock *dirLock
	// tmpDir is removed on Close (OpenMemory only).
	tmpDir string
}

// Open creates dir if needed, takes the directory's lock (ccpbx.lock; an
// *InUseError, wrapping ErrInUse, when another ccpbx holds it), opens
// dir/ccpbx.db in WAL mode with a busy timeout, and applies pending
// migrations. The lock is held until Close.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("store: empty data directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	// The lock comes before the database is touched: a second process
	// must not run migrations or open a WAL beside a live one.
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
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
		lock.release()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		lock.release()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, lock: lock}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		lock.release()
		return nil, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	return s, nil
}

// OpenMemory opens a throw-away database for tests. It is a real file in a
// fresh temporary directory (removed by Close) rather than SQLite's
// :memory:, so tests get the same WAL and locking behaviour as production
// and every connection of the pool sees the same data.
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

// DB gives packages with their own tables direct access to the database.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database, releases the directory's lock (and removes an
// OpenMemory directory).
func (s *Store) Close() error {
	err := s.db.Close()
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
