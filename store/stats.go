package store

import (
	"context"
	"fmt"
)

// Queue statistics (written by acd): one row per queue and 15-minute
// interval (agent = ”), and one per agent of that queue and interval.
// Writers add deltas (AddQueueStats), so the rows are the sum of every
// call the intervals saw, across restarts; wait_max is a maximum.
// queue_counters keeps `queue list`'s calls_answered and calls_abandoned,
// which FreeSWITCH holds in memory only.
func init() {
	addMigration(SQLite, "0300_queue_stats",
		`CREATE TABLE queue_stats (
			interval_start INTEGER NOT NULL,
			queue TEXT NOT NULL,
			agent TEXT NOT NULL DEFAULT '',
			offered INTEGER NOT NULL DEFAULT 0,
			answered INTEGER NOT NULL DEFAULT 0,
			answered_within_sl INTEGER NOT NULL DEFAULT 0,
			abandoned INTEGER NOT NULL DEFAULT 0,
			short_abandoned INTEGER NOT NULL DEFAULT 0,
			no_answer INTEGER NOT NULL DEFAULT 0,
			wait_answered INTEGER NOT NULL DEFAULT 0,
			wait_abandoned INTEGER NOT NULL DEFAULT 0,
			wait_max INTEGER NOT NULL DEFAULT 0,
			handled INTEGER NOT NULL DEFAULT 0,
			talk_time INTEGER NOT NULL DEFAULT 0,
			wrap_up_time INTEGER NOT NULL DEFAULT 0,
			PRIMARY KEY (interval_start, queue, agent)
		)`,
		`CREATE TABLE queue_counters (
			queue TEXT PRIMARY KEY,
			calls_answered INTEGER NOT NULL DEFAULT 0,
			calls_abandoned INTEGER NOT NULL DEFAULT 0
		)`)
	// PostgreSQL: the same tables with BIGINT counters and epochs; queue
	// and agent sort bytewise (COLLATE "C") as SQLite's do.
	addMigration(Postgres, "0300_queue_stats",
		`CREATE TABLE queue_stats (
			interval_start BIGINT NOT NULL,
			queue TEXT COLLATE "C" NOT NULL,
			agent TEXT COLLATE "C" NOT NULL DEFAULT '',
			offered BIGINT NOT NULL DEFAULT 0,
			answered BIGINT NOT NULL DEFAULT 0,
			answered_within_sl BIGINT NOT NULL DEFAULT 0,
			abandoned BIGINT NOT NULL DEFAULT 0,
			short_abandoned BIGINT NOT NULL DEFAULT 0,
			no_answer BIGINT NOT NULL DEFAULT 0,
			wait_answered BIGINT NOT NULL DEFAULT 0,
			wait_abandoned BIGINT NOT NULL DEFAULT 0,
			wait_max BIGINT NOT NULL DEFAULT 0,
			handled BIGINT NOT NULL DEFAULT 0,
			talk_time BIGINT NOT NULL DEFAULT 0,
			wrap_up_time BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (interval_start, queue, agent)
		)`,
		`CREATE TABLE queue_counters (
			queue TEXT PRIMARY KEY,
			calls_answered BIGINT NOT NULL DEFAULT 0,
			calls_abandoned BIGINT NOT NULL DEFAULT 0
		)`)
}

// StatsRow is one row of queue_stats: counts and second totals of the
// calls that entered Queue in the interval starting at IntervalStart
// (epoch). Agent is "" for the queue's own row. Package acd owns the
// meaning of each column.
type StatsRow struct {
	IntervalStart    int64
	Queue, Agent     string
	Offered          int64
	Answered         int64
	AnsweredWithinSL int64
	Abandoned        int64
	ShortAbandoned   int64
	NoAnswer         int64
	WaitAnswered     int64
	WaitAbandoned    int64
	WaitMax          int64
	Handled          int64
	TalkTime         int64
	WrapUpTime       int64
}

const statsColumns = `interval_start, queue, agent, offered, answered, answered_within_sl, abandoned,
	short_abandoned, no_answer, wait_answered, wait_abandoned, wait_max, handled, talk_time, wrap_up_time`

func (r *StatsRow) fields() []any {
	return []any{&r.IntervalStart, &r.Queue, &r.Agent, &r.Offered, &r.Answered, &r.AnsweredWithinSL,
		&r.Abandoned, &r.ShortAbandoned, &r.NoAnswer, &r.WaitAnswered, &r.WaitAbandoned, &r.WaitMax,
		&r.Handled, &r.TalkTime, &r.WrapUpTime}
}

