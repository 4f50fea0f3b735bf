package config

import "strings"

// mod_callcenter's vocabulary: each word the ACD stores, lists, compares or
// puts in an event is a typed string whose value is FreeSWITCH's exact
// spelling, so `agent list`, `callcenter::info` events and the database
// read as FreeSWITCH's do. The types live here rather than in acd because
// the configuration file spells strategies, statuses and agent types, and
// config imports nothing from ccpbx; acd uses them for its own state.
//
// Each ParseX matches case-insensitively and returns the canonical
// spelling. FreeSWITCH accepts a status or state in any case through the
// API but then compares the stored string exactly, so "available" is
// accepted and never dispatched (reference/mod_callcenter.md §16.2-3);
// canonicalising on the way in is ccpbx's deliberate fix (§17).

// Strategy is a queue's agent-selection strategy (§6).
type Strategy string

// Strategies (reference/mod_callcenter.md §6.1).
const (
	StrategyLongestIdleAgent         Strategy = "longest-idle-agent"
	StrategyAgentWithLeastTalkTime   Strategy = "agent-with-least-talk-time"
	StrategyAgentWithFewestCalls     Strategy = "agent-with-fewest-calls"
	StrategySequentiallyByAgentOrder Strategy = "sequentially-by-agent-order"
	StrategyRandom                   Strategy = "random"
	StrategyRingAll                  Strategy = "ring-all"
	StrategyRingProgressively        Strategy = "ring-progressively"
	StrategyTopDown                  Strategy = "top-down"
	StrategyRoundRobin               Strategy = "round-robin"
)

// Strategies lists every strategy name mod_callcenter knows.
var Strategies = []Strategy{
	StrategyLongestIdleAgent, StrategyAgentWithLeastTalkTime, StrategyAgentWithFewestCalls,
	StrategySequentiallyByAgentOrder, StrategyRandom, StrategyRingAll, StrategyRingProgressively,
	StrategyTopDown, StrategyRoundRobin,
}

// ParseStrategy returns the strategy spelled s in any case.
func ParseStrategy(s string) (Strategy, bool) { return parseWord(s, Strategies) }

func (s Strategy) String() string { return string(s) }

// AgentStatus is an agent's administrative status, set by the file, the
// API or max-no-answer (§7.2).
type AgentStatus string

// Agent statuses. "Unknown" is internal to mod_callcenter and rejected by
// its API, so it is not one of them.
const (
	StatusLoggedOut         AgentStatus = "Logged Out"
	StatusAvailable         AgentStatus = "Available"
	StatusAvailableOnDemand AgentStatus = "Available (On Demand)"
	StatusOnBreak           AgentStatus = "On Break"
)

// Statuses lists the agent statuses a file or the API may set.
var Statuses = []AgentStatus{StatusLoggedOut, StatusAvailable, StatusAvailableOnDemand, StatusOnBreak}

// ParseAgentStatus returns the status spelled s in any case
// ("available" → "Available").
func ParseAgentStatus(s string) (AgentStatus, bool) { return parseWord(s, Statuses) }

func (s AgentStatus) String() string { return string(s) }

// AgentState is what an agent is doing, set by the ACD as calls come and go
// or by `agent set state` (§7.4).
type AgentState string

// Agent states.
const (
	StateIdle         AgentState = "Idle"
	StateWaiting      AgentState = "Waiting"
	StateReceiving    AgentState = "Receiving"
	StateInAQueueCall AgentState = "In a queue call"
	StateReserved     AgentState = "Reserved"
)

// AgentStates lists the states the API may set, in FreeSWITCH's order.
var AgentStates = []AgentState{StateWaiting, StateReceiving, StateInAQueueCall, StateIdle, StateReserved}

// ParseAgentState returns the agent state spelled s in any case.
func ParseAgentState(s string) (AgentState, bool) { return parseWord(s, AgentStates) }

func (s AgentState) String() string { return string(s) }

// TierState is the state of one agent's tier in one queue (§8.2).
type TierState string

