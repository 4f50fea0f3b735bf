package store

import (
	"context"
	"fmt"
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

// One call with many saves and deletes (a batch of the registrar's
// write-behind queue, through the prepared statements) leaves exactly the
// saved rows, replacing existing ones and deleting the deleted.
func TestApplyRegistrationsBatch(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t)
		defer s.Close()
		now := time.UnixMilli(time.Now().UnixMilli())
		row := func(i, cseq int) Registration {
			return Registration{User: fmt.Sprintf("u%d", i%7), Key: fmt.Sprintf("k%d", i), Realm: "r",
				Contact: fmt.Sprintf("sip:u@192.0.2.1:%d", 5000+i), CallID: fmt.Sprintf("c%d", i), CSeq: uint32(cseq),
				Expires: now.Add(time.Hour), Registered: now, Source: "192.0.2.1:5060", Transport: "udp",
				UserAgent: "ua", Profile: "internal"}
		}
		var first []Registration
		for i := range 50 {
			first = append(first, row(i, 1))
		}
		if err := s.ApplyRegistrations(ctx, first, nil); err != nil {
			t.Fatal(err)
		}
		// Rows 0-19 are deleted, 20-39 refreshed, 40-49 kept, 50-59 new.
		var save []Registration
		var del []RegistrationKey
		want := map[RegistrationKey]uint32{}
		for i := range 60 {
			k := RegistrationKey{User: fmt.Sprintf("u%d", i%7), Key: fmt.Sprintf("k%d", i)}
			switch {
			case i < 20:
				del = append(del, k)
			case i < 40 || i >= 50:
				save = append(save, row(i, 2))
				want[k] = 2
			default:
				want[k] = 1
			}
		}
		del = append(del, RegistrationKey{User: "nobody", Key: "missing"})
		if err := s.ApplyRegistrations(ctx, save, del); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Registrations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) {
			t.Fatalf("%d rows, want %d", len(rows), len(want))
		}
		for _, r := range rows {
			k := RegistrationKey{User: r.User, Key: r.Key}
			if cseq, ok := want[k]; !ok || r.CSeq != cseq || !r.Expires.Equal(now.Add(time.Hour)) {
				t.Errorf("row %+v: want present=%v cseq %d", r, ok, cseq)
			}
		}
	})
}
