// Package storetest runs a consumer's persistence test once per store
// engine (SQLite, PostgreSQL), each on an empty database of its own, so
// acd, registrar and cdr check their restarts on both. PostgreSQL comes
// from store/pgtest (skipped locally without it, a failure with CI=true).
package storetest

import (
	"context"
	"testing"

	"ccpbx/store"
	"ccpbx/store/pgtest"
)

// Backend is one empty database of one engine. Open may be called again
// after Close to reopen the same data, as a restart does.
type Backend struct {
	Driver store.Driver
	cfg    store.Config
}

// Open opens the backend's database; the test closes it.
func (b Backend) Open(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.OpenConfig(context.Background(), b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// DataDir is the backend's data directory (the SQLite file's home).
func (b Backend) DataDir() string { return b.cfg.DataDir }

// Each runs f as subtests named after the engines.
func Each(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Run(string(store.SQLite), func(t *testing.T) {
		f(t, Backend{Driver: store.SQLite, cfg: store.Config{Driver: store.SQLite, DataDir: t.TempDir()}})
	})
	t.Run(string(store.Postgres), func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		f(t, Backend{Driver: store.Postgres, cfg: store.Config{Driver: store.Postgres, DSN: dsn, DataDir: t.TempDir()}})
	})
}
