package config

import "strings"

// mod_callcenter's spellings. Config canonicalises what the file says
// (matched case-insensitively) to these, so consumers compare with ==.

// Queue strategies (reference/mod_callcenter.md §6.1).
const (
	StrategyLongestIdleAgent         = "longest-idle-agent"
	StrategyAgentWithLeastTalkTime   = "agent-with-least-talk-time"
	StrategyAgentWithFewestCalls     = "agent-with-fewest-calls"
	StrategySequentiallyByAgentOrder = "sequentially-by-agent-order"
	StrategyRandom                   = "random"
	StrategyRingAll                  = "ring-all"
	StrategyRingProgressively        = "ring-progressively"
	StrategyTopDown                  = "top-down"
	StrategyRoundRobin               = "round-robin"
)

// Strategies lists every strategy name mod_callcenter knows.
var Strategies = []string{
	StrategyLongestIdleAgent, StrategyAgentWithLeastTalkTime, StrategyAgentWithFewestCalls,
	StrategySequentiallyByAgentOrder, StrategyRandom, StrategyRingAll, StrategyRingProgressively,
	StrategyTopDown, StrategyRoundRobin,
}

// Agent statuses (§7.2). "Unknown" is internal to mod_callcenter and not
// accepted in configuration.
const (
	StatusLoggedOut         = "Logged Out"
	StatusAvailable         = "Available"
	StatusAvailableOnDemand = "Available (On Demand)"
	StatusOnBreak           = "On Break"
)

// Statuses lists the agent statuses a file or the API may set.
var Statuses = []string{StatusLoggedOut, StatusAvailable, StatusAvailableOnDemand, StatusOnBreak}

// Agent types (§7.7). They are canonicalised to lower case, the spelling
// the article's callcenter.conf uses and `agent list` therefore shows.
const (
	AgentTypeCallback    = "callback"
	AgentTypeUUIDStandby = "uuid-standby"
)

// Time-base-score values (§4.1).
const (
	TimeBaseScoreQueue  = "queue"
	TimeBaseScoreSystem = "system"
)

// mod_callcenter's code defaults, applied to whatever the file leaves out.
const (
	DefaultInstanceID                        = "single_box"
	DefaultAgentOriginateTimeout             = 60
	DefaultStrategy                          = StrategyLongestIdleAgent
	DefaultTimeBaseScore                     = TimeBaseScoreQueue
	DefaultMaxWaitTimeWithNoAgentTimeReached = 5
	DefaultTierRuleNoAgentNoWait             = true
	DefaultDiscardAbandonedAfter             = 60
	DefaultSkipAgentsWithExternalCalls       = true
	DefaultAgentNoAnswerStatus               = StatusOnBreak
	// DefaultRingProgressivelyDelay is what a ring-progressively-delay of 0
	// means; `queue list` still shows the 0 that was configured.
	DefaultRingProgressivelyDelay = 10
	DefaultAgentType              = AgentTypeCallback
	DefaultAgentStatus            = StatusLoggedOut
	DefaultTierLevel              = 1
	DefaultTierPosition           = 1
	// MaxSeconds is the largest value mod_callcenter's config parser accepts
	// for a queue's time parameters.
	MaxSeconds = 86400
)

func canonical(s string, names []string) (string, bool) {
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return n, true
		}
	}
	return "", false
}

// CanonicalStrategy returns the standard spelling of strategy s, matched
// case-insensitively.
func CanonicalStrategy(s string) (string, bool) { return canonical(s, Strategies) }

// CanonicalStatus returns the standard spelling of agent status s, matched
// case-insensitively ("available" → "Available").
func CanonicalStatus(s string) (string, bool) { return canonical(s, Statuses) }

// CanonicalAgentType returns "callback" or "uuid-standby" for s, matched
// case-insensitively.
func CanonicalAgentType(s string) (string, bool) {
	return canonical(s, []string{AgentTypeCallback, AgentTypeUUIDStandby})
}

// SetDefaults fills what a queue leaves unset with mod_callcenter's code
// defaults: empty strategy, time-base-score and agent-no-answer-status, and
// nil pointer fields. Load has already done this; it is exported for queues
// built in code (tests, `callcenter_config queue load`).
func (q *Queue) SetDefaults() {
	if q.Strategy == "" {
		q.Strategy = DefaultStrategy
	}
	if q.TimeBaseScore == "" {
		q.TimeBaseScore = DefaultTimeBaseScore
	}
	if q.AgentNoAnswerStatus == "" {
		q.AgentNoAnswerStatus = DefaultAgentNoAnswerStatus
	}
	if q.MaxWaitTimeWithNoAgentTimeReached == nil {
		q.MaxWaitTimeWithNoAgentTimeReached = ptr(DefaultMaxWaitTimeWithNoAgentTimeReached)
	}
	if q.TierRuleNoAgentNoWait == nil {
		q.TierRuleNoAgentNoWait = ptr(DefaultTierRuleNoAgentNoWait)
	}
	if q.DiscardAbandonedAfter == nil {
		q.DiscardAbandonedAfter = ptr(DefaultDiscardAbandonedAfter)
	}
	if q.SkipAgentsWithExternalCalls == nil {
		q.SkipAgentsWithExternalCalls = ptr(DefaultSkipAgentsWithExternalCalls)
	}
}

// SetDefaults gives an agent built in code the type and status Load would.
func (a *Agent) SetDefaults() {
	if a.Type == "" {
		a.Type = DefaultAgentType
	}
	if a.Status == "" {
		a.Status = DefaultAgentStatus
	}
}

func ptr[T any](v T) *T { return &v }

// Queue returns the queue named name, or nil.
func (c *Callcenter) Queue(name string) *Queue {
	for i := range c.Queues {
		if c.Queues[i].Name == name {
			return &c.Queues[i]
		}
	}
	return nil
}

// Agent returns the agent named name, or nil.
func (c *Callcenter) Agent(name string) *Agent {
	for i := range c.Agents {
		if c.Agents[i].Name == name {
			return &c.Agents[i]
		}
	}
	return nil
}
