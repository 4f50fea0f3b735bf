package acd

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// fakeMedia records what the app plays and lets tests send DTMF.
type fakeMedia struct {
	mu     sync.Mutex
	music  []string
	played []string
	digits func(rune)
	ready  chan struct{} // closed once the app listens for digits
}

func newFakeMedia() *fakeMedia { return &fakeMedia{ready: make(chan struct{})} }

func (m *fakeMedia) Play(ctx context.Context, path string) error {
	m.mu.Lock()
	m.played = append(m.played, path)
	m.mu.Unlock()
	return nil
}

func (m *fakeMedia) Music(path string) (func(), error) {
	m.mu.Lock()
	m.music = append(m.music, path)
	m.mu.Unlock()
	return func() {}, nil
}

func (m *fakeMedia) OnDigit(fn func(rune)) func() {
	m.mu.Lock()
	m.digits = fn
	select {
	case <-m.ready:
	default:
		close(m.ready)
	}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		m.digits = nil
		m.mu.Unlock()
	}
}

func (m *fakeMedia) press(d rune) {
	<-m.ready
	m.mu.Lock()
	fn := m.digits
	m.mu.Unlock()
	if fn != nil {
		fn(d)
	}
}

func (m *fakeMedia) SendDigits(string) error { return nil }
func (m *fakeMedia) Bridge(call.Media) (func(), error) {
	return func() {}, nil
}
func (m *fakeMedia) Codec() string { return "PCMU" }

func (m *fakeMedia) musicPlayed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.music...)
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

