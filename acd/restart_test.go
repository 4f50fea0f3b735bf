package acd

import (
	"testing"

	"ccpbx/config"
	"ccpbx/store/storetest"
)

// TestRestartKeepsStoredStatus (§18 item 27): a configured agent without
// `status` keeps the status it had when the process stopped; one whose
// entry writes `status` gets it re-applied.
func TestRestartKeepsStoredStatus(t *testing.T) {
	storetest.Each(t, testRestartKeepsStoredStatus)
}

func testRestartKeepsStoredStatus(t *testing.T, b storetest.Backend) {
	st := b.Open(t)
	cfg := observedConfig()
	cfg.Agents[0].Status = "" // 1001: no status in the file
	h := newHarness(t, cfg, st, baseEpoch)
	eq(t, "first start: a new agent is Logged Out", h.get("status", "1001"), "Logged Out")
	h.mustOK("agent set status 1001 Available")
	h.mustOK("agent set status 1002 Available")
	h.acd.Close()
	st.Close()

	st = b.Open(t)
	defer st.Close()
	h2 := newHarness(t, cfg, st, baseEpoch+60)
	eq(t, "1001 (status absent) kept", h2.get("status", "1001"), "Available")
	eq(t, "1002 (status written) re-applied", h2.get("status", "1002"), config.StatusLoggedOut.String())
	eq(t, "state reset", h2.get("state", "1001"), "Waiting")
}
