package acd

import (
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

// Which agent a member is offered to: the strategies, tier rules and
// member scoring (§5, §6). A test named TestCnn checks item nn of §18.

// strategyPick joins one caller and reports which agent is offered first.
func strategyPick(t *testing.T, strategy config.Strategy, setup func(h *harness)) string {
	h := newHarness(t, queueCfg(strategy, nil), nil, baseEpoch)
	setup(h)
	h.call("5550001", q1, nil)
	r := h.nextDial()
	return dialed(r)
}

func TestC06Strategies(t *testing.T) {
	set := func(name string, f func(*Agent)) func(h *harness) {
		return func(h *harness) { h.acd.do(func() { f(h.acd.agents[name]); h.acd.rowsChanged() }) }
	}
	all := func(fs ...func(*harness)) func(*harness) {
		return func(h *harness) {
			h.agents("a:1:1", "b:1:2", "c:2:1")
			for _, f := range fs {
				f(h)
			}
		}
	}
	eq(t, "longest-idle", strategyPick(t, "longest-idle-agent", all(
		set("a", func(a *Agent) { a.LastBridgeEnd = baseEpoch - 100 }),
		set("b", func(a *Agent) { a.LastBridgeEnd = baseEpoch - 200 }))), "b")
	eq(t, "least-talk", strategyPick(t, "agent-with-least-talk-time", all(
		set("a", func(a *Agent) { a.TalkTime = 50 }), set("b", func(a *Agent) { a.TalkTime = 10 }))), "b")
	eq(t, "fewest-calls", strategyPick(t, "agent-with-fewest-calls", all(
		set("a", func(a *Agent) { a.CallsAnswered = 4 }), set("b", func(a *Agent) { a.CallsAnswered = 1 }))), "b")
	eq(t, "sequential", strategyPick(t, "sequentially-by-agent-order", all(
		set("a", func(a *Agent) { a.LastOffered = baseEpoch - 1 }))), "a")
	eq(t, "unknown strategy is sequential", strategyPick(t, "bogus-strategy", all()), "a")
	eq(t, "level first", strategyPick(t, "longest-idle-agent", all(
		set("a", func(a *Agent) { a.Status = config.StatusOnBreak }),
		set("b", func(a *Agent) { a.Status = config.StatusLoggedOut }),
		set("c", func(a *Agent) { a.LastBridgeEnd = 0 }))), "c")
	// round-robin continues after the last offered agent (b) and wraps.
	eq(t, "round-robin", strategyPick(t, "round-robin", all(
		set("a", func(a *Agent) { a.LastOffered = baseEpoch - 10 }),
		set("b", func(a *Agent) { a.LastOffered = baseEpoch - 50 }))), "b")
	// After the last position of the level, the list restarts at the top
	// (FreeSWITCH's UNION query), not at the next level.
	eq(t, "round-robin restarts at the top", strategyPick(t, "round-robin", all(
		set("a", func(a *Agent) { a.LastOffered = baseEpoch - 50 }),
		set("b", func(a *Agent) { a.LastOffered = baseEpoch - 10 }))), "a")
	eq(t, "round-robin wraps", strategyPick(t, "round-robin", all(
		set("c", func(a *Agent) { a.LastOffered = baseEpoch - 10 }))), "a")
	// random stays within the lowest level that has an eligible agent.
	for i := 0; i < 5; i++ {
		got := strategyPick(t, "random", all())
		if got != "a" && got != "b" {
			t.Fatalf("random picked %s from level 2", got)
		}
	}
}

// TestC06TopDown: top-down walks the tiers in order per member, one agent
// per failed attempt, and wraps to the top. FreeSWITCH stalls when the
// agents after the last one are all busy (#1216); ccpbx wraps instead.
func TestC06TopDown(t *testing.T) {
	h := newHarness(t, queueCfg("top-down", nil), nil, baseEpoch)
	h.agents("a:1:1", "b:1:2", "c:1:3")
	h.call("5550001", q1, nil)
	var order []string
	for i := 0; i < 4; i++ {
		r := h.nextDial()
		order = append(order, dialed(r))
		r.fail(call.OriginatorCancel) // no penalty, agent stays eligible
		h.waitAction("bridge-agent-fail")
		h.acd.settle()
	}
	eq(t, "order", order, []string{"a", "b", "c", "a"})

	// #1216: c (after the last offered b) is On Break: FreeSWITCH stalls.
	h2 := newHarness(t, queueCfg("top-down", nil), nil, baseEpoch)
	h2.agents("a:1:1", "b:1:2", "c:1:3")
	h2.call("5550001", q1, nil)
	r := h2.nextDial()
	eq(t, "first", dialed(r), "a")
	r.fail(call.OriginatorCancel)
	r = h2.nextDial()
	eq(t, "second", dialed(r), "b")
	h2.mustOK("agent set status c 'On Break'")
	r.fail(call.OriginatorCancel)
	r = h2.nextDial()
	eq(t, "wraps past the On Break tail", dialed(r), "a")
}

func TestC07RingAll(t *testing.T) {
	h := newHarness(t, queueCfg("ring-all", nil), nil, baseEpoch)
	h.agents("a", "b", "c")
	h.mustOK("agent set status c 'On Break'")
	c := h.call("5550001", q1, nil)
	r1, r2 := h.nextDial(), h.nextDial()
	if dialed(r1) == "b" {
		r1, r2 = r2, r1
	}
	eq(t, "both rung", []string{dialed(r1), dialed(r2)}, []string{"a", "b"})
	h.noDial()
	// c becomes available while the others ring: it is added.
	h.mustOK("agent set status c Available")
	r3 := h.nextDial()
	eq(t, "added later", dialed(r3), "c")
	h.drain()
	h.record = &recorder{}
	r2.answer()
	h.waitAction("bridge-agent-start")
	// The other offers end with LOSE_RACE, no penalty.
	seen := map[string]bool{}
	for len(seen) < 2 {
		e := h.waitAction("bridge-agent-fail")
		eq(t, "cause", e.Get("CC-Hangup-Cause"), "LOSE_RACE")
		seen[e.Get("CC-Agent")] = true
	}
	h.acd.settle()
	for _, n := range []string{"a", "c"} {
		ag := h.agent(n)
		eq(t, n+" no penalty", []any{ag.State, ag.ReadyTime, ag.NoAnswerCount}, []any{"Waiting", 0, 0})
	}
	h.until("agent-state-change b In a queue call")
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}

func TestC08RingProgressively(t *testing.T) {
	h := newHarness(t, queueCfg("ring-progressively", nil), nil, baseEpoch)
	h.agents("a:1:1", "b:1:2", "c:1:3")
	h.call("5550001", q1, nil)
	eq(t, "first", dialed(h.nextDial()), "a")
	h.noDial()
	h.advance(9)
	h.noDial()
	h.advance(1) // default delay 10 s when unset
	eq(t, "second after 10 s, first still ringing", dialed(h.nextDial()), "b")
	h.advance(10)
	eq(t, "third", dialed(h.nextDial()), "c")
}

// TestProgressiveDelayDefault: a ring-progressively-delay of 0 spaces the
// agents by 10 s but is listed as the 0 that was configured.
func TestProgressiveDelayDefault(t *testing.T) {
	q := newQueue(config.Queue{Name: "q", Strategy: config.StrategyRingProgressively}, nil)
	eq(t, "listed", q.RingProgressivelyDelay, int64(0))
	eq(t, "effective", q.progressiveDelay(), int64(10))
}

func TestC12Scoring(t *testing.T) {
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
	h.mustOK("agent add a Callback")
	h.mustOK("agent set contact a user/a")
	h.mustOK("tier add " + q1 + " a")
	h.call("5550001", q1, nil)
	h.advance(5)
	h.call("5550002", q1, map[string]string{"cc_base_score": "100"})
	h.mustOK("agent set status a Available")
	r := h.nextDial()
	eq(t, "higher base score first", r.opts.Caller.Var("caller_id_number"), "5550002")

	h2 := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
	h2.mustOK("agent add a Callback")
	h2.mustOK("agent set contact a user/a")
	h2.mustOK("tier add " + q1 + " a")
	h2.call("5550001", q1, nil)
	h2.advance(5)
	h2.call("5550002", q1, nil)
	h2.mustOK("agent set status a Available")
	eq(t, "earlier joiner first", h2.nextDial().opts.Caller.Var("caller_id_number"), "5550001")

	// time-base-score=system adds the time answered before joining.
	h3 := newHarness(t, queueCfg("", func(q *config.Queue) { q.TimeBaseScore = "system" }), nil, baseEpoch)
	ch := h3.core.NewChannel(call.ChannelSpec{Name: "x", Vars: map[string]string{"caller_id_number": "1"}})
	ch.MarkAnswered()
	h3.advance(30)
	go h3.core.Execute(ch.Context(), ch, "callcenter", q1)
	h3.waitAction("member-queue-start")
	var base int64
	h3.acd.do(func() {
		for _, m := range h3.acd.members {
			base = m.BaseScore
		}
	})
	eq(t, "system score", base, 30)
	ch.Hangup(call.NormalClearing)
}

func tierRulesCfg(wait int, multiply, noAgentNoWait bool) config.Callcenter {
	return queueCfg("longest-idle-agent", func(q *config.Queue) {
		q.TierRulesApply = true
		q.TierRuleWaitSecond = wait
		q.TierRuleWaitMultiplyLevel = multiply
		q.TierRuleNoAgentNoWait = &noAgentNoWait
	})
}

func TestC13TierRules(t *testing.T) {
	// multiply=true, no-agent-no-wait=false: even level 1 waits 1×10 s,
	// level 2 opens at 2×10 s.
	h := newHarness(t, tierRulesCfg(10, true, false), nil, baseEpoch)
	h.agents("a:1", "b:2")
	h.mustOK("agent set state a Idle") // listed (counts) but busy
	h.call("5550001", q1, nil)
	h.noDial()
	h.advance(19)
	h.noDial()
	h.advance(1)
	eq(t, "level 2 at 2×wait", dialed(h.nextDial()), "b")

	h = newHarness(t, tierRulesCfg(10, true, false), nil, baseEpoch)
	h.agents("a:1")
	h.call("5550001", q1, nil)
	h.advance(9)
	h.noDial()
	h.advance(1)
	eq(t, "level 1 waits too", dialed(h.nextDial()), "a")

	// no-agent-no-wait=true: a level whose agents are all logged out is
	// skipped, so level 2 rings at once.
	h = newHarness(t, tierRulesCfg(10, true, true), nil, baseEpoch)
	h.agents("a:1", "b:2")
	h.mustOK("agent set status a 'Logged Out'")
	h.call("5550001", q1, nil)
	eq(t, "skip empty level", dialed(h.nextDial()), "b")

	// multiply=false: every higher level opens together after wait.
	h = newHarness(t, tierRulesCfg(10, false, false), nil, baseEpoch)
	h.agents("a:1", "b:5")
	h.mustOK("agent set state a Idle")
	h.call("5550001", q1, nil)
	h.advance(9)
	h.noDial()
	h.advance(1)
	eq(t, "all levels after wait", dialed(h.nextDial()), "b")
}
