package store

import (
	"context"
	"fmt"
)

// The cdr table holds one row per call leg, written by package cdr when the
// leg is fully down. Column names are the FreeSWITCH channel variables that
// mod_cdr_csv's templates name, so a FreeSWITCH admin knows them; the cc_*
// columns are mod_callcenter's variables on queue legs. Times are the leg's
// *_stamp (local time text) and *_epoch/*_uepoch (0 when the moment did
// not happen).
func init() {
	addMigration("0200_cdr",
		`CREATE TABLE cdr (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			uuid TEXT NOT NULL,
			bleg_uuid TEXT NOT NULL DEFAULT '',
			direction TEXT NOT NULL DEFAULT '',
			channel_name TEXT NOT NULL DEFAULT '',
			caller_id_name TEXT NOT NULL DEFAULT '',
			caller_id_number TEXT NOT NULL DEFAULT '',
			destination_number TEXT NOT NULL DEFAULT '',
			context TEXT NOT NULL DEFAULT '',
			start_stamp TEXT NOT NULL DEFAULT '',
			answer_stamp TEXT NOT NULL DEFAULT '',
			end_stamp TEXT NOT NULL DEFAULT '',
			start_uepoch INTEGER NOT NULL DEFAULT 0,
			answer_uepoch INTEGER NOT NULL DEFAULT 0,
			end_uepoch INTEGER NOT NULL DEFAULT 0,
			duration INTEGER NOT NULL DEFAULT 0,
			billsec INTEGER NOT NULL DEFAULT 0,
			hangup_cause TEXT NOT NULL DEFAULT '',
			hangup_cause_q850 INTEGER NOT NULL DEFAULT 0,
			accountcode TEXT NOT NULL DEFAULT '',
			read_codec TEXT NOT NULL DEFAULT '',
			write_codec TEXT NOT NULL DEFAULT '',
			sip_call_id TEXT NOT NULL DEFAULT '',
			cc_queue TEXT NOT NULL DEFAULT '',
			cc_agent TEXT NOT NULL DEFAULT '',
			cc_side TEXT NOT NULL DEFAULT '',
			cc_queue_joined_epoch INTEGER NOT NULL DEFAULT 0,
			cc_queue_answered_epoch INTEGER NOT NULL DEFAULT 0,
			cc_cause TEXT NOT NULL DEFAULT '',
			cc_cancel_reason TEXT NOT NULL DEFAULT '',
			switchname TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX cdr_start ON cdr (start_uepoch)`,
		`CREATE INDEX cdr_uuid ON cdr (uuid)`)
}

// CDR is one call detail record row. Package cdr owns its meaning.
type CDR struct {
	// ID is assigned by InsertCDRs (ascending in insertion order).
	ID                int64
	UUID              string
	BlegUUID          string
	Direction         string
	ChannelName       string
	CallerIDName      string
	CallerIDNumber    string
	DestinationNumber string
	Context           string
	StartStamp        string
	AnswerStamp       string
	EndStamp          string
	StartUepoch       int64
	AnswerUepoch      int64
	EndUepoch         int64
	Duration          int64
	Billsec           int64
	HangupCause       string
	HangupCauseQ850   int64
	Accountcode       string
	ReadCodec         string
	WriteCodec        string
	SIPCallID         string
	CCQueue           string
	CCAgent           string
	CCSide            string
	CCQueueJoined     int64
	CCQueueAnswered   int64
	CCCause           string
	CCCancelReason    string
	Switchname        string
}

const cdrColumns = `uuid, bleg_uuid, direction, channel_name, caller_id_name, caller_id_number,
	destination_number, context, start_stamp, answer_stamp, end_stamp, start_uepoch, answer_uepoch,
	end_uepoch, duration, billsec, hangup_cause, hangup_cause_q850, accountcode, read_codec,
	write_codec, sip_call_id, cc_queue, cc_agent, cc_side, cc_queue_joined_epoch,
	cc_queue_answered_epoch, cc_cause, cc_cancel_reason, switchname`

func (r *CDR) fields() []any {
	return []any{&r.UUID, &r.BlegUUID, &r.Direction, &r.ChannelName, &r.CallerIDName, &r.CallerIDNumber,
		&r.DestinationNumber, &r.Context, &r.StartStamp, &r.AnswerStamp, &r.EndStamp, &r.StartUepoch,
		&r.AnswerUepoch, &r.EndUepoch, &r.Duration, &r.Billsec, &r.HangupCause, &r.HangupCauseQ850,
		&r.Accountcode, &r.ReadCodec, &r.WriteCodec, &r.SIPCallID, &r.CCQueue, &r.CCAgent, &r.CCSide,
		&r.CCQueueJoined, &r.CCQueueAnswered, &r.CCCause, &r.CCCancelReason, &r.Switchname}
}

// InsertCDRs appends records in one transaction (all or none) and sets
// their IDs.
func (s *Store) InsertCDRs(ctx context.Context, recs []CDR) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: insert cdrs: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO cdr (`+cdrColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("store: insert cdrs: %w", err)
	}
	defer stmt.Close()
	ids := make([]int64, len(recs))
	for i := range recs {
		fs := recs[i].fields()
		args := make([]any, len(fs))
		for j, f := range fs {
			switch p := f.(type) {
			case *string:
				args[j] = *p
			case *int64:
				args[j] = *p
			}
		}
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("store: insert cdr %s: %w", recs[i].UUID, err)
		}
		if ids[i], err = res.LastInsertId(); err != nil {
			return fmt.Errorf("store: insert cdr %s: %w", recs[i].UUID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: insert cdrs: %w", err)
	}
	for i := range recs {
		recs[i].ID = ids[i]
	}
	return nil
}

// RecentCDRs returns the last n records written, oldest first (as tail
// shows a log).
func (s *Store) RecentCDRs(ctx context.Context, n int) ([]CDR, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT * FROM (SELECT id, `+cdrColumns+` FROM cdr ORDER BY id DESC LIMIT ?) ORDER BY id`, n)
	if err != nil {
		return nil, fmt.Errorf("store: list cdrs: %w", err)
	}
	defer rows.Close()
	var out []CDR
	for rows.Next() {
		var r CDR
		if err := rows.Scan(append([]any{&r.ID}, r.fields()...)...); err != nil {
			return nil, fmt.Errorf("store: list cdrs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list cdrs: %w", err)
	}
	return out, nil
}
