package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The call-center tables keep mod_callcenter's column order (§3.1 of the
// reference), so a DBA reading them sees what FreeSWITCH users expect.
// Unlike FreeSWITCH they have primary keys: agent names and (queue, agent)
// tiers are unique by construction instead of by check-then-insert.
func init() {
	addMigration(SQLite, "0100_callcenter",
		`CREATE TABLE IF NOT EXISTS agents (
			name VARCHAR(255) PRIMARY KEY,
			instance_id VARCHAR(255),
			uuid VARCHAR(255),
			type VARCHAR(255),
			contact VARCHAR(1024),
			status VARCHAR(255),
			state VARCHAR(255),
			max_no_answer INTEGER NOT NULL DEFAULT 0,
			wrap_up_time INTEGER NOT NULL DEFAULT 0,
			reject_delay_time INTEGER NOT NULL DEFAULT 0,
			busy_delay_time INTEGER NOT NULL DEFAULT 0,
			no_answer_delay_time INTEGER NOT NULL DEFAULT 0,
			last_bridge_start INTEGER NOT NULL DEFAULT 0,
			last_bridge_end INTEGER NOT NULL DEFAULT 0,
			last_offered_call INTEGER NOT NULL DEFAULT 0,
			last_status_change INTEGER NOT NULL DEFAULT 0,
			no_answer_count INTEGER NOT NULL DEFAULT 0,
			calls_answered INTEGER NOT NULL DEFAULT 0,
			talk_time INTEGER NOT NULL DEFAULT 0,
			ready_time INTEGER NOT NULL DEFAULT 0,
			external_calls_count INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE TABLE IF NOT EXISTS tiers (
			queue VARCHAR(255) NOT NULL,
			agent VARCHAR(255) NOT NULL,
			state VARCHAR(255),
			level INTEGER NOT NULL DEFAULT 1,
			position INTEGER NOT NULL DEFAULT 1,
			PRIMARY KEY (queue, agent)
		)`,
		`CREATE TABLE IF NOT EXISTS members (
			queue VARCHAR(255),
			instance_id VARCHAR(255),
			uuid VARCHAR(255) NOT NULL DEFAULT '' PRIMARY KEY,
			session_uuid VARCHAR(255) NOT NULL DEFAULT '',
			cid_number VARCHAR(255),
			cid_name VARCHAR(255),
			system_epoch INTEGER NOT NULL DEFAULT 0,
			joined_epoch INTEGER NOT NULL DEFAULT 0,
			rejoined_epoch INTEGER NOT NULL DEFAULT 0,
			bridge_epoch INTEGER NOT NULL DEFAULT 0,
			abandoned_epoch INTEGER NOT NULL DEFAULT 0,
			base_score INTEGER NOT NULL DEFAULT 0,
			skill_score INTEGER NOT NULL DEFAULT 0,
			serving_agent VARCHAR(255),
			serving_system VARCHAR(255),
			state VARCHAR(255)
		)`,
	)
	// PostgreSQL: the same columns in the same order; integers are BIGINT
	// (epochs and counters outlive int4), strings TEXT (no length to fail
	// on where SQLite would store the value), and a trailing identity
	// column seq keeps insertion order, as SQLite's rowid does. No IF NOT
	// EXISTS: FreeSWITCH's own tables in the same schema must be reported,
	// not silently taken over.
	addMigration(Postgres, "0100_callcenter",
		`CREATE TABLE agents (
			name TEXT PRIMARY KEY,
			instance_id TEXT,
			uuid TEXT,
			type TEXT,
			contact TEXT,
			status TEXT,
			state TEXT,
			max_no_answer BIGINT NOT NULL DEFAULT 0,
			wrap_up_time BIGINT NOT NULL DEFAULT 0,
			reject_delay_time BIGINT NOT NULL DEFAULT 0,
			busy_delay_time BIGINT NOT NULL DEFAULT 0,
			no_answer_delay_time BIGINT NOT NULL DEFAULT 0,
			last_bridge_start BIGINT NOT NULL DEFAULT 0,
			last_bridge_end BIGINT NOT NULL DEFAULT 0,
			last_offered_call BIGINT NOT NULL DEFAULT 0,
			last_status_change BIGINT NOT NULL DEFAULT 0,
			no_answer_count BIGINT NOT NULL DEFAULT 0,
			calls_answered BIGINT NOT NULL DEFAULT 0,
			talk_time BIGINT NOT NULL DEFAULT 0,
			ready_time BIGINT NOT NULL DEFAULT 0,
			external_calls_count BIGINT NOT NULL DEFAULT 0,
			seq BIGINT GENERATED ALWAYS AS IDENTITY
		)`,
		`CREATE TABLE tiers (
			queue TEXT NOT NULL,
			agent TEXT NOT NULL,
			state TEXT,
			level BIGINT NOT NULL DEFAULT 1,
			position BIGINT NOT NULL DEFAULT 1,
			seq BIGINT GENERATED ALWAYS AS IDENTITY,
			PRIMARY KEY (queue, agent)
		)`,
		`CREATE TABLE members (
			queue TEXT,
			instance_id TEXT,
			uuid TEXT NOT NULL DEFAULT '' PRIMARY KEY,
			session_uuid TEXT NOT NULL DEFAULT '',
			cid_number TEXT,
			cid_name TEXT,
			system_epoch BIGINT NOT NULL DEFAULT 0,
			joined_epoch BIGINT NOT NULL DEFAULT 0,
			rejoined_epoch BIGINT NOT NULL DEFAULT 0,
			bridge_epoch BIGINT NOT NULL DEFAULT 0,
			abandoned_epoch BIGINT NOT NULL DEFAULT 0,
			base_score BIGINT NOT NULL DEFAULT 0,
			skill_score BIGINT NOT NULL DEFAULT 0,
			serving_agent TEXT,
			serving_system TEXT,
			state TEXT,
			seq BIGINT GENERATED ALWAYS AS IDENTITY
		)`,
		`CREATE INDEX agents_seq ON agents (seq)`,
		`CREATE INDEX tiers_seq ON tiers (seq)`,
		`CREATE INDEX members_seq ON members (seq)`,
	)
}

