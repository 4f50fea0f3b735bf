package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// TestMain fails the package if a test leaves a goroutine running (an
// unclosed store keeps database/sql's connection opener goroutine alive).
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := s.AppliedMigrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 || ids[0] != "0001_registrations" {
		t.Fatalf("applied migrations = %v", ids)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening must not re-run migrations (CREATE TABLE would fail).
	s2, err := Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	ids2, err := s2.AppliedMigrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ids2) != len(ids) {
		t.Fatalf("migrations after reopen = %v, want %v", ids2, ids)
	}
	var mode string
	if err := s2.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
	if _, err := filepath.Glob(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsEmptyDir(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestRegistrationsRoundTrip(t *testing.T) {
	s, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
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
}

func TestDuplicateMigrationPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate migration id did not panic")
		}
	}()
	addMigration("0001_registrations", "SELECT 1")
}

func TestApplyRegistrationsIsAtomic(t *testing.T) {
	s, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	a := Registration{User: "1001", Key: "a", Contact: "sip:a@h", Expires: now.Add(time.Hour), Registered: now}
	b := Registration{User: "1001", Key: "b", Contact: "sip:b@h", Expires: now.Add(time.Hour), Registered: now}
	if err := s.ApplyRegistrations(ctx, []Registration{a, b}, nil); err != nil {
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
}
