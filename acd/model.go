package acd

import (
	"strings"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// Agent statuses (administrative; set by the API, the config or
// max-no-answer). config spells them; the ACD names them for its own code.
const (
	StatusLoggedOut = config.StatusLoggedOut
	StatusAvailable = config.StatusAvailable
	StatusOnDemand  = config.StatusAvailableOnDemand
	StatusOnBreak   = config.StatusOnBreak
)

// Agent states (set by the ACD as calls come and go).
const (
	StateIdle      = "Idle"
	StateWaiting   = "Waiting"
	StateReceiving = "Receiving"
	StateInCall    = "In a queue call"
	StateReserved  = "Reserved"
)

// Tier states.
const (
	TierNoAnswer      = "No Answer"
	TierReady         = "Ready"
	TierOffering      = "Offering"
	TierActiveInbound = "Active Inbound"
	TierStandby       = "Standby"
)

// Member states.
const (
	MemberWaiting   = "Waiting"
	MemberTrying    = "Trying"
	MemberAnswered  = "Answered"
	MemberAbandoned = "Abandoned"
)

// Cancel reasons (cc_cancel_reason, CC-Cancel-Reason).
const (
	ReasonNone           = "NONE"
	ReasonTimeout        = "TIMEOUT"
	ReasonNoAgentTimeout = "NO_AGENT_TIMEOUT"
	ReasonBreakOut       = "BREAK_OUT"
	ReasonExitWithKey    = "EXIT_WITH_KEY"
)

// Strategies, as config spells them.
const (
	StrategyRingAll           = config.StrategyRingAll
	StrategyLongestIdle       = config.StrategyLongestIdleAgent
	StrategyRoundRobin        = config.StrategyRoundRobin
	StrategyTopDown           = config.StrategyTopDown
	StrategyLeastTalkTime     = config.StrategyAgentWithLeastTalkTime
	StrategyFewestCalls       = config.StrategyAgentWithFewestCalls
	StrategySequentially      = config.StrategySequentiallyByAgentOrder
	StrategyRandom            = config.StrategyRandom
	StrategyRingProgressively = config.StrategyRingProgressively
)

// singleBox is FreeSWITCH's literal for "this box" in agents.instance_id,
// members.serving_system and CC-Agent-System; clients expect it.
const singleBox = config.DefaultInstanceID

var (
	states     = []string{StateWaiting, StateReceiving, StateInCall, StateIdle, StateReserved}
	tierStates = []string{TierNoAnswer, TierReady, TierOffering, TierActiveInbound, TierStandby}
)

// canon returns the canonical spelling of s among names, matched without
// regard to case. FreeSWITCH stores what was typed and then compares
// exactly, so "available" is accepted but never dispatched (§16.2-3);
// canonicalizing on write removes that trap. Statuses, strategies and
// agent types are config's (config.CanonicalStatus and friends); canon
// serves the states that only the ACD knows.
func canon(s string, names []string) (string, bool) {
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return n, true
		}
	}
	return "", false
}

// Agent is one agent row plus the dispatcher's bookkeeping. The row's
// columns are store's; the ACD adds only what is never persisted.
// UUIDNull/ContactNull: never set since `agent add` (SQL NULL in
// FreeSWITCH): listed as empty, left out of JSON.
type Agent struct {
	store.AgentRow

	seq      int64 // insertion order (rowid)
	offerSeq int64 // sub-second order of offers, breaks last_offered_call ties
	// retryAt holds an agent whose offer failed with no configured delay
	// until the next second: FreeSWITCH's 100 ms poll bounds re-offers to
	// a phone that fails at once; event-driven dispatch would otherwise
	// re-ring it in a tight loop. Not listed, not persisted.
	retryAt int64
}

func (a *Agent) row() store.AgentRow { return a.AgentRow }

func agentFromRow(r store.AgentRow) *Agent { return &Agent{AgentRow: r} }

// fields returns the agent's columns in listing order.
func (a *Agent) fields() []string {
	return []string{a.Name, a.InstanceID, a.UUID, a.Type, a.Contact, a.Status, a.State,
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
	store.TierRow
	seq int64
}

func (t *Tier) row() store.TierRow { return t.TierRow }

func (t *Tier) fields() []string {
	return []string{t.Queue, t.Agent, t.State, itoa(t.Level), itoa(t.Position)}
}

var tierColumns = []string{"queue", "agent", "state", "level", "position"}

// Member is a caller in (or recently in) a queue, plus the live handles of
// its callcenter app run.
type Member struct {
	store.MemberRow

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
}

func (m *Member) row() store.MemberRow { return m.MemberRow }

func memberFromRow(r store.MemberRow) *Member { return &Member{MemberRow: r} }

func (m *Member) score(now int64) int64 { return now - m.JoinedEpoch + m.BaseScore + m.SkillScore }

func (m *Member) fields(now int64) []string {
	return []string{m.Queue, m.InstanceID, m.UUID, m.SessionUUID, m.CIDNumber, m.CIDName,
		itoa(m.SystemEpoch), itoa(m.JoinedEpoch), itoa(m.RejoinedEpoch), itoa(m.BridgeEpoch),
		itoa(m.AbandonedEpoch), itoa(m.BaseScore), itoa(m.SkillScore), m.ServingAgent, m.ServingSystem,
		m.State, itoa(m.score(now))}
}

var memberColumns = []string{"queue", "instance_id", "uuid", "session_uuid", "cid_number", "cid_name",
	"system_epoch", "joined_epoch", "rejoined_epoch", "bridge_epoch", "abandoned_epoch", "base_score",
	"skill_score", "serving_agent", "serving_system", "state", "score"}
