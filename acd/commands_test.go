package acd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"ccpbx/store/storetest"
)

// callcenter_config and its JSON form: replies, listings and their errors
// (reference/mod_callcenter.md §12). A test named TestCnn checks item nn
// of §18; the golden tests compare the same commands with FreeSWITCH's
// captured output.

func TestC01AgentAdd(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.mustOK("agent add A Callback")
	eq(t, "status", h.get("status", "A"), "Logged Out")
	eq(t, "state", h.get("state", "A"), "Waiting")
	eq(t, "dup", h.api("agent add A Callback"), "-ERR Agent already exist!\n")
	eq(t, "bad type", h.api("agent add B phone"), "-ERR Agent type invalid!\n")
	eq(t, "missing args", h.api("agent add B"), "-ERR Invalid!\n")
	h.mustOK("agent add S uuid-standby")
	// Names that would corrupt the listings are refused (issue 11).
	for _, bad := range []string{"'a|b'", "'a,b'", "'a\r\nb'", "''", strings.Repeat("x", 256), "'a b'", "'\x00'"} {
		eq(t, "agent add "+bad, h.api("agent add "+bad+" Callback"), "-ERR Invalid Agent Name!\n")
	}
	h.mustOK("agent add " + strings.Repeat("x", 255) + " Callback")
	eq(t, "oversized command", h.api("agent add "+strings.Repeat("y", 5000)+" Callback"), "-ERR Invalid!\n")
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

// TestJSONLeavesOutNULLs: a freshly added agent has NULL uuid and contact;
// listings print them empty, JSON leaves them out, also after a restart.
func TestJSONLeavesOutNULLs(t *testing.T) { storetest.Each(t, testJSONLeavesOutNULLs) }

func testJSONLeavesOutNULLs(t *testing.T, b storetest.Backend) {
	st := b.Open(t)
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
