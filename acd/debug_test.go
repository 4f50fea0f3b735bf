package acd

import (
	"strings"
	"testing"
)

// TestDebugViewSingleBox: `cluster acd` on a single box says so and lists
// the loop's agents and tiers; bad arguments get the usage, an unknown
// agent an error, nothing crashes.
func TestDebugViewSingleBox(t *testing.T) {
	h := newHarness(t, queueCfg("top-down", nil), nil, baseEpoch)
	h.agents("a1:1:1", "a2:1:2")
	out := h.acd.DebugView("")
	if !strings.HasPrefix(out, "single_box: not a cluster node") || !strings.HasSuffix(out, "+OK\n") {
		t.Fatalf("single box view:\n%s", out)
	}
	for _, want := range []string{"\na1|Available|Waiting|false|false|0|0|-|0|0|", "\n" + q1 + "|a2|Ready|1|2|true|0|false\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
	one := h.acd.DebugView("a2")
	if strings.Contains(one, "\na1|") || !strings.Contains(one, "\na2|") {
		t.Errorf("view of a2:\n%s", one)
	}
	eq(t, "unknown agent", h.acd.DebugView("nobody"), "-ERR Agent not found!\n")
	eq(t, "two args", h.acd.DebugView("a1 a2"), "-USAGE: cluster acd [agent]\n")
	for _, bad := range []string{"\x00", "|||", strings.Repeat("x", 10000), " \t "} {
		if out := h.acd.DebugView(bad); out == "" {
			t.Errorf("%q: empty answer", bad)
		}
	}
}

// TestDebugViewLostClaim: the agent held back by a claim lost to another
// node shows it (lost_until, last claim "lost", not eligible), which no
// listing shows.
func TestDebugViewLostClaim(t *testing.T) {
	fc := newFakeCluster("node-a")
	h := newHarness(t, queueCfg("top-down", nil), nil, baseEpoch, withCluster(fc))
	h.agents("a1:1:1", "a2:1:2")
	fc.holdElsewhere("a1", "node-b")
	h.call("5550001", q1, nil)
	eq(t, "dialed", dialed(h.nextDial()), "a2")
	out := h.acd.DebugView("a1")
	if !strings.HasPrefix(out, "node node-a: offering;") {
		t.Fatalf("cluster view:\n%s", out)
	}
	if !strings.Contains(out, "\na1|Available|Waiting|false|false|0|1|lost|"+itoa(baseEpoch+lostHold)+"|0|") ||
		!strings.Contains(out, "\n"+q1+"|a1|Ready|1|1|false|"+itoa(baseEpoch+lostHold)+"|false\n") {
		t.Errorf("a1 after a lost claim:\n%s", out)
	}
}
