package acd

import (
	"context"
	"strings"
	"testing"
)

// FuzzConfigCommand: any callcenter_config line gets a reply and leaves
// the ACD working (no panic, no lost loop).
func FuzzConfigCommand(f *testing.F) {
	for _, s := range []string{
		"agent add a Callback", "agent set status a available", "agent get uuid a", "tier add q1@default a 1 x",
		"tier set state q1@default a 'No Answer'", "queue list members", "queue count agents q1@default Available Waiting",
		"agent set ready_time a 99999999999999999999", "tier reload all", "queue reload q1@default", "agent del a",
		"^^|agent|list", "json", "queue list bogus",
	} {
		f.Add(s)
	}
	h := newHarness(f, queueCfg("", nil), nil, baseEpoch)
	f.Fuzz(func(t *testing.T, s string) {
		h.acd.command(s)
		if !strings.HasSuffix(h.acd.command("queue count"), "\n") {
			t.Fatal("ACD stopped answering")
		}
	})
}

// FuzzJSONAPI: malformed JSON requests are refused without a panic.
func FuzzJSONAPI(f *testing.F) {
	for _, s := range []string{`{"command":"callcenter_config","data":{"arguments":"agent list"}}`, `{`, `{"command":1}`, `{"command":"callcenter_config","data":[]}`} {
		f.Add(s)
	}
	h := newHarness(f, queueCfg("", nil), nil, baseEpoch)
	f.Fuzz(func(t *testing.T, s string) {
		if h.acd.apiJSON(context.Background(), s, nil) == "" {
			t.Fatal("empty reply")
		}
	})
}

// FuzzExpandVars: contact and template expansion never panics and leaves
// text without ${ untouched.
func FuzzExpandVars(f *testing.F) {
	for _, s := range []string{"[call_timeout=60]user/1001", "${a}${b", "${}", "x${a}y", "$${a}", "${${a}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := expandVars(s, func(n string) string { return "<" + n + ">" })
		if !strings.Contains(s, "${") && out != s {
			t.Fatalf("%q changed to %q", s, out)
		}
	})
}
