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

// TestFireChannelHeadersOnlyForFullSubscribers: with only bare subscribers
// (metrics, wallboard) a member's callcenter::info event carries no channel
// headers; with a full one (an ESL client) it carries them exactly as
// before, and the bare subscriber gets that same event.
func TestFireChannelHeadersOnlyForFullSubscribers(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.stopEv() // the harness's subscriber wants full events
	ch := h.core.NewChannel(call.ChannelSpec{Name: "sofia/blueivr/5550001@127.0.0.1", Direction: call.Inbound,
		Vars: map[string]string{"caller_id_number": "5550001", "cc_side": "member"}})
	defer ch.Hangup(call.NormalClearing)
	bare, stopBare := h.core.Bus.SubscribeBare(10, call.Kinds("CUSTOM "+Subclass), nil)
	defer stopBare()
	fire := func() {
		h.acd.do(func() { h.acd.fire(ch, "CC-Queue", q1, "CC-Action", "member-queue-start", "CC-Member-UUID", "m1") })
	}
	cc := []call.Header{{Name: "CC-Queue", Value: q1}, {Name: "CC-Action", Value: "member-queue-start"},
		{Name: "CC-Member-UUID", Value: "m1"}}

	fire()
	e := <-bare
	for _, hd := range e.Headers {
		if strings.HasPrefix(hd.Name, "Channel-") || strings.HasPrefix(hd.Name, "Caller-") ||
			strings.HasPrefix(hd.Name, "variable_") || hd.Name == "Unique-ID" {
			t.Fatalf("bare-only event carries channel header %s", hd.Name)
		}
	}
	eq(t, "bare event ends with the CC headers", e.Headers[len(e.Headers)-len(cc):], cc)
	eq(t, "envelope", e.Get("Event-Subclass"), Subclass)

	full, stopFull := h.core.Bus.SubscribeKinds(10, call.Kinds("CUSTOM "+Subclass), nil)
	defer stopFull()
	fire()
	ef, eb := <-full, <-bare
	if ef != eb {
		t.Fatal("bare and full subscribers got different events: the event was built twice")
	}
	ref := &call.Event{}
	ch.AppendHeaders(ref)
	want := append(ref.Headers, cc...)
	if len(ef.Headers) < len(want) {
		t.Fatalf("full event has %d headers, want at least %d", len(ef.Headers), len(want))
	}
	eq(t, "full event: channel headers then CC headers", ef.Headers[len(ef.Headers)-len(want):], want)
	if ef.Get("Channel-Name") != "sofia/blueivr/5550001@127.0.0.1" || ef.Get("variable_cc_side") != "member" {
		t.Fatalf("full event lacks channel data: %v", ef.Headers)
	}
}
