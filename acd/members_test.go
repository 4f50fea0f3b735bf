package acd

import (
	"context"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
)

// The caller's side: the callcenter app from join to exit or bridge,
// timeouts, exit keys, hangups, abandon and resume, announcements and what
// follows the bridge (§9, §10). A test named TestCnn checks item nn of §18.

func TestC14MaxWaitTime(t *testing.T) {
	h := newHarness(t, queueCfg("", func(q *config.Queue) { q.MaxWaitTime = 30 }), nil, baseEpoch)
	c := h.call("5550001", q1, nil)
	h.advance(29)
	h.advance(1)
	e := h.waitAction("member-queue-end")
	eq(t, "reason", []string{e.Get("CC-Cause"), e.Get("CC-Cancel-Reason")}, []string{"Cancel", "TIMEOUT"})
	c.wait(t)
	eq(t, "dialplan continues", c.ch.Ready(), true)
	eq(t, "vars", []string{c.ch.Var("cc_cause"), c.ch.Var("cc_cancel_reason")}, []string{"cancel", "TIMEOUT"})

	// While an agent rings, the timeout waits for the outcome; a bridge wins.
	h = newHarness(t, queueCfg("", func(q *config.Queue) { q.MaxWaitTime = 30 }), nil, baseEpoch)
	h.agents("a")
	c = h.call("5550001", q1, nil)
	r := h.nextDial()
	h.advance(31)
	h.bridged(r)
	eq(t, "bridged, not timed out", h.get("state", "a"), "In a queue call")
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}

// TestC14MaxWaitTimeAfterRinging: the timeout deferred by a ringing agent
// fires when that offer fails, and no new offer starts meanwhile.
func TestC14MaxWaitTimeAfterRinging(t *testing.T) {
	h := newHarness(t, queueCfg("ring-all", func(q *config.Queue) { q.MaxWaitTime = 30 }), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, nil)
	r := h.nextDial()
	h.advance(30)
	r.fail(call.NoAnswer)
	e := h.waitAction("member-queue-end")
	eq(t, "reason", e.Get("CC-Cancel-Reason"), "TIMEOUT")
	c.wait(t)
	h.noDial()
}

func TestC15NoAgentTimeout(t *testing.T) {
	cfg := queueCfg("", func(q *config.Queue) { q.MaxWaitTimeWithNoAgent = 10 })
	h := newHarness(t, cfg, nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set status a 'Logged Out'")
	c := h.call("5550001", q1, nil)
	h.advance(14) // time-reached defaults to 5: kicked at 10+5
	h.drain()
	h.advance(1)
	e := h.waitAction("member-queue-end")
	eq(t, "reason", e.Get("CC-Cancel-Reason"), "NO_AGENT_TIMEOUT")
	c.wait(t)

	h = newHarness(t, cfg, nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set status a 'On Break'")
	c = h.call("5550001", q1, nil)
	h.advance(60)
	for _, s := range h.drain() {
		if strings.HasPrefix(s, "member-queue-end") {
			t.Fatal("an On Break agent must prevent the no-agent kick")
		}
	}
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}

func TestC16ExitKeys(t *testing.T) {
	h := newHarness(t, queueCfg("", func(q *config.Queue) { q.MOHSound = "ivr/moh.wav" }), nil, baseEpoch)
	c, md := h.callWithMedia("5550001", map[string]string{"cc_exit_keys": "#*"})
	md.press('5')
	h.acd.settle()
	eq(t, "other digits ignored", c.ch.Var("cc_cause"), "")
	md.press('#')
	e := h.waitAction("member-queue-end")
	eq(t, "reason", e.Get("CC-Cancel-Reason"), "EXIT_WITH_KEY")
	c.wait(t)
	eq(t, "cc_exit_key", c.ch.Var("cc_exit_key"), "#")
	eq(t, "music on hold", md.musicPlayed(), []string{"ivr/moh.wav"})
}

func TestC17CallerHangupWhileRinging(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set no_answer_delay_time a 30")
	c := h.call("5550001", q1, nil)
	h.nextDial()
	h.drain()
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
	eq(t, "member-queue-end", summary(h.nextEvent()), "member-queue-end Cancel BREAK_OUT")
	eq(t, "members-count", summary(h.nextEvent()), "members-count 0")
	eq(t, "fail", summary(h.nextEvent()), "bridge-agent-fail a ORIGINATOR_CANCEL")
	eq(t, "waiting", summary(h.nextEvent()), "agent-state-change a Waiting")
	ag := h.agent("a")
	eq(t, "no penalty", []int64{ag.ReadyTime, ag.NoAnswerCount}, []int64{0, 0})
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
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return len(h.acd.inbox) == 1 }, "the offer's answer to be queued behind the held loop")
	c.ch.Hangup(call.NormalClearing)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return len(h.acd.inbox) == 2 }, "the caller's leave to be queued behind the answer")
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

