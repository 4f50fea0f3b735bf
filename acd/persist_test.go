package acd

import (
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/store"
)

// What survives a restart (§3).

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
