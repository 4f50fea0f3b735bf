package store

import (
	"context"
	"fmt"
	"time"
)

func init() {
	addMigration(SQLite, "0001_registrations", `CREATE TABLE registrations (
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
	// PostgreSQL: cseq is a uint32 and the times are milliseconds, so
	// BIGINT; the key columns sort bytewise (COLLATE "C") as SQLite's do,
	// whatever the database's locale.
	addMigration(Postgres, "0001_registrations", `CREATE TABLE registrations (
		reg_user      TEXT COLLATE "C" NOT NULL,
		binding_key   TEXT COLLATE "C" NOT NULL,
		realm         TEXT NOT NULL,
		contact       TEXT NOT NULL,
		call_id       TEXT NOT NULL,
		cseq          BIGINT NOT NULL,
		expires_ms    BIGINT NOT NULL,
		registered_ms BIGINT NOT NULL,
		source        TEXT NOT NULL,
		transport     TEXT NOT NULL,
		user_agent    TEXT NOT NULL,
		profile       TEXT NOT NULL,
		PRIMARY KEY (reg_user, binding_key)
	)`,
		`CREATE INDEX registrations_expires ON registrations (expires_ms)`)
	// The Path (RFC 3327) a REGISTER came with through a proxy such as
	// Kamailio: requests to the binding are routed along it. The same DDL
	// serves both engines; existing rows get "" (no Path: direct).
	for _, d := range []Driver{SQLite, Postgres} {
		addMigration(d, "0400_registrations_path", `ALTER TABLE registrations ADD COLUMN path TEXT NOT NULL DEFAULT ''`)
	}
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
	// Path is the REGISTER's Path header values in order, comma-joined
	// ("" when it came direct).
	Path string
}

// RegistrationKey names one binding row.
type RegistrationKey struct{ User, Key string }

const upsertRegistration = `INSERT INTO registrations
		(reg_user, binding_key, realm, contact, call_id, cseq, expires_ms, registered_ms, source, transport, user_agent, profile, path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (reg_user, binding_key) DO UPDATE SET
			realm = excluded.realm, contact = excluded.contact, call_id = excluded.call_id,
			cseq = excluded.cseq, expires_ms = excluded.expires_ms, registered_ms = excluded.registered_ms,
			source = excluded.source, transport = excluded.transport,
			user_agent = excluded.user_agent, profile = excluded.profile, path = excluded.path`

func registrationArgs(r Registration) []any {
	return []any{r.User, r.Key, r.Realm, r.Contact, r.CallID, int64(r.CSeq), r.Expires.UnixMilli(), r.Registered.UnixMilli(),
		r.Source, r.Transport, r.UserAgent, r.Profile, r.Path}
}

// ApplyRegistrations saves (insert or replace by user and key) and deletes
// rows in one transaction, so one REGISTER with several contacts, or one
// batch of the registrar's write-behind queue, is persisted all or nothing.
// It is the registrar's only write path: expiry, flush and stale rows at
// load are deletes through it; deleting a missing row is not an error. A
// key should not be both saved and deleted in one call (deletes run
// first). Several rows share one prepared statement per kind, so a batch
// pays SQL parsing once.
func (s *Store) ApplyRegistrations(ctx context.Context, save []Registration, del []RegistrationKey) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: apply registrations: %w", err)
	}
	defer tx.Rollback()
	if len(del) > 0 {
		exec, done, err := txExecer(ctx, tx, `DELETE FROM registrations WHERE reg_user = ? AND binding_key = ?`, len(del))
		if err != nil {
			return fmt.Errorf("store: delete registrations: %w", err)
		}
		defer done()
		for _, k := range del {
			if err := exec(k.User, k.Key); err != nil {
				return fmt.Errorf("store: delete registration %s %s: %w", k.User, k.Key, err)
			}
		}
	}
	if len(save) > 0 {
		exec, done, err := txExecer(ctx, tx, upsertRegistration, len(save))
		if err != nil {
			return fmt.Errorf("store: save registrations: %w", err)
		}
		defer done()
		for _, r := range save {
			if err := exec(registrationArgs(r)...); err != nil {
				return fmt.Errorf("store: save registration %s %s: %w", r.User, r.Key, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: apply registrations: %w", err)
	}
	return nil
}

// txExecer runs query in tx once per call of exec: directly for a single
// row, through a statement prepared once for several (done closes it).
func txExecer(ctx context.Context, tx sqlTx, query string, rows int) (exec func(args ...any) error, done func(), err error) {
	if rows == 1 {
		return func(args ...any) error {
			_, err := tx.ExecContext(ctx, query, args...)
			return err
		}, func() {}, nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	return func(args ...any) error {
		_, err := stmt.ExecContext(ctx, args...)
		return err
	}, func() { stmt.Close() }, nil
}

// Registrations lists every stored binding (expired ones included; the
// caller filters), ordered by user and key.
func (s *Store) Registrations(ctx context.Context) ([]Registration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT reg_user, binding_key, realm, contact, call_id, cseq, expires_ms,
		registered_ms, source, transport, user_agent, profile, path FROM registrations ORDER BY reg_user, binding_key`)
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
			&r.Source, &r.Transport, &r.UserAgent, &r.Profile, &r.Path); err != nil {
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
