package acd

import (
	"log/slog"
	"strconv"
	"strings"

	"ccpbx/config"
)

// Queue is an in-memory queue built from the configuration, with
// mod_callcenter's code defaults for unset parameters (§4.1).
type Queue struct {
	Name                        string
	Strategy                    config.Strategy
	MOHSound                    string
	AnnounceSound               string
	AnnounceFrequency           int64
	RecordTemplate              string
	TimeBaseScore               string
	MaxWaitTime                 int64
	MaxWaitTimeWithNoAgent      int64
	MaxWaitTimeWithNoAgentReach int64
	TierRulesApply              bool
	TierRuleWaitSecond          int64
	TierRuleWaitMultiplyLevel   bool
	TierRuleNoAgentNoWait       bool
	DiscardAbandonedAfter       int64
	AbandonedResumeAllowed      bool
	RingProgressivelyDelay      int64
	AgentNoAnswerStatus         config.AgentStatus
	SkipAgentsWithExternalCalls bool

	// Statistics thresholds (seconds): answered within
	// ServiceLevelThreshold counts toward the service level; abandoned
	// within ShortAbandonThreshold is a short abandon.
	ServiceLevelThreshold, ShortAbandonThreshold int64

	// Counters of `queue list`, kept in the store across reloads and
	// restarts (FreeSWITCH resets them).
	CallsAnswered, CallsAbandoned int64
	// lastAgentExist / lastAgentExistCheck drive max-wait-time-with-no-agent.
	lastAgentExist, lastAgentExistCheck int64
}

// intParam applies FreeSWITCH's integer-parameter rule: values outside
// 0..config.MaxSeconds fall back to the default with an error logged.
func intParam(log *slog.Logger, q, name string, v, def int64) int64 {
	if v < 0 || v > config.MaxSeconds {
		log.Error("callcenter queue parameter out of range, using default", "queue", q, "param", name, "value", v, "default", def)
		return def
	}
	return v
}

func newQueue(c config.Queue, log *slog.Logger) *Queue {
	q := &Queue{
		Name:                        c.Name,
		Strategy:                    config.DefaultStrategy,
		MOHSound:                    c.MOHSound,
		AnnounceSound:               c.AnnounceSound,
		RecordTemplate:              c.RecordTemplate,
		TimeBaseScore:               config.DefaultTimeBaseScore,
		MaxWaitTimeWithNoAgentReach: config.DefaultMaxWaitTimeWithNoAgentTimeReached,
		TierRulesApply:              c.TierRulesApply,
		TierRuleWaitMultiplyLevel:   c.TierRuleWaitMultiplyLevel,
		TierRuleNoAgentNoWait:       config.DefaultTierRuleNoAgentNoWait,
		DiscardAbandonedAfter:       config.DefaultDiscardAbandonedAfter,
		AbandonedResumeAllowed:      c.AbandonedResumeAllowed,
		AgentNoAnswerStatus:         config.DefaultAgentNoAnswerStatus,
		SkipAgentsWithExternalCalls: config.DefaultSkipAgentsWithExternalCalls,
	}
	if c.Strategy != "" {
		if s, ok := config.ParseStrategy(string(c.Strategy)); ok {
			q.Strategy = s
		} else {
			// Unknown strategies dispatch like sequentially-by-agent-order
			// but are listed as written, as in FreeSWITCH.
			q.Strategy = config.Strategy(strings.ToLower(string(c.Strategy)))
		}
	}
	if c.TimeBaseScore != "" {
		q.TimeBaseScore = c.TimeBaseScore
	}
	q.AnnounceFrequency = intParam(log, c.Name, "announce-frequency", int64(c.AnnounceFrequency), 0)
	q.MaxWaitTime = intParam(log, c.Name, "max-wait-time", int64(c.MaxWaitTime), 0)
	q.MaxWaitTimeWithNoAgent = intParam(log, c.Name, "max-wait-time-with-no-agent", int64(c.MaxWaitTimeWithNoAgent), 0)
	if c.MaxWaitTimeWithNoAgentTimeReached != nil {
		q.MaxWaitTimeWithNoAgentReach = intParam(log, c.Name, "max-wait-time-with-no-agent-time-reached", int64(*c.MaxWaitTimeWithNoAgentTimeReached), config.DefaultMaxWaitTimeWithNoAgentTimeReached)
	}
	q.TierRuleWaitSecond = intParam(log, c.Name, "tier-rule-wait-second", int64(c.TierRuleWaitSecond), 0)
	if c.TierRuleNoAgentNoWait != nil {
		q.TierRuleNoAgentNoWait = *c.TierRuleNoAgentNoWait
	}
	if c.DiscardAbandonedAfter != nil {
		q.DiscardAbandonedAfter = intParam(log, c.Name, "discard-abandoned-after", int64(*c.DiscardAbandonedAfter), config.DefaultDiscardAbandonedAfter)
	}
	q.RingProgressivelyDelay = intParam(log, c.Name, "ring-progressively-delay", int64(c.RingProgressivelyDelay), 0)
	if c.AgentNoAnswerStatus != "" {
		if s, ok := config.ParseAgentStatus(string(c.AgentNoAnswerStatus)); ok {
			q.AgentNoAnswerStatus = s
		} else {
			log.Warn("callcenter queue agent-no-answer-status invalid, using On Break", "queue", c.Name, "value", c.AgentNoAnswerStatus)
		}
	}
	if c.SkipAgentsWithExternalCalls != nil {
		q.SkipAgentsWithExternalCalls = *c.SkipAgentsWithExternalCalls
	}
	q.ServiceLevelThreshold = config.DefaultServiceLevelThreshold
	if c.ServiceLevelThreshold != nil {
		q.ServiceLevelThreshold = intParam(log, c.Name, "service-level-threshold", int64(*c.ServiceLevelThreshold), config.DefaultServiceLevelThreshold)
	}
	q.ShortAbandonThreshold = config.DefaultShortAbandonThreshold
	if c.ShortAbandonThreshold != nil {
		q.ShortAbandonThreshold = intParam(log, c.Name, "short-abandon-threshold", int64(*c.ShortAbandonThreshold), config.DefaultShortAbandonThreshold)
	}
	return q
}

