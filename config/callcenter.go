package config

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
	// DefaultAgentStatus is the status of an agent the first time it is
	// created. A configured agent without `status` keeps its stored status
	// at every later start (§18 item 27): the file's status is re-applied
	// only when written, so Agent.Status stays empty when it is absent.
	DefaultAgentStatus = StatusLoggedOut
	// DefaultServiceLevelThreshold is a queue's service-level-threshold:
	// calls answered within it count as answered within service level.
	DefaultServiceLevelThreshold = 20
	// DefaultShortAbandonThreshold is a queue's short-abandon-threshold:
	// callers who leave within it count as short abandons, left out of the
	// service level.
	DefaultShortAbandonThreshold = 5
	// DefaultQueueLog writes <data_dir>/queue_log unless the setting says no.
	DefaultQueueLog     = true
	DefaultTierLevel    = 1
	DefaultTierPosition = 1
	// MaxSeconds is the largest value mod_callcenter's config parser accepts
	// for a queue's time parameters.
	MaxSeconds = 86400
)

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
	if q.ServiceLevelThreshold == nil {
		q.ServiceLevelThreshold = ptr(DefaultServiceLevelThreshold)
	}
	if q.ShortAbandonThreshold == nil {
		q.ShortAbandonThreshold = ptr(DefaultShortAbandonThreshold)
	}
}

// SetDefaults gives an agent built in code the type Load would. The status
// is left alone: empty means "keep the stored status" (a new agent starts
// DefaultAgentStatus), as FreeSWITCH re-applies an XML agent's status only
// when the attribute is present.
func (a *Agent) SetDefaults() {
	if a.Type == "" {
		a.Type = DefaultAgentType
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
