package acd

import (
	"context"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

// The agent side of an offer: eligibility, failure causes and their delays,
// max-no-answer, On Demand, uuid-standby, the agent leg, tier states,
// callcenter_track and callcenter_break (§7, §8, §10.2, §11). A test named
// TestCnn checks item nn of §18.

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
			h.acd.do(func() { c.set(h.acd.agents["a"]); h.acd.rowsChanged() })
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

// TestC09ExternalCallsNotSkipped: with skip-agents-with-external-calls=false
// an agent on an external call is still offered queue calls.
func TestC09ExternalCallsNotSkipped(t *testing.T) {
	no := false
	h := newHarness(t, queueCfg("", func(q *config.Queue) { q.SkipAgentsWithExternalCalls = &no }), nil, baseEpoch)
	h.agents("a")
	h.acd.do(func() { h.acd.agents["a"].ExternalCallsCount = 1 })
	h.call("5550001", q1, nil)
	eq(t, "offered", dialed(h.nextDial()), "a")
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

// TestNoInstantReofferLoop: an agent whose phone fails at once (and has no
// delay configured) is re-offered on the next second, not in a tight loop.
// FreeSWITCH's 100 ms poll bounds this; event-driven dispatch must too.
func TestNoInstantReofferLoop(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	h.call("5550001", q1, nil)
	h.nextDial().fail(call.NoRouteDestination)
	h.waitAction("bridge-agent-fail")
	h.noDial()
	h.advance(1)
	eq(t, "re-offered next second", dialed(h.nextDial()), "a")
	eq(t, "ready_time untouched", h.agent("a").ReadyTime, 0)
}

// TestAgentOriginateTimeout: an agent who never answers is given up after
// agent-originate-timeout (default 60 s) and counted as a no-answer.
func TestAgentOriginateTimeout(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set no_answer_delay_time a 30")
	h.call("5550001", q1, nil)
	h.nextDial()
	h.advance(59)
	h.acd.settle()
	eq(t, "still ringing", h.get("state", "a"), "Receiving")
	h.advance(1)
	e := h.waitAction("bridge-agent-fail")
	eq(t, "cause", e.Get("CC-Hangup-Cause"), "NO_ANSWER")
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

func TestC23TierStates(t *testing.T) {
	cfg := queueCfg("", nil)
	cfg.Queues = append(cfg.Queues, config.Queue{Name: "q2@default"})
	h := newHarness(t, cfg, nil, baseEpoch)
	h.agents("a")
	h.mustOK("tier add q2@default a")
	c := h.call("5550001", q1, nil)
	r := h.nextDial()
	eq(t, "offering", []string{h.tierState(q1, "a"), h.tierState("q2@default", "a")}, []string{"Offering", "Standby"})
	h.bridged(r)
	eq(t, "active", []string{h.tierState(q1, "a"), h.tierState("q2@default", "a")}, []string{"Active Inbound", "Standby"})
	c.ch.Hangup(call.NormalClearing)
	h.waitAction("member-queue-end")
	h.acd.settle()
	eq(t, "ready", []string{h.tierState(q1, "a"), h.tierState("q2@default", "a")}, []string{"Ready", "Ready"})
}

func TestC24StatusChangeCancelsOffer(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	h.call("5550001", q1, nil)
	h.nextDial()
	h.mustOK("agent set status a 'On Break'")
	e := h.waitAction("bridge-agent-fail")
	eq(t, "cancelled", e.Get("CC-Hangup-Cause"), "ORIGINATOR_CANCEL")
	h.noDial()
}

// TestUUIDStandby: an agent parked on a channel is bridged without an
// originate; CC-Agent-Called-Time is 0 and the uuid survives the call.
func TestUUIDStandby(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	parked := h.core.NewChannel(call.ChannelSpec{Name: "sofia/internal/s", Direction: call.Inbound})
	parked.MarkAnswered()
	h.mustOK("agent add s uuid-standby")
	h.mustOK("agent set uuid s " + parked.UUID())
	h.mustOK("tier add " + q1 + " s")
	h.mustOK("agent set status s Available")
	c := h.call("5550001", q1, nil)
	e := h.waitAction("bridge-agent-start")
	eq(t, "called time", e.Get("CC-Agent-Called-Time"), "0")
	eq(t, "agent vars", parked.Var("cc_agent"), "s")
	h.until("agent-state-change s In a queue call")
	c.ch.Hangup(call.NormalClearing)
	e = h.waitAction("bridge-agent-end")
	eq(t, "cause", e.Get("CC-Hangup-Cause"), "NONE")
	h.acd.settle()
	eq(t, "uuid kept", h.get("uuid", "s"), parked.UUID())
}

// TestAgentLegVariables: the agent leg carries the cc_* variables of
// §10.2, the caller ID (effective_* first, with the prefix) and the
// variables named in cc_export_vars.
func TestAgentLegVariables(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, map[string]string{
		"effective_caller_id_name": "Bob", "cc_outbound_cid_name_prefix": "Q: ",
		"cc_export_vars": "nolocal:foo,bar", "foo": "1", "bar": "2",
	})
	r := h.nextDial()
	v := r.opts.Vars
	eq(t, "cc vars", []string{v["cc_queue"], v["cc_agent"], v["cc_side"], v["cc_member_uuid"], v["cc_member_session_uuid"], v["cc_member_pre_answer_uuid"], v["ignore_early_media"]},
		[]string{q1, "a", "agent", c.ch.Var("cc_member_uuid"), c.ch.UUID(), c.ch.Var("cc_member_uuid"), "true"})
	eq(t, "caller id", []string{v["origination_caller_id_name"], v["origination_caller_id_number"]}, []string{"Q: Bob", "5550001"})
	eq(t, "exports", []string{v["foo"], v["bar"], v["cc_export_vars"]}, []string{"1", "2", "nolocal:foo,bar"})
	if r.opts.Caller != c.ch {
		t.Fatal("the member channel must be the originate's caller")
	}
}

func TestC25Track(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	ext := h.core.NewChannel(call.ChannelSpec{Name: "sofia/internal/a"})
	if err := h.core.Execute(context.Background(), ext, "callcenter_track", "a"); err != nil {
		t.Fatal(err)
	}
	eq(t, "tracked", ext.Var("cc_tracked_agent"), "a")
	eq(t, "counted", h.agent("a").ExternalCallsCount, 1)
	h.call("5550001", q1, nil)
	h.noDial()
	ext.Hangup(call.NormalClearing)
	eq(t, "offered after the external call", dialed(h.nextDial()), "a")
	eq(t, "count back to 0", h.agent("a").ExternalCallsCount, 0)
}

func TestC26Break(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, nil)
	leg := h.bridged(h.nextDial())
	eq(t, "usage", h.core.API(context.Background(), "callcenter_break", nil), "-ERR Usage: callcenter_break agent <uuid>\n")
	eq(t, "unknown", h.core.API(context.Background(), "callcenter_break agent nope", nil), "-ERR Session not found for uuid nope\n")
	eq(t, "break", h.core.API(context.Background(), "callcenter_break agent "+leg.UUID(), nil), "")
	h.waitAction("bridge-agent-end")
	h.acd.settle()
	eq(t, "agent free", h.get("state", "a"), "Waiting")
	eq(t, "call continues", []bool{c.ch.Ready(), leg.Ready()}, []bool{true, true})
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}
