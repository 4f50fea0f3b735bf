package store

import (
	"context"
	"fmt"
	"time"
)

func init() {
	addMigration("0001_registrations", `CREATE TABLE registrations (
		reg_user      TEXT NOT NULL,
		binding_key   TEXT NOT NULL,
		realm         TEXT NOT NULL,
		contact       TEXT NOT NULL,
		call_id       TEXT NOT NULL,
		cseq          INTEGER NOT NULL,
		expires_ms    INTEGER NOT NULL,
		registered_ms INTEGER NOT NULL,
		source        TEXT NOT NULL,
		transport     TEXT NOT NULL,
		user_agent    TEXT NOT NULL,
		profile       TEXT NOT NULL,
		PRIMARY KEY (reg_user, binding_key)
	)`,
		`CREATE INDEX registrations_expires ON registrations (expires_ms)`)
}

// Registration is one persisted registrar binding. The registrar owns its
// meaning; store only keeps the row.
type Registration struct {
	User string
	// Key identifies the binding among the user's bindings (the registrar's
	// normalised Contact URI). (User, Key) is the primary key.
	Key        string
	Realm      string
	Contact    string
	CallID     string
	CSeq       uint32
	Expires    time.Time
	Registered time.Time
	// Source is the observed ip:port the REGISTER came from.
	Source    string
	Transport string
	UserAgent string
	Profile   string
}

// RegistrationKey names one binding row.
type RegistrationKey struct{ User, Key string }

const upsertRegistration = `INSERT INTO registrations
		(reg_user, binding_key, realm, contact, call_id, cseq, expires_ms, registered_ms, source, transport, user_agent, profile)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (reg_user, binding_key) DO UPDATE SET
			realm = excluded.realm, contact = excluded.contact, call_id = excluded.call_id,
			cseq = excluded.cseq, expires_ms = excluded.expires_ms, registered_ms = excluded.registered_ms,
			source = excluded.source, transport = excluded.transport,
			user_agent = excluded.user_agent, profile = excluded.profile`

func registrationArgs(r Registration) []any {
	return []any{r.User, r.Key, r.Realm, r.Contact, r.CallID, int64(r.CSeq), r.Expires.UnixMilli(), r.Registered.UnixMilli(),
		r.Source, r.Transport, r.UserAgent, r.Profile}
}

// SaveRegistration inserts or replaces the row for (r.User, r.Key).
func (s *Store) SaveRegistration(ctx context.Context, r Registration) error {
	if _, err := s.db.ExecContext(ctx, upsertRegistration, registrationArgs(r)...); err != nil {
		return fmt.Errorf("store: save registration %s %s: %w", r.User, r.Key, err)
	}
	return nil
}

// ApplyRegistrations saves and deletes rows in one transaction, so one
// REGISTER with several contacts is persisted all or nothing.
func (s *Store) ApplyRegistrations(ctx context.Context, save []Registration, del []RegistrationKey) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: apply registrations: %w", err)
	}
	defer tx.Rollback()
	for _, k := range del {
		if _, err := tx.ExecContext(ctx, `DELETE FROM registrations WHERE reg_user = ? AND binding_key = ?`, k.User, k.Key); err != nil {
			return fmt.Errorf("store: delete registration %s %s: %w", k.User, k.Key, err)
		}
	}
	for _, r := range save {
		if _, err := tx.ExecContext(ctx, upsertRegistration, registrationArgs(r)...); err != nil {
			return fmt.Errorf("store: save registration %s %s: %w", r.User, r.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: apply registrations: %w", err)
	}
	return nil
}

// DeleteRegistration removes one binding; deleting a missing row is not an
// error.
func (s *Store) DeleteRegistration(ctx context.Context, user, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM registrations WHERE reg_user = ? AND binding_key = ?`, user, key); err != nil {
		return fmt.Errorf("store: delete registration %s %s: %w", user, key, err)
	}
	return nil
}

// DeleteUserRegistrations removes every binding of user.
func (s *Store) DeleteUserRegistrations(ctx context.Context, user string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM registrations WHERE reg_user = ?`, user); err != nil {
		return fmt.Errorf("store: delete registrations of %s: %w", user, err)
	}
	return nil
}

// DeleteExpiredRegistrations removes bindings whose expiry is at or before
// now and returns how many it removed.
func (s *Store) DeleteExpiredRegistrations(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM registrations WHERE expires_ms <= ?`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: delete expired registrations: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired registrations: %w", err)
	}
	return n, nil
}

// Registrations lists every stored binding (expired ones included; the
// caller filters), ordered by user and key.
func (s *Store) Registrations(ctx context.Context) ([]Registration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT reg_user, binding_key, realm, contact, call_id, cseq, expires_ms,
		registered_ms, source, transport, user_agent, profile FROM registrations ORDER BY reg_user, binding_key`)
	if err != nil {
		return nil, fmt.Errorf("store: list registrations: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		var (
			r            Registration
			cseq         int64
			expMS, regMS int64
		)
		if err := rows.Scan(&r.User, &r.Key, &r.Realm, &r.Contact, &r.CallID, &cseq, &expMS, &regMS,
			&r.Source, &r.Transport, &r.UserAgent, &r.Profile); err != nil {
			return nil, fmt.Errorf("store: list registrations: %w", err)
		}
		r.CSeq = uint32(cseq)
		r.Expires = time.UnixMilli(expMS)
		r.Registered = time.UnixMilli(regMS)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list registrations: %w", err)
	}
	return out, nil
}
