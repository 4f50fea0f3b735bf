package acd

import (
	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// singleBox is FreeSWITCH's literal for "this box" in agents.instance_id,
// members.serving_system and CC-Agent-System; clients expect it.
const singleBox = config.DefaultInstanceID

// Agent is one agent row plus the dispatcher's bookkeeping. The row's
// columns are store's; the ACD adds only what is never persisted.
// UUIDNull/ContactNull: never set since `agent add` (SQL NULL in
// FreeSWITCH): listed as empty, left out of JSON.
type Agent struct {
	// AgentRow's Status and State columns stay empty: the typed fields
	// below shadow them, and row/agentFromRow convert at the store.
	store.AgentRow
	Status config.AgentStatus
	State  config.AgentState

	seq      int64 // insertion order (rowid)
	offerSeq int64 // sub-second order of offers, breaks last_offered_call ties
	// retryAt holds an agent whose offer failed with no configured delay
	// until the next second: FreeSWITCH's 100 ms poll bounds re-offers to
	// a phone that fails at once; event-driven dispatch would otherwise
	// re-ring it in a tight loop. Not listed, not persisted.
	retryAt int64
	// loginAt is when this process saw the agent log in (queue_log's
	// AGENTLOGOFF logintime); 0 when unknown.
	loginAt int64
	// Cluster (cluster.go): a claim in flight; the claim this node holds
	// and its epoch; until when a lost claim keeps the agent busy
	// elsewhere (a notice about the agent ends it sooner); claim notices
	// seen.
	claiming     bool
	held         bool
	claimEpoch   int64
	lostUntil    int64
	claimNotices int64 // claim notices seen for the agent (claimDone)
	// For `cluster acd` (debug.go): claims sent, the last claim's outcome,
	// this node's writes of the row and the mirror reads applied to it.
	claims    int64
	lastClaim string
	writes    int64
	mirrored  int64
}

func (a *Agent) row() store.AgentRow {
	r := a.AgentRow
	r.Status, r.State = string(a.Status), string(a.State)
	return r
}

// agentFromRow keeps a stored status or state as it is spelled, as
// FreeSWITCH does; only what ccpbx writes is canonical.
func agentFromRow(r store.AgentRow) *Agent {
	a := &Agent{AgentRow: r, Status: config.AgentStatus(r.Status), State: config.AgentState(r.State)}
	a.AgentRow.Status, a.AgentRow.State = "", ""
	return a
}

// fields returns the agent's columns in listing order.
func (a *Agent) fields() []string {
	return []string{a.Name, a.InstanceID, a.UUID, a.Type, a.Contact, string(a.Status), string(a.State),
		itoa(a.MaxNoAnswer), itoa(a.WrapUpTime), itoa(a.RejectDelayTime), itoa(a.BusyDelayTime),
		itoa(a.NoAnswerDelayTime), itoa(a.LastBridgeStart), itoa(a.LastBridgeEnd), itoa(a.LastOffered),
		itoa(a.LastStatusChange), itoa(a.NoAnswerCount), itoa(a.CallsAnswered), itoa(a.TalkTime),
		itoa(a.ReadyTime), itoa(a.ExternalCallsCount)}
}

var agentColumns = []string{"name", "instance_id", "uuid", "type", "contact", "status", "state", "max_no_answer",
	"wrap_up_time", "reject_delay_time", "busy_delay_time", "no_answer_delay_time", "last_bridge_start",
	"last_bridge_end", "last_offered_call", "last_status_change", "no_answer_count", "calls_answered",
	"talk_time", "ready_time", "external_calls_count"}

// Tier links an agent to a queue.
type Tier struct {
	store.TierRow // State stays empty: see State
	State         config.TierState
	seq           int64
}

func (t *Tier) row() store.TierRow {
	r := t.TierRow
	r.State = string(t.State)
	return r
}

func tierFromRow(r store.TierRow) *Tier {
	t := &Tier{TierRow: r, State: config.TierState(r.State)}
	t.TierRow.State = ""
	return t
}

func (t *Tier) fields() []string {
	return []string{t.Queue, t.Agent, string(t.State), itoa(t.Level), itoa(t.Position)}
}

var tierColumns = []string{"queue", "agent", "state", "level", "position"}

// Member is a caller in (or recently in) a queue, plus the live handles of
// its callcenter app run.
type Member struct {
	store.MemberRow // State stays empty: see State
	State           config.MemberState

	seq int64
	// Live part; nil/zero for rows loaded from the database.
	ch             *call.Channel
	app            *memberApp
	t0             int64             // when this app run started (max-wait-time, Cancel's joined time)
	offers         map[string]*offer // agent name → offer in flight or bridged
	exiting        bool              // the app was told to leave; no more offers
	tdLevel        int64             // top-down memory (cc_last_agent_tier_level)
	tdPos          int64             // top-down memory (cc_last_agent_tier_position)
	lastOrig       int64             // ring-progressively: cc_last_originated_call
	pendingTimeout bool              // max-wait-time reached during an offer
	origPos        int64             // position on entering (queue_log)
	claiming       int               // cluster: agent claims in flight for this member
}

func (m *Member) row() store.MemberRow {
	r := m.MemberRow
	r.State = string(m.State)
	return r
}

func memberFromRow(r store.MemberRow) *Member {
	m := &Member{MemberRow: r, State: config.MemberState(r.State)}
	m.MemberRow.State = ""
	return m
}

func (m *Member) score(now int64) int64 { return now - m.JoinedEpoch + m.BaseScore + m.SkillScore }

func (m *Member) fields(now int64) []string {
	return []string{m.Queue, m.InstanceID, m.UUID, m.SessionUUID, m.CIDNumber, m.CIDName,
		itoa(m.SystemEpoch), itoa(m.JoinedEpoch), itoa(m.RejoinedEpoch), itoa(m.BridgeEpoch),
		itoa(m.AbandonedEpoch), itoa(m.BaseScore), itoa(m.SkillScore), m.ServingAgent, m.ServingSystem,
		string(m.State), itoa(m.score(now))}
}

var memberColumns = []string{"queue", "instance_id", "uuid", "session_uuid", "cid_number", "cid_name",
	"system_epoch", "joined_epoch", "rejoined_epoch", "bridge_epoch", "abandoned_epoch", "base_score",
	"skill_score", "serving_agent", "serving_system", "state", "score"}
