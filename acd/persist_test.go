package acd

import (
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
	"ccpbx/store/storetest"
)

// What survives a restart (§3).

func TestC27Restart(t *testing.T) { storetest.Each(t, testC27Restart) }

func testC27Restart(t *testing.T, b storetest.Backend) {
	st := b.Open(t)
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

// TestRowsKeepTypedColumns: the typed Status/State fields shadow the store
// rows' columns; a row read back and written again is unchanged, even with
// a spelling ccpbx would not write, and nothing is left in the shadowed
// columns to be read by mistake.
func TestRowsKeepTypedColumns(t *testing.T) {
	ar := store.AgentRow{Name: "a", Status: "available", State: "In a queue call", Type: "Callback"}
	ag := agentFromRow(ar)
	eq(t, "agent status", ag.Status, config.AgentStatus("available"))
	eq(t, "agent shadowed", ag.AgentRow.Status+ag.AgentRow.State, "")
	eq(t, "agent row", ag.row(), ar)
	tr := store.TierRow{Queue: q1, Agent: "a", State: "Standby", Level: 2, Position: 3}
	tier := tierFromRow(tr)
	eq(t, "tier state", tier.State, config.TierStandby)
	eq(t, "tier shadowed", tier.TierRow.State, "")
	eq(t, "tier row", tier.row(), tr)
	mr := store.MemberRow{Queue: q1, UUID: "m", State: "Abandoned"}
	m := memberFromRow(mr)
	eq(t, "member state", m.State, config.MemberAbandoned)
	eq(t, "member shadowed", m.MemberRow.State, "")
	eq(t, "member row", m.row(), mr)
}
