package acd

import (
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

// One test per behaviour of reference/mod_callcenter.md §18, in virtual
// time. Names carry the item number.

const q1 = "q1@default"

func queueCfg(strategy config.Strategy, mod func(*config.Queue)) config.Callcenter {
	q := config.Queue{Name: q1, Strategy: strategy}
	if mod != nil {
		mod(&q)
	}
	return config.Callcenter{Queues: []config.Queue{q}}
}

// agents adds callback agents "name:level:position" tiered to q1, Available.
func (h *harness) agents(specs ...string) {
	h.t.Helper()
	for _, s := range specs {
		p := strings.Split(s, ":")
		lvl, pos := "1", "1"
		if len(p) > 1 {
			lvl = p[1]
		}
		if len(p) > 2 {
			pos = p[2]
		}
		h.mustOK("agent add " + p[0] + " Callback")
		h.mustOK("agent set contact " + p[0] + " user/" + p[0])
		h.mustOK("tier add " + q1 + " " + p[0] + " " + lvl + " " + pos)
		h.mustOK("agent set status " + p[0] + " Available")
	}
	h.drain()
}

func dialed(r *dialReq) string {
	return strings.TrimPrefix(r.dial[strings.LastIndex(r.dial, "]")+1:], "user/")
}

func TestC01AgentAdd(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add A Callback")
	eq(t, "status", h.get("status", "A"), "Logged Out")
	eq(t, "state", h.get("state", "A"), "Waiting")
	eq(t, "dup", h.api("agent add A Callback"), "-ERR Agent already exist!\n")
	eq(t, "bad type", h.api("agent add B phone"), "-ERR Agent type invalid!\n")
	eq(t, "missing args", h.api("agent add B"), "-ERR Invalid!\n")
	h.mustOK("agent add S uuid-standby")
	ev := h.drain()
	eq(t, "events", ev[0], "agent-add A")
}

func TestC02Listings(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	eq(t, "empty agent list", h.api("agent list"), "+OK\n")
	eq(t, "empty tier list", h.api("tier list"), "+OK\n")
	ql := h.api("queue list")
	eq(t, "queue list header", strings.SplitN(ql, "\n", 2)[0], strings.Join(queueColumns, "|"))
	h.mustOK("agent add A Callback")
	al := h.api("agent list")
	lines := strings.Split(al, "\n")
	eq(t, "columns", len(strings.Split(lines[0], "|")), 21)
	eq(t, "row", lines[1], "A|single_box||Callback||Logged Out|Waiting|0|0|0|0|0|0|0|0|0|0|0|0|0|0")
	eq(t, "trailer", lines[2]+"\n", "+OK\n")
	eq(t, "extra args", h.api("agent list A B"), "-ERR Invalid!\n")
	eq(t, "unknown action", h.api("agent frobnicate"), "")
	eq(t, "one token", h.api("agent"), "-ERR Invalid!\n")
	if !strings.HasPrefix(h.api(""), "-USAGE: \n") {
		t.Fatal("empty command must print usage")
	}
}

func TestC03AgentGet(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add A Callback")
	eq(t, "status", h.api("agent get status A"), "Logged Out")
	eq(t, "unknown agent", h.api("agent get status Z"), "-ERR Agent not found!\n")
	eq(t, "unknown key", h.api("agent get color A"), "-ERR Invalid Agent Update KEY!\n")
	eq(t, "unknown agent before key", h.api("agent get color Z"), "-ERR Agent not found!\n")
	h.drain()
	h.api("agent get STATUS A")
	e := h.nextEvent()
	eq(t, "action as typed", e.Get("CC-Action"), "agent-STATUS-get")
	eq(t, "header as typed", e.Get("CC-Agent-STATUS"), "Logged Out")
}

func TestC04AvailableResetsCounters(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add A Callback")
	h.acd.do(func() {
		ag := h.acd.agents["A"]
		ag.TalkTime, ag.CallsAnswered, ag.NoAnswerCount = 5, 2, 1
	})
	h.advance(10)
	h.mustOK("agent set status A available") // canonicalized
	ag := h.agent("A")
	eq(t, "status canonical", ag.Status, "Available")
	eq(t, "reset", []int64{ag.TalkTime, ag.CallsAnswered, ag.NoAnswerCount, ag.LastStatusChange}, []int64{0, 0, 0, baseEpoch + 10})
	h.acd.do(func() { h.acd.agents["A"].CallsAnswered = 3 })
	h.drain()
	h.advance(10)
	h.mustOK("agent set status A Available")
	ag = h.agent("A")
	eq(t, "no reset when already Available", []int64{ag.CallsAnswered, ag.LastStatusChange}, []int64{3, baseEpoch + 10})
	eq(t, "event fires anyway", h.drain(), []string{"agent-status-change A Available"})
}

func TestC05TierAdd(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add A Callback")
	h.mustOK("tier add " + q1 + " A")
	eq(t, "tier", h.api("tier list"), "queue|agent|state|level|position\n"+q1+"|A|Ready|1|1\n+OK\n")
	eq(t, "dup", h.api("tier add "+q1+" A"), "-ERR Tier already exist!\n")
	eq(t, "no queue", h.api("tier add nope A"), "-ERR Queue not found!\n")
	eq(t, "no agent", h.api("tier add "+q1+" Z"), "-ERR Agent not found!\n")
	eq(t, "args", h.api("tier add "+q1), "-ERR Invalid!\n")
	eq(t, "bad tier state", h.api("tier set state "+q1+" A Bogus"), "-ERR Invalid Tier State!\n")
	eq(t, "bad tier key", h.api("tier set color "+q1+" A 1"), "-ERR Invalid Tier Update KEY!\n")
	h.mustOK("tier set state " + q1 + " A 'no answer'")
	eq(t, "canonical tier state", h.tierState(q1, "A"), "No Answer")
}

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
		return func(h *harness) { h.acd.do(func() { f(h.acd.agents[name]) }) }
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

func TestC09Eligibility(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Agent)
	}{
		{"on break", func(a *Agent) { a.Status = config.StatusOnBreak }},
		{"logged out", func(a *Agent) { a.Status = config.StatusLoggedOut }},
		{"not waiting", func(a *Agent) { a.State = config.StateIdle }},
		{"wrap-up", func(a *Agent) { a.LastBridgeEnd = baseEpoch - 5; a.WrapUpTime = 10 }},
		{"ready_time", func(a *Agent) { a.ReadyTime = baseEpoch + 5 }},
		{"external call", func(a *Agent) { a.ExternalCallsCount = 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
			h.agents("a:1:1", "b:2:1")
			h.acd.do(func() { c.set(h.acd.agents["a"]) })
			h.call("5550001", q1, nil)
			eq(t, "skipped", dialed(h.nextDial()), "b")
		})
	}
	// Wrap-up ends on its own: strictly after last_bridge_end + wrap_up_time.
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
	h.agents("a")
	h.acd.do(func() { ag := h.acd.agents["a"]; ag.LastBridgeEnd = baseEpoch; ag.WrapUpTime = 10 })
	h.call("5550001", q1, nil)
	h.advance(10)
	h.noDial()
	h.advance(1)
	eq(t, "after wrap-up", dialed(h.nextDial()), "a")
}