func (h *harness) callWithMedia(num string, vars map[string]string) (*caller, *fakeMedia) {
	h.t.Helper()
	md := newFakeMedia()
	v := map[string]string{"caller_id_number": num, "caller_id_name": q1}
	for k, x := range vars {
		v[k] = x
	}
	ch := h.core.NewChannel(call.ChannelSpec{Name: "sofia/blueivr/" + num, Direction: call.Inbound, Vars: v, Media: md})
	c := &caller{ch: ch, done: make(chan error, 1)}
	go func() { c.done <- h.core.Execute(ch.Context(), ch, "callcenter", q1) }()
	h.waitAction("member-queue-start")
	h.acd.settle()
	return c, md
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

func TestC21FailEventHasNoChannelData(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	h.mustOK("agent set no_answer_delay_time a 30")
	h.call("5550001", q1, nil)
	h.nextDial().fail(call.NoAnswer)
	e := h.waitAction("bridge-agent-fail")
	for _, hd := range e.Headers {
		if hd.Name == "Unique-ID" || strings.HasPrefix(hd.Name, "variable_") {
			t.Fatalf("bridge-agent-fail carries channel header %s", hd.Name)
		}
	}
	e = h.waitAction("agent-state-change")
	eq(t, "state", e.Get("CC-Agent-State"), "Waiting")
}

func TestC22MembersCount(t *testing.T) {
	h := newHarness(t, queueCfg("ring-all", nil), nil, baseEpoch)
	h.agents("a")
	h.call("5550001", q1, nil) // Trying (ring-all)
	h.nextDial()
	h.mustOK("agent set status a 'Logged Out'")
	c3 := h.call("5550003", q1, nil)
	c3.ch.Hangup(call.NormalClearing)
	c3.wait(t)
	h.drain()
	h.call("5550002", q1, nil) // Waiting
	e := h.waitAction("members-count")
	eq(t, "Waiting and Trying counted, Abandoned not", e.Get("CC-Count"), "2")
	eq(t, "queue count members counts every row", h.api("queue count members "+q1), "3\n")
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

func TestC27Restart(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := observedConfig()
	h := newHarness(t, cfg, st, baseEpoch)
	h.mustOK("agent add x Callback")
	h.mustOK("agent set contact x user/x")
	h.mustOK("tier add 3000@default x 2 3")
	h.mustOK("agent set status x Available")
	h.mustOK("agent set status 1001 Available")
	h.mustOK("tier set level 3000@default 1001 7")
	c := h.call("5550001", "3000@default", nil)
	h.nextDial() // x (the only Available agent) rings
	h.acd.Close()
	c.ch.Hangup(call.NormalClearing)

	h2 := newHarness(t, cfg, st, baseEpoch+10)
	eq(t, "API agent kept, status kept, state reset",
		[]string{h2.get("status", "x"), h2.get("state", "x")}, []string{"Available", "Waiting"})
	eq(t, "config status re-applied", h2.get("status", "1001"), "Logged Out")
	eq(t, "tiers", h2.api("tier list"), "queue|agent|state|level|position\n"+
		"3000@default|1001|Ready|1|1\n3000@default|1002|Ready|1|1\n3000@default|x|Ready|2|3\n+OK\n")
	rows := h2.api("queue list members 3000@default")
	eq(t, "member abandoned", strings.Contains(rows, "|Abandoned|"), true)
}

func TestC28JSON(t *testing.T) {
	h := newHarness(t, observedConfig(), nil, baseEpoch)
	out, err := h.acd.ConfigJSON("queue list", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	eq(t, "queue list", string(b), `[{"name":"3000@default","strategy":"round-robin","moh_sound":"/usr/share/sounds/moh.wav","time_base_score":"system","tier_rules_apply":"false","tier_rule_wait_second":300,"tier_rule_wait_multiply_level":"true","tier_rule_no_agent_no_wait":"false","discard_abandoned_after":60,"abandoned_resume_allowed":"false","max_wait_time":0,"max_wait_time_with_no_agent":0,"max_wait_time_with_no_agent_time_reached":20,"skip_agents_with_external_calls":"true","agent_no_answer_status":"On Break"}]`)
	_, err = h.acd.ConfigJSON("queue list members", "")
	if err == nil {
		t.Fatal("missing queue_name must fail")
	}
	reply := h.core.API(context.Background(), `json {"command":"callcenter_config","data":{"arguments":"member list"}}`, nil)
	eq(t, "member list wire", reply, `{"command":"callcenter_config","data":{"arguments":"member list"},"status":"success","response":[]}`)
	reply = h.core.API(context.Background(), `json {"command":"callcenter_config","data":{"arguments":"queue list tiers"}}`, nil)
	eq(t, "missing queue_name wire", reply, `{"command":"callcenter_config","data":{"arguments":"queue list tiers"},"status":"error","response":{"error":"Missing data attribute: queue_name"}}`)
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

// TestAdminCommands covers the remaining callcenter_config replies.
func TestAdminCommands(t *testing.T) {
	h := newHarness(t, observedConfig(), nil, baseEpoch)
	eq(t, "queue load unknown", h.api("queue load nope"), "-ERR Invalid Queue not found!\n")
	h.mustOK("queue unload 3000@default")
	eq(t, "queue count after unload", h.api("queue count"), "0\n")
	h.mustOK("queue load 3000@default")
	h.mustOK("queue reload 3000@default")
	eq(t, "queue count", h.api("queue count"), "1\n")
	eq(t, "queue list bogus", h.api("queue list bogus"), "-ERR Invalid!\n")
	eq(t, "queue count bogus", h.api("queue count bogus x"), "-ERR Invalid!\n")
	h.mustOK("agent set status 1001 Available")
	eq(t, "count filtered", h.api("queue count agents 3000@default Available"), "1\n")
	eq(t, "count filtered state", h.api("queue count agents 3000@default Available Receiving"), "0\n")
	eq(t, "list agents filtered", strings.Count(h.api("queue list agents 3000@default 'Logged Out'"), "\n"), 3)
	h.mustOK("tier set level 3000@default 1002 4")
	h.mustOK("tier reload 3000@default 1002")
	eq(t, "tier reloaded to config", h.api("queue list tiers 3000@default"),
		"queue|agent|state|level|position\n3000@default|1001|Ready|1|1\n3000@default|1002|Ready|1|1\n+OK\n")
	eq(t, "tier reload nothing", h.api("tier reload nope"), "-ERR Unknown Error!\n")
	h.mustOK("tier del 3000@default 1002")
	eq(t, "tiers", h.api("queue count tiers 3000@default"), "1\n")
	h.mustOK("agent set status 1001 'Logged Out'")
	h.mustOK("agent set contact 1001 user/x")
	h.mustOK("agent reload 1001")
	eq(t, "contact re-applied", strings.Contains(h.api("agent list 1001"), "|[call_timeout=60]user/1001|"), true)
	h.mustOK("agent del 1001")
	eq(t, "deleted with its tiers", []string{h.api("agent list 1001"), h.api("queue count tiers 3000@default")}, []string{"+OK\n", "0\n"})
	eq(t, "set unknown key", h.api("agent set color 1002 red"), "-ERR Invalid Agent Update KEY!\n")
	eq(t, "set bad state", h.api("agent set state 1002 Sleeping"), "-ERR Invalid Agent State!\n")
	eq(t, "set bad type", h.api("agent set type 1002 phone"), "-ERR Invalid Agent Type!\n")
	eq(t, "set args", h.api("agent set status 1002"), "-ERR Invalid!\n")
	eq(t, "state_if_waiting needs Available", h.api("agent set state_if_waiting 1002 Receiving"), "-ERR Agent not found!\n")
	h.mustOK("agent set status 1002 Available")
	h.mustOK("agent set state_if_waiting 1002 Receiving")
	eq(t, "state", h.get("state", "1002"), "Receiving")
	eq(t, "last_offered_call set", h.agent("1002").LastOffered, baseEpoch)
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