// ringStrategy reports strategies whose members stay Trying while every
// eligible agent is rung (§6.4, §6.5).
func ringStrategy(s config.Strategy) bool {
	return s == config.StrategyRingAll || s == config.StrategyRingProgressively
}

// progressiveDelay is ring-progressively-delay with 0 meaning
// config.DefaultRingProgressivelyDelay.
func (q *Queue) progressiveDelay() int64 {
	if q.RingProgressivelyDelay <= 0 {
		return config.DefaultRingProgressivelyDelay
	}
	return q.RingProgressivelyDelay
}

func btoa(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var queueColumns = []string{"name", "strategy", "moh_sound", "time_base_score", "tier_rules_apply",
	"tier_rule_wait_second", "tier_rule_wait_multiply_level", "tier_rule_no_agent_no_wait",
	"discard_abandoned_after", "abandoned_resume_allowed", "max_wait_time", "max_wait_time_with_no_agent",
	"max_wait_time_with_no_agent_time_reached", "record_template", "calls_answered", "calls_abandoned",
	"ring_progressively_delay", "skip_agents_with_external_calls", "agent_no_answer_status"}

func (q *Queue) fields() []string {
	return []string{q.Name, string(q.Strategy), q.MOHSound, q.TimeBaseScore, btoa(q.TierRulesApply),
		itoa(q.TierRuleWaitSecond), btoa(q.TierRuleWaitMultiplyLevel), btoa(q.TierRuleNoAgentNoWait),
		itoa(q.DiscardAbandonedAfter), btoa(q.AbandonedResumeAllowed), itoa(q.MaxWaitTime),
		itoa(q.MaxWaitTimeWithNoAgent), itoa(q.MaxWaitTimeWithNoAgentReach), q.RecordTemplate,
		itoa(q.CallsAnswered), itoa(q.CallsAbandoned), itoa(q.RingProgressivelyDelay),
		btoa(q.SkipAgentsWithExternalCalls), string(q.AgentNoAnswerStatus)}
}
