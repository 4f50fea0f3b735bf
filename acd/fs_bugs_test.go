package acd

import (
	"testing"

	"ccpbx/call"
)

// Where FreeSWITCH has a bug (reference/mod_callcenter.md §16) ccpbx fixes
// it; each test here names the difference and what FreeSWITCH does.

// TestC05TierSetErrorsFixed names a deliberate difference: FreeSWITCH
// answers a missing tier with "-ERR Unknown Error!" and a missing queue
// with "-ERR Agent not found!" (§16.2-9); ccpbx says what is missing.
func TestC05TierSetErrorsFixed(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add A Callback")
	eq(t, "missing tier", h.api("tier set level "+q1+" A 2"), "-ERR Tier not found!\n")
	eq(t, "missing queue", h.api("tier set level nope A 2"), "-ERR Queue not found!\n")
	eq(t, "missing agent", h.api("tier set level "+q1+" Z 2"), "-ERR Agent not found!\n")
}

// TestC07RingAllLoserHungUp names a fix: an agent who answers after another
// won the ring-all race is hung up with LOSE_RACE; FreeSWITCH leaves that
// leg in dead air (§14.4).
func TestC07RingAllLoserHungUp(t *testing.T) {
	h := newHarness(t, queueCfg("ring-all", nil), nil, baseEpoch)
	h.agents("a", "b")
	c := h.call("5550001", q1, nil)
	r1, r2 := h.nextDial(), h.nextDial()
	// Both agents answer before the ACD sees either answer: the 200 OKs
	// cross, so the loser's answer arrives after the race was decided.
	legs := map[string]*call.Channel{dialed(r1): r1.leg(), dialed(r2): r2.leg()}
	h.acd.do(func() {
		r1.reply <- dialResult{ch: legs[dialed(r1)]}
		r2.reply <- dialResult{ch: legs[dialed(r2)]}
	})
	h.waitAction("bridge-agent-start")
	e := h.waitAction("bridge-agent-fail")
	eq(t, "loser cause", e.Get("CC-Hangup-Cause"), "LOSE_RACE")
	eq(t, "answered loser hung up", legs[e.Get("CC-Agent")].Cause(), call.LoseRace)
	eq(t, "loser free again", h.get("state", e.Get("CC-Agent")), "Waiting")
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}

// TestReserveAgentsNoLeak: with reserve-agents the agent goes Reserved
// then Receiving, and a failed offer leaves it Waiting. FreeSWITCH can
// leave it stuck in Reserved (#2540).
func TestReserveAgentsNoLeak(t *testing.T) {
	cfg := queueCfg("ring-all", nil)
	cfg.Settings.ReserveAgents = true
	h := newHarness(t, cfg, nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set no_answer_delay_time a 30")
	h.call("5550001", q1, nil)
	r := h.nextDial()
	eq(t, "reserved then receiving", []string{summary(h.waitAction("agent-state-change")), summary(h.nextEvent())},
		[]string{"agent-state-change a Reserved", "agent-state-change a Receiving"})
	r.fail(call.NoAnswer)
	h.waitAction("bridge-agent-fail")
	h.acd.settle()
	eq(t, "not stuck", h.get("state", "a"), "Waiting")
}

// TestRingAllNotStranded: the winner's leg is gone before the bridge.
// FreeSWITCH puts the member back to Waiting with serving_agent still
// naming that agent, so it is never offered again (§16.2-1); ccpbx gives
// the member back to ring-all and rings again.
func TestRingAllNotStranded(t *testing.T) {
	h := newHarness(t, queueCfg("ring-all", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, nil)
	r := h.nextDial()
	dead := h.core.NewChannel(call.ChannelSpec{Name: "sofia/internal/a", Direction: call.Outbound})
	dead.MarkAnswered()
	dead.Hangup(call.NormalClearing)
	r.reply <- dialResult{ch: dead}
	again := h.nextDial()
	eq(t, "rung again", dialed(again), "a")
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}

// TestStrategyCanonical: "Ring-All" works like ring-all. FreeSWITCH keeps
// the raw string in SQL and then never rings anyone (§16.2-3).
func TestStrategyCanonical(t *testing.T) {
	h := newHarness(t, queueCfg("Ring-All", nil), nil, baseEpoch)
	h.agents("a", "b")
	h.call("5550001", q1, nil)
	got := map[string]bool{dialed(h.nextDial()): true, dialed(h.nextDial()): true}
	eq(t, "both rung", got, map[string]bool{"a": true, "b": true})
	eq(t, "listed canonical", h.api("queue list") != "", true)
}

// TestUUIDStandbyMissingChannel: the standby channel is gone. FreeSWITCH
// counts a no-answer and may put a Logged Out agent On Break (§16.2-5);
// ccpbx logs the agent out and stops there.
func TestUUIDStandbyMissingChannel(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add s uuid-standby")
	h.mustOK("agent set uuid s gone")
	h.mustOK("agent set max_no_answer s 1")
	h.mustOK("tier add " + q1 + " s")
	h.mustOK("agent set status s Available")
	h.call("5550001", q1, nil)
	h.waitAction("bridge-agent-fail")
	h.acd.settle()
	ag := h.agent("s")
	eq(t, "logged out, no count", []any{ag.Status, ag.NoAnswerCount}, []any{"Logged Out", 0})
}

// TestOnDemandKeepsRinging: switching a ringing agent to On Demand does not
// cancel the offer (FreeSWITCH cancels and re-offers at once, PR #800).
func TestOnDemandKeepsRinging(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, nil)
	r := h.nextDial()
	h.mustOK("agent set status a 'Available (On Demand)'")
	h.noDial()
	eq(t, "still ringing", r.ctx.Err(), nil)
	h.bridged(r)
	c.ch.Hangup(call.NormalClearing)
	h.waitAction("member-queue-end")
	h.acd.settle()
	eq(t, "On Demand at offer time only if bridged: Available at offer → Waiting", h.get("state", "a"), "Waiting")
}
