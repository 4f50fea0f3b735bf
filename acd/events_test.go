package acd

import (
	"strings"
	"testing"

	"ccpbx/call"
)

// callcenter::info events and queue presence (§13). A test named TestCnn
// checks item nn of §18.

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