// Tier states.
const (
	TierNoAnswer      TierState = "No Answer"
	TierReady         TierState = "Ready"
	TierOffering      TierState = "Offering"
	TierActiveInbound TierState = "Active Inbound"
	TierStandby       TierState = "Standby"
)

// TierStates lists the tier states the API may set.
var TierStates = []TierState{TierNoAnswer, TierReady, TierOffering, TierActiveInbound, TierStandby}

// ParseTierState returns the tier state spelled s in any case.
func ParseTierState(s string) (TierState, bool) { return parseWord(s, TierStates) }

func (s TierState) String() string { return string(s) }

// MemberState is the state of a caller's row in a queue (§9.2).
type MemberState string

// Member states.
const (
	MemberWaiting   MemberState = "Waiting"
	MemberTrying    MemberState = "Trying"
	MemberAnswered  MemberState = "Answered"
	MemberAbandoned MemberState = "Abandoned"
)

// MemberStates lists every member state.
var MemberStates = []MemberState{MemberWaiting, MemberTrying, MemberAnswered, MemberAbandoned}

// ParseMemberState returns the member state spelled s in any case.
func ParseMemberState(s string) (MemberState, bool) { return parseWord(s, MemberStates) }

func (s MemberState) String() string { return string(s) }

// CancelReason is why a caller left a queue without an agent: the
// cc_cancel_reason variable and the CC-Cancel-Reason header (§9.5).
type CancelReason string

// Cancel reasons.
const (
	ReasonNone           CancelReason = "NONE"
	ReasonTimeout        CancelReason = "TIMEOUT"
	ReasonNoAgentTimeout CancelReason = "NO_AGENT_TIMEOUT"
	ReasonBreakOut       CancelReason = "BREAK_OUT"
	ReasonExitWithKey    CancelReason = "EXIT_WITH_KEY"
)

// CancelReasons lists every cancel reason.
var CancelReasons = []CancelReason{ReasonNone, ReasonTimeout, ReasonNoAgentTimeout, ReasonBreakOut, ReasonExitWithKey}

// ParseCancelReason returns the cancel reason spelled s in any case.
func ParseCancelReason(s string) (CancelReason, bool) { return parseWord(s, CancelReasons) }

func (r CancelReason) String() string { return string(r) }

// MemberCause is how a caller's queue visit ended, as the CC-Cause header
// of member-queue-end says it (§13.2): the bridged call finished, or the
// caller left without one.
type MemberCause string

// Member causes. The callcenter app also leaves a cc_cause variable on the
// caller, in lower case and with "answered" for a bridged call (§10.1).
const (
	CauseTerminated MemberCause = "Terminated"
	CauseCancel     MemberCause = "Cancel"
)

// MemberCauses lists every member cause.
var MemberCauses = []MemberCause{CauseTerminated, CauseCancel}

// ParseMemberCause returns the cause spelled s in any case.
func ParseMemberCause(s string) (MemberCause, bool) { return parseWord(s, MemberCauses) }

func (c MemberCause) String() string { return string(c) }

// AgentType says how an agent is reached (§7.7).
type AgentType string

// Agent types, in the lower case the article's callcenter.conf uses and
// `agent list` therefore shows.
const (
	AgentTypeCallback    AgentType = "callback"
	AgentTypeUUIDStandby AgentType = "uuid-standby"
)

// AgentTypes lists the agent types.
var AgentTypes = []AgentType{AgentTypeCallback, AgentTypeUUIDStandby}

// ParseAgentType returns "callback" or "uuid-standby" for s in any case.
func ParseAgentType(s string) (AgentType, bool) { return parseWord(s, AgentTypes) }

func (t AgentType) String() string { return string(t) }

// parseWord returns the word of words that s spells, ignoring case.
func parseWord[T ~string](s string, words []T) (T, bool) {
	for _, w := range words {
		if strings.EqualFold(s, string(w)) {
			return w, true
		}
	}
	return "", false
}

// spellings returns words as plain strings, for messages.
func spellings[T ~string](words []T) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = string(w)
	}
	return out
}