// AgentRow is one row of table agents. UUIDNull and ContactNull mark the
// SQL NULLs of a freshly added agent (listings print them as empty, JSON
// leaves them out).
type AgentRow struct {
	Name, InstanceID, UUID, Type, Contact, Status, State           string
	UUIDNull, ContactNull                                          bool
	MaxNoAnswer, WrapUpTime, RejectDelayTime, BusyDelayTime        int64
	NoAnswerDelayTime, LastBridgeStart, LastBridgeEnd, LastOffered int64
	LastStatusChange, NoAnswerCount, CallsAnswered, TalkTime       int64
	ReadyTime, ExternalCallsCount                                  int64
}

// TierRow is one row of table tiers.
type TierRow struct {
	Queue, Agent, State string
	Level, Position     int64
}

// MemberRow is one row of table members.
type MemberRow struct {
	Queue, InstanceID, UUID, SessionUUID, CIDNumber, CIDName string
	SystemEpoch, JoinedEpoch, RejoinedEpoch, BridgeEpoch     int64
	AbandonedEpoch, BaseScore, SkillScore                    int64
	ServingAgent, ServingSystem, State                       string
}

// CallcenterRows is the whole call-center state, each table in insertion
// order (SQLite's rowid, PostgreSQL's seq), which is the order FreeSWITCH's
// SELECT * listings show.
type CallcenterRows struct {
	Agents  []AgentRow
	Tiers   []TierRow
	Members []MemberRow
}