// AddQueueStats adds each delta to its (interval, queue, agent) row,
// creating it as needed, in one transaction; wait_max keeps the larger.
func (s *Store) AddQueueStats(ctx context.Context, deltas []StatsRow) error {
	if len(deltas) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add queue stats: %w", err)
	}
	defer tx.Rollback()
	stmt, err := s.txStmt(ctx, tx, addStatsSQL)
	if err != nil {
		return fmt.Errorf("store: add queue stats: %w", err)
	}
	defer stmt.Close()
	for i := range deltas {
		d := &deltas[i]
		if _, err := stmt.ExecContext(ctx, d.IntervalStart, d.Queue, d.Agent, d.Offered, d.Answered,
			d.AnsweredWithinSL, d.Abandoned, d.ShortAbandoned, d.NoAnswer, d.WaitAnswered, d.WaitAbandoned,
			d.WaitMax, d.Handled, d.TalkTime, d.WrapUpTime); err != nil {
			return fmt.Errorf("store: add queue stats %s %d: %w", d.Queue, d.IntervalStart, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add queue stats: %w", err)
	}
	return nil
}

// addStatsSQL adds a delta to its row (AddQueueStats).
const addStatsSQL = `INSERT INTO queue_stats (` + statsColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (interval_start, queue, agent) DO UPDATE SET
		offered = queue_stats.offered + excluded.offered,
		answered = queue_stats.answered + excluded.answered,
		answered_within_sl = queue_stats.answered_within_sl + excluded.answered_within_sl,
		abandoned = queue_stats.abandoned + excluded.abandoned,
		short_abandoned = queue_stats.short_abandoned + excluded.short_abandoned,
		no_answer = queue_stats.no_answer + excluded.no_answer,
		wait_answered = queue_stats.wait_answered + excluded.wait_answered,
		wait_abandoned = queue_stats.wait_abandoned + excluded.wait_abandoned,
		wait_max = CASE WHEN excluded.wait_max > queue_stats.wait_max
			THEN excluded.wait_max ELSE queue_stats.wait_max END,
		handled = queue_stats.handled + excluded.handled,
		talk_time = queue_stats.talk_time + excluded.talk_time,
		wrap_up_time = queue_stats.wrap_up_time + excluded.wrap_up_time`

// QueueStats returns every row whose interval starts at or after since,
// ordered by interval, queue and agent.
func (s *Store) QueueStats(ctx context.Context, since int64) ([]StatsRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+statsColumns+` FROM queue_stats
		WHERE interval_start >= ? ORDER BY interval_start, queue, agent`, since)
	if err != nil {
		return nil, fmt.Errorf("store: queue stats: %w", err)
	}
	defer rows.Close()
	var out []StatsRow
	for rows.Next() {
		var r StatsRow
		if err := rows.Scan(r.fields()...); err != nil {
			return nil, fmt.Errorf("store: queue stats: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: queue stats: %w", err)
	}
	return out, nil
}

// QueueCounters are a queue's `queue list` call counters.
type QueueCounters struct {
	CallsAnswered, CallsAbandoned int64
}

// SaveQueueCounters stores a queue's counters.
func (s *Store) SaveQueueCounters(ctx context.Context, queue string, c QueueCounters) error {
	if err := s.execPrepared(ctx, saveCountersSQL, queue, c.CallsAnswered, c.CallsAbandoned); err != nil {
		return fmt.Errorf("store: save queue counters %s: %w", queue, err)
	}
	return nil
}

const saveCountersSQL = `INSERT INTO queue_counters (queue, calls_answered, calls_abandoned)
	VALUES (?, ?, ?) ON CONFLICT (queue) DO UPDATE SET
	calls_answered = excluded.calls_answered, calls_abandoned = excluded.calls_abandoned`

// LoadQueueCounters returns every queue's stored counters.
func (s *Store) LoadQueueCounters(ctx context.Context) (map[string]QueueCounters, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT queue, calls_answered, calls_abandoned FROM queue_counters`)
	if err != nil {
		return nil, fmt.Errorf("store: load queue counters: %w", err)
	}
	defer rows.Close()
	out := map[string]QueueCounters{}
	for rows.Next() {
		var q string
		var c QueueCounters
		if err := rows.Scan(&q, &c.CallsAnswered, &c.CallsAbandoned); err != nil {
			return nil, fmt.Errorf("store: load queue counters: %w", err)
		}
		out[q] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load queue counters: %w", err)
	}
	return out, nil
}