func TestC18AbandonedResumeAndDiscard(t *testing.T) {
	cfg := queueCfg("", func(q *config.Queue) { q.AbandonedResumeAllowed = true })
	h := newHarness(t, cfg, nil, baseEpoch)
	c := h.call("5550001", q1, nil)
	first := c.ch.Var("cc_member_uuid")
	h.advance(5)
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
	eq(t, "abandoned row counted", h.api("queue count members "+q1), "1\n")
	h.advance(5)
	h.drain()
	c2 := h.call("5550001", q1, nil)
	eq(t, "same member uuid", c2.ch.Var("cc_member_uuid"), first)
	var joined int64
	var state config.MemberState
	h.acd.do(func() { m := h.acd.members[first]; joined, state = m.JoinedEpoch, m.State })
	eq(t, "original join", joined, baseEpoch)
	eq(t, "waiting again", state, "Waiting")
	c2.ch.Hangup(call.NormalClearing)
	c2.wait(t)

	h = newHarness(t, queueCfg("", nil), nil, baseEpoch)
	c = h.call("5550001", q1, nil)
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
	h.advance(60)
	eq(t, "kept until discard-abandoned-after", h.api("queue count members "+q1), "1\n")
	h.advance(1)
	eq(t, "discarded", h.api("queue count members "+q1), "0\n")
}

func TestC19C20SuccessfulCall(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, nil)
	leg := h.bridged(h.nextDial())
	eq(t, "row answered", strings.Contains(h.api("queue list members "+q1), "|a|single_box|Answered|"), true)
	h.advance(20)
	leg.Hangup(call.NormalClearing) // the agent hangs up first
	h.waitAction("member-queue-end")
	c.wait(t)
	eq(t, "member vars", []string{c.ch.Var("cc_agent"), c.ch.Var("cc_queue_answered_epoch"), c.ch.Var("cc_agent_bridged"),
		c.ch.Var("cc_cause"), c.ch.Var("cc_queue_terminated_epoch")},
		[]string{"a", itoa(baseEpoch), "true", "answered", itoa(baseEpoch + 20)})
	eq(t, "row deleted", h.api("queue count members "+q1), "0\n")
	ag := h.agent("a")
	eq(t, "accounting", []int64{ag.CallsAnswered, ag.TalkTime, ag.LastBridgeEnd}, []int64{1, 20, baseEpoch + 20})
	eq(t, "§18-20 caller continues the dialplan", c.ch.Ready(), true)
	c.ch.Hangup(call.NormalClearing)

	// hangup_after_bridge=true hangs the caller up with the agent.
	h.advance(1)
	c = h.call("5550002", q1, map[string]string{"hangup_after_bridge": "true"})
	leg = h.bridged(h.nextDial())
	leg.Hangup(call.NormalClearing)
	c.wait(t)
	eq(t, "hung up after bridge", c.ch.Ready(), false)
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
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		md.mu.Lock()
		defer md.mu.Unlock()
		return len(md.played) == 1 && len(md.music) == 2
	}, "the first announcement and the music resumed after it")
	h.advance(30)
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		md.mu.Lock()
		defer md.mu.Unlock()
		return len(md.played) == 2
	}, "the second announcement")
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
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