func TestC10FailureCauses(t *testing.T) {
	cases := []struct {
		cause       call.Cause
		ready       int64
		count       int64
		tier, state string
	}{
		{call.UserBusy, 60, 0, "Ready", "Waiting"},
		{call.CallRejected, 30, 0, "Ready", "Waiting"},
		{call.UserNotRegistered, 5, 0, "Ready", "Waiting"},
		{call.NoAnswer, 10, 1, "No Answer", "Waiting"},
	}
	for _, c := range cases {
		t.Run(string(c.cause), func(t *testing.T) {
			h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
			h.agents("a")
			h.mustOK("agent set busy_delay_time a 60")
			h.mustOK("agent set reject_delay_time a 30")
			h.mustOK("agent set no_answer_delay_time a 10")
			h.call("5550001", q1, nil)
			h.nextDial().fail(c.cause)
			e := h.waitAction("bridge-agent-fail")
			eq(t, "fail cause", e.Get("CC-Hangup-Cause"), string(c.cause))
			h.acd.settle()
			ag := h.agent("a")
			ready := int64(0)
			if c.ready > 0 {
				ready = baseEpoch + c.ready
			}
			eq(t, "outcome", []any{ag.ReadyTime, ag.NoAnswerCount, h.tierState(q1, "a"), ag.State},
				[]any{ready, c.count, c.tier, c.state})
		})
	}
}

func TestC10MaxNoAnswer(t *testing.T) {
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set max_no_answer a 2")
	h.call("5550001", q1, nil)
	h.nextDial().fail(call.NoAnswer)
	h.waitAction("bridge-agent-fail")
	h.advance(1) // no delay set: re-offered on the next second
	h.nextDial().fail(call.NoAnswer)
	e := h.waitAction("agent-max-no-answer")
	eq(t, "threshold reported", e.Get("CC-Agent-No-Answer-Count"), "2")
	eq(t, "status header", e.Get("CC-Agent-No-Answer-Status"), "On Break")
	eq(t, "then", summary(h.nextEvent()), "agent-status-change a On Break")
	eq(t, "then fail", summary(h.nextEvent()), "bridge-agent-fail a NO_ANSWER")
	eq(t, "then waiting", summary(h.nextEvent()), "agent-state-change a Waiting")
	eq(t, "status", h.get("status", "a"), "On Break")
	h.noDial()
}

func TestC11OnDemand(t *testing.T) {
	h := newHarness(t, queueCfg("longest-idle-agent", nil), nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set status a 'available (on demand)'")
	h.mustOK("agent set no_answer_delay_time a 5")
	c := h.call("5550001", q1, nil)
	h.nextDial().fail(call.NoAnswer)
	h.waitAction("bridge-agent-fail")
	h.acd.settle()
	eq(t, "after unanswered", h.get("state", "a"), "Waiting")
	h.advance(5)
	h.bridged(h.nextDial())
	c.ch.Hangup(call.NormalClearing)
	h.waitAction("member-queue-end")
	h.acd.settle()
	eq(t, "after bridged", h.get("state", "a"), "Idle")
	h.call("5550002", q1, nil)
	h.noDial()
	h.mustOK("agent set state a Waiting")
	h.advance(1) // last_bridge_end < now - wrap_up_time is strict
	eq(t, "offered again once Waiting", dialed(h.nextDial()), "a")
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
