package config

import (
	"strings"
	"testing"
)

// vocabCase checks one word list against its parser: every word parses to
// itself from its own, lower and upper spelling, and a near miss does not.
func vocabCase[T ~string](t *testing.T, name string, words []T, parse func(string) (T, bool), want []string) {
	t.Helper()
	if got := spellings(words); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s spellings:\n got %q\nwant %q", name, got, want)
	}
	for _, w := range words {
		for _, in := range []string{string(w), strings.ToLower(string(w)), strings.ToUpper(string(w))} {
			got, ok := parse(in)
			if !ok || got != w {
				t.Errorf("%s: parse(%q) = %q, %v; want %q", name, in, got, ok, w)
			}
			if string(got) != string(w) {
				t.Errorf("%s: %q does not round-trip", name, w)
			}
		}
		if got, ok := parse(" " + string(w)); ok {
			t.Errorf("%s: parse(%q) = %q, want no match (no trimming)", name, " "+string(w), got)
		}
	}
	for _, in := range []string{"", "Unknown", "nonsense"} {
		if got, ok := parse(in); ok || got != "" {
			t.Errorf("%s: parse(%q) = %q, %v; want no match", name, in, got, ok)
		}
	}
}

// The spellings are FreeSWITCH's, byte for byte: they reach `agent list`,
// events and the database.
func TestVocabularyRoundTrip(t *testing.T) {
	vocabCase(t, "strategy", Strategies, ParseStrategy, []string{"longest-idle-agent", "agent-with-least-talk-time",
		"agent-with-fewest-calls", "sequentially-by-agent-order", "random", "ring-all", "ring-progressively",
		"top-down", "round-robin"})
	vocabCase(t, "agent status", Statuses, ParseAgentStatus, []string{"Logged Out", "Available", "Available (On Demand)", "On Break"})
	vocabCase(t, "agent state", AgentStates, ParseAgentState, []string{"Waiting", "Receiving", "In a queue call", "Idle", "Reserved"})
	vocabCase(t, "tier state", TierStates, ParseTierState, []string{"No Answer", "Ready", "Offering", "Active Inbound", "Standby"})
	vocabCase(t, "member state", MemberStates, ParseMemberState, []string{"Waiting", "Trying", "Answered", "Abandoned"})
	vocabCase(t, "cancel reason", CancelReasons, ParseCancelReason, []string{"NONE", "TIMEOUT", "NO_AGENT_TIMEOUT", "BREAK_OUT", "EXIT_WITH_KEY"})
	vocabCase(t, "member cause", MemberCauses, ParseMemberCause, []string{"Terminated", "Cancel"})
	vocabCase(t, "agent type", AgentTypes, ParseAgentType, []string{"callback", "uuid-standby"})
}

// FreeSWITCH's own mixed spellings parse to the canonical word: the case
// a user types is not kept (§16.2-3).
func TestVocabularyCanonicalises(t *testing.T) {
	if s, _ := ParseAgentStatus("available (on demand)"); s != StatusAvailableOnDemand {
		t.Errorf("got %q", s)
	}
	if s, _ := ParseAgentState("in a Queue Call"); s != StateInAQueueCall {
		t.Errorf("got %q", s)
	}
	if s, _ := ParseStrategy("Ring-All"); s != StrategyRingAll {
		t.Errorf("got %q", s)
	}
	if s, _ := ParseAgentType("Callback"); s != AgentTypeCallback {
		t.Errorf("got %q", s)
	}
}
