package acd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

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

// TestProgressiveDelayDefault: a ring-progressively-delay of 0 spaces the
// agents by 10 s but is listed as the 0 that was configured.
func TestProgressiveDelayDefault(t *testing.T) {
	q := newQueue(config.Queue{Name: "q", Strategy: config.StrategyRingProgressively}, nil)
	eq(t, "listed", q.RingProgressivelyDelay, int64(0))
	eq(t, "effective", q.progressiveDelay(), int64(10))
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

// TestAnnouncements: announce-sound plays every announce-frequency
// seconds over the music, which then resumes.
func TestAnnouncements(t *testing.T) {
	h := newHarness(t, queueCfg("", func(q *config.Queue) {
		q.MOHSound = "moh.wav"
		q.AnnounceSound = "ann.wav"
		q.AnnounceFrequency = 30
	}), nil, baseEpoch)
	c, md := h.callWithMedia("5550001", nil)
	<-md.ready // the hold loop is running
	h.advance(29)
	md.mu.Lock()
	n := len(md.played)
	md.mu.Unlock()
	eq(t, "nothing yet", n, 0)
	h.advance(1)
	waitFor(t, func() bool {
		md.mu.Lock()
		defer md.mu.Unlock()
		return len(md.played) == 1 && len(md.music) == 2
	})
	h.advance(30)
	waitFor(t, func() bool {
		md.mu.Lock()
		defer md.mu.Unlock()
		return len(md.played) == 2
	})
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}

// waitFor polls cond as a deadlock guard for work done by the app's own
// goroutine (no timing assertion: the bound only stops a hung test).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestC22Presence: joins and exits fire PRESENCE_IN with the Waiting count,
// and a probe for callcenter+<queue>@… is answered.
func TestC22Presence(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	pres, stop := h.core.Bus.Subscribe(100, func(e *call.Event) bool { return e.Name == "PRESENCE_IN" })
	defer stop()
	c := h.call("5550001", q1, nil)
	e := <-pres
	eq(t, "join", []string{e.Get("login"), e.Get("force-status"), e.Get("channel-state"), e.Get("answer-state")},
		[]string{q1, "Active (1 waiting)", "CS_ROUTING", "confirmed"})
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
	e = <-pres
	eq(t, "exit", []string{e.Get("force-status"), e.Get("channel-state")}, []string{"Idle", "CS_HANGUP"})
	probe := &call.Event{Name: "PRESENCE_PROBE"}
	probe.Add("to", "callcenter+"+q1)
	h.core.Fire(probe)
	e = <-pres
	eq(t, "probe", e.Get("force-status"), "Idle")
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

// TestTransferAfterBridge: with transfer_after_bridge the caller is
// transferred (through the dialplan's transfer app) when the agent leaves.
func TestTransferAfterBridge(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	var got string
	h.core.RegisterApp("transfer", func(_ context.Context, _ *call.Channel, data string) error {
		got = data
		return nil
	})
	h.agents("a")
	c := h.call("5550001", q1, map[string]string{"transfer_after_bridge": "9000:XML:default"})
	leg := h.bridged(h.nextDial())
	leg.Hangup(call.NormalClearing)
	c.wait(t)
	eq(t, "transfer", got, "9000 XML default")
	eq(t, "caller still up", c.ch.Ready(), true)
}

// TestJSONLeavesOutNULLs: a freshly added agent has NULL uuid and contact;
// listings print them empty, JSON leaves them out, also after a restart.
func TestJSONLeavesOutNULLs(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newHarness(t, queueCfg("", nil), st, baseEpoch)
	h.mustOK("agent add a Callback")
	h.mustOK("agent add b Callback")
	h.mustOK("agent set contact b user/b")
	agents := func(h *harness) string {
		out, err := h.acd.ConfigJSON("agent list", "")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	want := `[{"name":"a","instance_id":"single_box","type":"Callback","status":"Logged Out","state":"Waiting",` +
		`"max_no_answer":"0","wrap_up_time":"0","reject_delay_time":"0","busy_delay_time":"0","no_answer_delay_time":"0",` +
		`"last_bridge_start":"0","last_bridge_end":"0","last_offered_call":"0","last_status_change":"0","no_answer_count":"0",` +
		`"calls_answered":"0","talk_time":"0","ready_time":"0","external_calls_count":"0"},` +
		`{"name":"b","instance_id":"single_box","type":"Callback","contact":"user/b","status":"Logged Out","state":"Waiting",` +
		`"max_no_answer":"0","wrap_up_time":"0","reject_delay_time":"0","busy_delay_time":"0","no_answer_delay_time":"0",` +
		`"last_bridge_start":"0","last_bridge_end":"0","last_offered_call":"0","last_status_change":"0","no_answer_count":"0",` +
		`"calls_answered":"0","talk_time":"0","ready_time":"0","external_calls_count":"0"}]`
	eq(t, "json", agents(h), want)
	h.acd.Close()
	h2 := newHarness(t, queueCfg("", nil), st, baseEpoch)
	// The restart reset writes uuid='' (not NULL), as FreeSWITCH does.
	eq(t, "after restart", agents(h2), strings.ReplaceAll(want, `"instance_id":"single_box","type"`, `"instance_id":"single_box","uuid":"","type"`))
}

// TestBridgeFailedAnnounce: an agent who answers after the caller left
// hears cc_bridge_failed_outbound_announce and is then hung up.
func TestBridgeFailedAnnounce(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, map[string]string{"cc_bridge_failed_outbound_announce": "sorry.wav"})
	r := h.nextDial()
	md := newFakeMedia()
	leg := h.core.NewChannel(call.ChannelSpec{Name: "sofia/internal/a", Direction: call.Outbound, Media: md})
	leg.MarkAnswered()
	// The answer crosses the caller's hangup.
	h.acd.do(func() {
		c.ch.Hangup(call.NormalClearing)
		r.reply <- dialResult{ch: leg}
	})
	c.wait(t)
	<-leg.Done()
	eq(t, "cause", leg.Cause(), call.OriginatorCancel)
	md.mu.Lock()
	defer md.mu.Unlock()
	eq(t, "announced", md.played, []string{"sorry.wav"})
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

// TestNoSecondOfferAfterCallerGoneAnswer is the race the whole-PBX
// benchmark caught (round-robin, about 2 calls in 600): the caller hangs up
// just as agent a answers, and the loop handles a's answer before the app's
// leave. offerAnswered hangs a up and fails the offer, which put the member
// back to Waiting while its app was still registered, so the same pass
// offered the dead caller to b; leave then cancelled b's leg with
// ORIGINATOR_CANCEL. The loop is held so both messages queue in that order.
func TestNoSecondOfferAfterCallerGoneAnswer(t *testing.T) {
	h := newHarness(t, queueCfg("round-robin", nil), nil, baseEpoch)
	h.agents("a", "b")
	c := h.call("5550001", q1, nil)
	r := h.nextDial()
	other := "b"
	if dialed(r) == "b" {
		other = "a"
	}

	gate, held := make(chan struct{}), make(chan struct{})
	h.acd.post(func() { close(held); <-gate })
	<-held
	leg := r.answer()
	// The offer goroutine posts the answer; then the caller hangs up and
	// its app posts leave behind it.
	waitFor(t, func() bool { return len(h.acd.inbox) == 1 })
	c.ch.Hangup(call.NormalClearing)
	waitFor(t, func() bool { return len(h.acd.inbox) == 2 })
	close(gate)
	c.wait(t)

	for _, e := range h.drain() {
		if e == "agent-offering "+other {
			t.Fatalf("caller offered to %s after hanging up", other)
		}
	}
	<-leg.Done()
	eq(t, "answered agent hung up", leg.Cause(), call.OriginatorCancel)
	eq(t, "other agent untouched", h.agent(other).State, config.StateWaiting)
}
