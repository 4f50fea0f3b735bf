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

// Agent is one agent row plus the dispatcher's bookkeeping.
type Agent struct {
	Name, InstanceID, UUID, Type, Contact, Status, State           string
	MaxNoAnswer, WrapUpTime, RejectDelayTime, BusyDelayTime        int64
	NoAnswerDelayTime, LastBridgeStart, LastBridgeEnd, LastOffered int64
	LastStatusChange, NoAnswerCount, CallsAnswered, TalkTime       int64
	ReadyTime, ExternalCallsCount                                  int64
	// uuidNull/contactNull: never set since `agent add` (SQL NULL in
	// FreeSWITCH): listed as empty, left out of JSON.
	uuidNull, contactNull bool

	seq      int64 // insertion order (rowid)
	offerSeq int64 // sub-second order of offers, breaks last_offered_call ties
	// retryAt holds an agent whose offer failed with no configured delay
	// until the next second: FreeSWITCH's 100 ms poll bounds re-offers to
	// a phone that fails at once; event-driven dispatch would otherwise
	// re-ring it in a tight loop. Not listed, not persisted.
	retryAt int64
}

func (a *Agent) row() store.AgentRow {
	return store.AgentRow{Name: a.Name, InstanceID: a.InstanceID, UUID: a.UUID, Type: a.Type, Contact: a.Contact,
		Status: a.Status, State: a.State, MaxNoAnswer: a.MaxNoAnswer, WrapUpTime: a.WrapUpTime,
		RejectDelayTime: a.RejectDelayTime, BusyDelayTime: a.BusyDelayTime, NoAnswerDelayTime: a.NoAnswerDelayTime,
		LastBridgeStart: a.LastBridgeStart, LastBridgeEnd: a.LastBridgeEnd, LastOffered: a.LastOffered,
		LastStatusChange: a.LastStatusChange, NoAnswerCount: a.NoAnswerCount, CallsAnswered: a.CallsAnswered,
		TalkTime: a.TalkTime, ReadyTime: a.ReadyTime, ExternalCallsCount: a.ExternalCallsCount,
		UUIDNull: a.uuidNull, ContactNull: a.contactNull}
}

func agentFromRow(r store.AgentRow) *Agent {
	return &Agent{Name: r.Name, InstanceID: r.InstanceID, UUID: r.UUID, Type: r.Type, Contact: r.Contact,
		Status: r.Status, State: r.State, MaxNoAnswer: r.MaxNoAnswer, WrapUpTime: r.WrapUpTime,
		RejectDelayTime: r.RejectDelayTime, BusyDelayTime: r.BusyDelayTime, NoAnswerDelayTime: r.NoAnswerDelayTime,
		LastBridgeStart: r.LastBridgeStart, LastBridgeEnd: r.LastBridgeEnd, LastOffered: r.LastOffered,
		LastStatusChange: r.LastStatusChange, NoAnswerCount: r.NoAnswerCount, CallsAnswered: r.CallsAnswered,
		TalkTime: r.TalkTime, ReadyTime: r.ReadyTime, ExternalCallsCount: r.ExternalCallsCount,
		uuidNull: r.UUIDNull, contactNull: r.ContactNull}
}

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
	Queue, Agent, State string
	Level, Position     int64
	seq                 int64
}

func (t *Tier) row() store.TierRow {
	return store.TierRow{Queue: t.Queue, Agent: t.Agent, State: t.State, Level: t.Level, Position: t.Position}
}

func (t *Tier) fields() []string {
	return []string{t.Queue, t.Agent, t.State, itoa(t.Level), itoa(t.Position)}
}

var tierColumns = []string{"queue", "agent", "state", "level", "position"}

// Member is a caller in (or recently in) a queue, plus the live handles of
// its callcenter app run.
type Member struct {
	Queue, InstanceID, UUID, SessionUUID, CIDNumber, CIDName string
	SystemEpoch, JoinedEpoch, RejoinedEpoch, BridgeEpoch     int64
	AbandonedEpoch, BaseScore, SkillScore                    int64
	ServingAgent, ServingSystem, State                       string

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

func (m *Member) row() store.MemberRow {
	return store.MemberRow{Queue: m.Queue, InstanceID: m.InstanceID, UUID: m.UUID, SessionUUID: m.SessionUUID,
		CIDNumber: m.CIDNumber, CIDName: m.CIDName, SystemEpoch: m.SystemEpoch, JoinedEpoch: m.JoinedEpoch,
		RejoinedEpoch: m.RejoinedEpoch, BridgeEpoch: m.BridgeEpoch, AbandonedEpoch: m.AbandonedEpoch,
		BaseScore: m.BaseScore, SkillScore: m.SkillScore, ServingAgent: m.ServingAgent,
		ServingSystem: m.ServingSystem, State: m.State}
}

func memberFromRow(r store.MemberRow) *Member {
	return &Member{Queue: r.Queue, InstanceID: r.InstanceID, UUID: r.UUID, SessionUUID: r.SessionUUID,
		CIDNumber: r.CIDNumber, CIDName: r.CIDName, SystemEpoch: r.SystemEpoch, JoinedEpoch: r.JoinedEpoch,
		RejoinedEpoch: r.RejoinedEpoch, BridgeEpoch: r.BridgeEpoch, AbandonedEpoch: r.AbandonedEpoch,
		BaseScore: r.BaseScore, SkillScore: r.SkillScore, ServingAgent: r.ServingAgent,
		ServingSystem: r.ServingSystem, State: r.State}
}

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