// LoadCallcenter reads the three call-center tables.
func (s *Store) LoadCallcenter(ctx context.Context) (*CallcenterRows, error) {
	out := &CallcenterRows{}
	rows, err := s.db.QueryContext(ctx, `SELECT `+agentColumns+` FROM agents ORDER BY `+s.db.d.rowOrder)
	if err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("load agents: %w", err)
		}
		out.Agents = append(out.Agents, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}

	rows, err = s.db.QueryContext(ctx, `SELECT queue, agent, COALESCE(state,''), level, position FROM tiers ORDER BY `+s.db.d.rowOrder)
	if err != nil {
		return nil, fmt.Errorf("load tiers: %w", err)
	}
	for rows.Next() {
		var t TierRow
		if err := rows.Scan(&t.Queue, &t.Agent, &t.State, &t.Level, &t.Position); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load tiers: %w", err)
		}
		out.Tiers = append(out.Tiers, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load tiers: %w", err)
	}

	rows, err = s.db.QueryContext(ctx, `SELECT `+memberColumns+` FROM members ORDER BY `+s.db.d.rowOrder)
	if err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("load members: %w", err)
		}
		out.Members = append(out.Members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load members: %w", err)
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// agentColumns are what scanAgent reads, NULLs as empty strings.
const agentColumns = `name, COALESCE(instance_id,''), COALESCE(uuid,''), uuid IS NULL, COALESCE(type,''),
	COALESCE(contact,''), contact IS NULL, COALESCE(status,''), COALESCE(state,''), max_no_answer, wrap_up_time, reject_delay_time,
	busy_delay_time, no_answer_delay_time, last_bridge_start, last_bridge_end, last_offered_call,
	last_status_change, no_answer_count, calls_answered, talk_time, ready_time, external_calls_count`

func scanAgent(r scanner) (AgentRow, error) {
	var a AgentRow
	err := r.Scan(agentFields(&a)...)
	return a, err
}

func agentFields(a *AgentRow) []any {
	return []any{&a.Name, &a.InstanceID, &a.UUID, &a.UUIDNull, &a.Type, &a.Contact, &a.ContactNull, &a.Status, &a.State,
		&a.MaxNoAnswer, &a.WrapUpTime, &a.RejectDelayTime, &a.BusyDelayTime, &a.NoAnswerDelayTime,
		&a.LastBridgeStart, &a.LastBridgeEnd, &a.LastOffered, &a.LastStatusChange, &a.NoAnswerCount,
		&a.CallsAnswered, &a.TalkTime, &a.ReadyTime, &a.ExternalCallsCount}
}

// memberColumns are what scanMember reads.
const memberColumns = `COALESCE(queue,''), COALESCE(instance_id,''), uuid, session_uuid,
	COALESCE(cid_number,''), COALESCE(cid_name,''), system_epoch, joined_epoch, rejoined_epoch, bridge_epoch,
	abandoned_epoch, base_score, skill_score, COALESCE(serving_agent,''), COALESCE(serving_system,''), COALESCE(state,'')`

func scanMember(r scanner) (MemberRow, error) {
	var m MemberRow
	err := r.Scan(memberFields(&m)...)
	return m, err
}

func memberFields(m *MemberRow) []any {
	return []any{&m.Queue, &m.InstanceID, &m.UUID, &m.SessionUUID, &m.CIDNumber, &m.CIDName,
		&m.SystemEpoch, &m.JoinedEpoch, &m.RejoinedEpoch, &m.BridgeEpoch, &m.AbandonedEpoch,
		&m.BaseScore, &m.SkillScore, &m.ServingAgent, &m.ServingSystem, &m.State}
}

// LoadAgent reads one agent (false when there is none).
func (s *Store) LoadAgent(ctx context.Context, name string) (AgentRow, bool, error) {
	var a AgentRow
	err := s.db.ScanRow(ctx, `SELECT `+agentColumns+` FROM agents WHERE name = ?`, []any{name}, agentFields(&a)...)
	if errors.Is(err, sql.ErrNoRows) {
		return AgentRow{}, false, nil
	}
	if err != nil {
		return AgentRow{}, false, fmt.Errorf("load agent %s: %w", name, err)
	}
	return a, true, nil
}

// LoadTier reads one tier (false when there is none).
func (s *Store) LoadTier(ctx context.Context, queue, agent string) (TierRow, bool, error) {
	var t TierRow
	err := s.db.ScanRow(ctx, `SELECT queue, agent, COALESCE(state,''), level, position FROM tiers WHERE queue = ? AND agent = ?`,
		[]any{queue, agent}, &t.Queue, &t.Agent, &t.State, &t.Level, &t.Position)
	if errors.Is(err, sql.ErrNoRows) {
		return TierRow{}, false, nil
	}
	if err != nil {
		return TierRow{}, false, fmt.Errorf("load tier %s/%s: %w", queue, agent, err)
	}
	return t, true, nil
}

// LoadMember reads one member (false when there is none).
func (s *Store) LoadMember(ctx context.Context, uuid string) (MemberRow, bool, error) {
	var m MemberRow
	err := s.db.ScanRow(ctx, `SELECT `+memberColumns+` FROM members WHERE uuid = ?`, []any{uuid}, memberFields(&m)...)
	if errors.Is(err, sql.ErrNoRows) {
		return MemberRow{}, false, nil
	}
	if err != nil {
		return MemberRow{}, false, fmt.Errorf("load member %s: %w", uuid, err)
	}
	return m, true, nil
}

// UpsertAgent writes a whole agent row; an existing row keeps its place
// (rowid, seq) so listings keep their order.
func (s *Store) UpsertAgent(ctx context.Context, a AgentRow) error {
	err := s.exec(ctx, notice{NoticeAgent, a.Name}, upsertAgentSQL, agentArgs(a)...)
	if err != nil {
		return fmt.Errorf("upsert agent %s: %w", a.Name, err)
	}
	return nil
}

// DeleteAgent removes an agent and its tiers (their notice: the agent's,
// whose deletion takes its tiers).
func (s *Store) DeleteAgent(ctx context.Context, name string) error {
	if err := s.write(ctx, []stmt{
		{deleteAgentSQL, []any{name}},
		{deleteAgentTiersSQL, []any{name}},
	}, notice{NoticeAgent, name}); err != nil {
		return fmt.Errorf("delete agent %s: %w", name, err)
	}
	return nil
}

// UpsertTier writes a tier row.
func (s *Store) UpsertTier(ctx context.Context, t TierRow) error {
	err := s.exec(ctx, notice{NoticeTier, TierKey(t.Queue, t.Agent)}, upsertTierSQL, t.Queue, t.Agent, t.State, t.Level, t.Position)
	if err != nil {
		return fmt.Errorf("upsert tier %s/%s: %w", t.Queue, t.Agent, err)
	}
	return nil
}

// DeleteTier removes one tier.
func (s *Store) DeleteTier(ctx context.Context, queue, agent string) error {
	if err := s.exec(ctx, notice{NoticeTier, TierKey(queue, agent)}, deleteTierSQL, queue, agent); err != nil {
		return fmt.Errorf("delete tier %s/%s: %w", queue, agent, err)
	}
	return nil
}

// UpsertMember writes a member row.
func (s *Store) UpsertMember(ctx context.Context, m MemberRow) error {
	err := s.exec(ctx, notice{NoticeMember, m.UUID}, upsertMemberSQL, memberArgs(m)...)
	if err != nil {
		return fmt.Errorf("upsert member %s: %w", m.UUID, err)
	}
	return nil
}

// DeleteMember removes a member row.
func (s *Store) DeleteMember(ctx context.Context, uuid string) error {
	if err := s.exec(ctx, notice{NoticeMember, uuid}, deleteMemberSQL, uuid); err != nil {
		return fmt.Errorf("delete member %s: %w", uuid, err)
	}
	return nil
}

// TruncateAgents deletes every agent (truncate-agents-on-load).
func (s *Store) TruncateAgents(ctx context.Context) error {
	if err := s.exec(ctx, notice{NoticeAgent, ""}, `DELETE FROM agents`); err != nil {
		return fmt.Errorf("truncate agents: %w", err)
	}
	return nil
}

// TruncateTiers deletes every tier (truncate-tiers-on-load).
func (s *Store) TruncateTiers(ctx context.Context) error {
	if err := s.exec(ctx, notice{NoticeTier, ""}, `DELETE FROM tiers`); err != nil {
		return fmt.Errorf("truncate tiers: %w", err)
	}
	return nil
}

// nullable maps a flagged value to SQL NULL.
func nullable(v string, null bool) any {
	if null {
		return nil
	}
	return v
}

// The call-center writes, shared by the one-row methods and
// ApplyCallcenter. An upsert keeps an existing row's place (rowid, seq).
const (
	upsertAgentSQL = `INSERT INTO agents (name, instance_id, uuid, type, contact, status, state,
		max_no_answer, wrap_up_time, reject_delay_time, busy_delay_time, no_answer_delay_time, last_bridge_start,
		last_bridge_end, last_offered_call, last_status_change, no_answer_count, calls_answered, talk_time,
		ready_time, external_calls_count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET instance_id=excluded.instance_id, uuid=excluded.uuid, type=excluded.type,
		contact=excluded.contact, status=excluded.status, state=excluded.state,
		max_no_answer=excluded.max_no_answer, wrap_up_time=excluded.wrap_up_time,
		reject_delay_time=excluded.reject_delay_time, busy_delay_time=excluded.busy_delay_time,
		no_answer_delay_time=excluded.no_answer_delay_time, last_bridge_start=excluded.last_bridge_start,
		last_bridge_end=excluded.last_bridge_end, last_offered_call=excluded.last_offered_call,
		last_status_change=excluded.last_status_change, no_answer_count=excluded.no_answer_count,
		calls_answered=excluded.calls_answered, talk_time=excluded.talk_time, ready_time=excluded.ready_time,
		external_calls_count=excluded.external_calls_count`
	deleteAgentSQL      = `DELETE FROM agents WHERE name = ?`
	deleteAgentTiersSQL = `DELETE FROM tiers WHERE agent = ?`
	upsertTierSQL       = `INSERT INTO tiers (queue, agent, state, level, position) VALUES (?,?,?,?,?)
		ON CONFLICT(queue, agent) DO UPDATE SET state=excluded.state, level=excluded.level, position=excluded.position`
	deleteTierSQL   = `DELETE FROM tiers WHERE queue = ? AND agent = ?`
	upsertMemberSQL = `INSERT INTO members (queue, instance_id, uuid, session_uuid, cid_number,
		cid_name, system_epoch, joined_epoch, rejoined_epoch, bridge_epoch, abandoned_epoch, base_score,
		skill_score, serving_agent, serving_system, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(uuid) DO UPDATE SET queue=excluded.queue, instance_id=excluded.instance_id,
		session_uuid=excluded.session_uuid, cid_number=excluded.cid_number, cid_name=excluded.cid_name,
		system_epoch=excluded.system_epoch, joined_epoch=excluded.joined_epoch,
		rejoined_epoch=excluded.rejoined_epoch, bridge_epoch=excluded.bridge_epoch,
		abandoned_epoch=excluded.abandoned_epoch, base_score=excluded.base_score,
		skill_score=excluded.skill_score, serving_agent=excluded.serving_agent,
		serving_system=excluded.serving_system, state=excluded.state`
	deleteMemberSQL = `DELETE FROM members WHERE uuid = ?`
)
