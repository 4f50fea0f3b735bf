package store

import (
	"context"
	"testing"
	"time"
)

// A database from before migration 0400 (no path column) keeps its
// bindings across the upgrade, each with no Path.
func TestRegistrationsPathMigration(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t)
		// Back to the schema before 0400, holding one binding.
		for _, stmt := range []string{
			`ALTER TABLE registrations DROP COLUMN path`,
			`DELETE FROM schema_migrations WHERE id = '0400_registrations_path'`,
			`INSERT INTO registrations (reg_user, binding_key, realm, contact, call_id, cseq, expires_ms,
				registered_ms, source, transport, user_agent, profile)
				VALUES ('1001', 'k', 'r', 'sip:1001@192.0.2.1', 'c', 1, 2000000000000, 1000, '192.0.2.1:5060', 'udp', 'ua', 'internal')`,
		} {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = b.open(t)
		defer s.Close()
		rows, err := s.Registrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Contact != "sip:1001@192.0.2.1" || rows[0].Path != "" ||
			!rows[0].Expires.Equal(time.UnixMilli(2000000000000)) {
			t.Fatalf("after the upgrade: %+v", rows)
		}
		rows[0].Path = "<sip:192.0.2.9;lr>"
		if err := s.ApplyRegistrations(ctx, rows, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Registrations(ctx); err != nil || len(got) != 1 || got[0].Path != rows[0].Path {
			t.Fatalf("Path after the upgrade: %+v %v", got, err)
		}
	})
}
