package dialplan

import (
	"context"
	"slices"
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

// huntSteps compiles exts into context "t" and returns what a channel with
// vars collects there, as "app data" strings.
func huntSteps(t *testing.T, exts []config.Extension, vars map[string]string) []string {
	t.Helper()
	h := newHarness(t, config.Dialplan{Contexts: []config.Context{{Name: "t", Extensions: exts}}}, Options{})
	ch, _ := h.channel(vars)
	defer ch.Hangup(call.NormalClearing)
	var out []string
	for _, s := range h.dp.hunt("t", ch) {
		out = append(out, strings.TrimSpace(s.app+" "+s.data))
	}
	return out
}

func TestConditionSemantics(t *testing.T) {
	dest := map[string]string{"destination_number": "1001", "caller_id_number": "5550001",
		"network_addr": "10.0.0.9", "username": "1001", "foo": "bar", "want": "1001"}
	tests := []struct {
		name string
		exts []config.Extension
		want []string
	}{
		{"match runs actions", []config.Extension{ext("e", cond("destination_number", `^1001$`, "rec a", "rec b"))},
			[]string{"rec a", "rec b"}},
		{"no match collects nothing", []config.Extension{ext("e", cond("destination_number", `^2000$`, "rec a"))},
			nil},
		{"regex finds, not anchored unless written so", []config.Extension{ext("e", cond("destination_number", `00`, "rec a"))},
			[]string{"rec a"}},
		{"captures", []config.Extension{ext("e", cond("destination_number", `^(10)(\d\d)$`, "rec $2-$1 $0"))},
			[]string{"rec 01-10 1001"}},
		{"no groups: $1 stays literal", []config.Extension{ext("e", cond("destination_number", `^1001$`, "rec $1"))},
			[]string{"rec $1"}},
		{"missing group is empty", []config.Extension{ext("e", cond("destination_number", `^(1)(x)?`, "rec [$2][$7]"))},
			[]string{"rec [][]"}},
		{"${ survives substitution", []config.Extension{ext("e", cond("destination_number", `^(\d+)$`, "rec $1 ${foo} $${g}"))},
			[]string{"rec 1001 ${foo} $${g}"}},
		{"all conditions must match", []config.Extension{ext("e",
			cond("caller_id_number", `^9`, "rec first"),
			cond("destination_number", `^1001$`, "rec second"))},
			nil},
		{"on-false stops at a failed later condition but keeps earlier actions, and the hunt goes on",
			[]config.Extension{
				ext("e", cond("destination_number", `^1001$`, "rec first"), cond("caller_id_number", `^9`, "rec second")),
				ext("f", cond("destination_number", `.`, "rec fallback")),
			},
			[]string{"rec first", "rec fallback"}},
		{"anti-actions run on failure and count as a match", []config.Extension{
			ext("e", config.Condition{Field: "destination_number", Expression: `^2000$`,
				Actions: []string{"rec yes"}, AntiActions: []string{"rec no $1"}}),
			ext("f", cond("destination_number", `.`, "rec next")),
		}, []string{"rec no $1"}},
		{"break on-true stops after a match", []config.Extension{ext("e",
			config.Condition{Field: "destination_number", Expression: `^1001$`, Break: "on-true", Actions: []string{"rec a"}},
			cond("destination_number", `.`, "rec b"))},
			[]string{"rec a"}},
		{"break on-true goes on after a failure", []config.Extension{ext("e",
			config.Condition{Field: "destination_number", Expression: `^2$`, Break: "on-true", Actions: []string{"rec a"}},
			cond("destination_number", `.`, "rec b"))},
			[]string{"rec b"}},
		{"break never goes on after a failure", []config.Extension{ext("e",
			config.Condition{Field: "caller_id_number", Expression: `^9`, Break: "never", Actions: []string{"rec a"}, AntiActions: []string{"rec anti"}},
			cond("destination_number", `^1001$`, "rec b"))},
			[]string{"rec anti", "rec b"}},
		{"break always stops after a match", []config.Extension{ext("e",
			config.Condition{Field: "destination_number", Expression: `1`, Break: "always", Actions: []string{"rec a"}},
			cond("destination_number", `.`, "rec b"))},
			[]string{"rec a"}},
		{"break always stops after a failure", []config.Extension{
			ext("e",
				config.Condition{Field: "destination_number", Expression: `^2$`, Break: "always", Actions: []string{"rec a"}},
				cond("destination_number", `.`, "rec b")),
			ext("f", cond("", "", "rec f")),
		}, []string{"rec f"}},
		{"first match ends the hunt", []config.Extension{
			ext("e", cond("destination_number", `^1001$`, "rec e")),
			ext("f", cond("destination_number", `^1001$`, "rec f")),
		}, []string{"rec e"}},
		{"continue goes on to the next extension", []config.Extension{
			{Name: "e", Continue: true, Conditions: []config.Condition{cond("destination_number", `^1001$`, "rec e")}},
			ext("f", cond("destination_number", `^1001$`, "rec f")),
			ext("g", cond("destination_number", `^1001$`, "rec g")),
		}, []string{"rec e", "rec f"}},
		{"condition without field always matches", []config.Extension{ext("e", cond("", "", "rec any"))},
			[]string{"rec any"}},
		{"${var} field", []config.Extension{ext("e", cond("${foo}", `^bar$`, "rec foo"))},
			[]string{"rec foo"}},
		{"expression with ${var} expands per call", []config.Extension{ext("e", cond("destination_number", `^${want}$`, "rec want"))},
			[]string{"rec want"}},
		{"unknown plain field reads empty", []config.Extension{ext("e", cond("foo", `^$`, "rec empty"))},
			[]string{"rec empty"}},
		{"caller fields", []config.Extension{ext("e",
			cond("caller_id_number", `^5550001$`), cond("ani", `^5550001$`), cond("network_addr", `^10\.0\.0\.9$`),
			cond("username", `^1001$`), cond("context", `^$`), cond("dialplan", `^XML$`), cond("chan_name", `^sofia/test/5550001$`),
			cond("", "", "rec fields"))},
			[]string{"rec fields"}},
		{"captures of the last matching condition reach a field-less one", []config.Extension{ext("e",
			cond("destination_number", `^(\d+)$`), cond("", "", "rec $1"))},
			[]string{"rec 1001"}},
		{"extension named like the number starts the hunt", []config.Extension{
			ext("first", cond("", "", "rec first")),
			ext("1001", cond("", "", "rec named")),
		}, []string{"rec named"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := huntSteps(t, tc.exts, dest)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	core := call.NewCore("test", quietLog())
	bad := []struct {
		cfg  config.Dialplan
		want string
	}{
		{config.Dialplan{Contexts: []config.Context{{Name: "c", Extensions: []config.Extension{
			ext("x", cond("destination_number", `^(1$`, "rec"))}}}}, `context "c" extension "x"`},
		{config.Dialplan{Contexts: []config.Context{{Name: "c", Extensions: []config.Extension{
			ext("lookahead", cond("destination_number", `^(?=1)`, "rec"))}}}}, `extension "lookahead"`},
		{config.Dialplan{Contexts: []config.Context{{Name: "c", Extensions: []config.Extension{
			ext("y", config.Condition{Field: "destination_number", Break: "sometimes"})}}}}, `break "sometimes"`},
		{config.Dialplan{Contexts: []config.Context{{Name: "c", Extensions: []config.Extension{
			ext("z", cond("destination_number", ``, "  "))}}}}, `no application`},
		{config.Dialplan{Contexts: []config.Context{{Name: "c", Extensions: []config.Extension{
			ext("w", cond("destination_number", ``, "se{t x"))}}}}, `bad application name`},
		{config.Dialplan{Contexts: []config.Context{{Name: "c"}, {Name: "c"}}}, `defined twice`},
		{config.Dialplan{Contexts: []config.Context{{}}}, `no name`},
	}
	for _, b := range bad {
		_, err := New(b.cfg, core, Options{Log: quietLog()})
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("New(%+v) = %v, want error containing %q", b.cfg, err, b.want)
		}
	}
}

func TestParseAction(t *testing.T) {
	for _, tc := range []struct{ in, app, data string }{
		{"answer", "answer", ""},
		{"set a=b c", "set", "a=b c"},
		{"  log\tINFO hi ", "log", "INFO hi "},
		{"hangup   NORMAL_CLEARING", "hangup", "NORMAL_CLEARING"},
	} {
		app, data, err := ParseAction(tc.in)
		if err != nil || app != tc.app || data != tc.data {
			t.Errorf("ParseAction(%q) = %q, %q, %v; want %q, %q", tc.in, app, data, err, tc.app, tc.data)
		}
	}
}

func singleContext(name string, exts ...config.Extension) config.Dialplan {
	return config.Dialplan{Contexts: []config.Context{{Name: name, Extensions: exts}}}
}

func TestRouteExpandsAtExecutionTime(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("destination_number", `^(\d+)$`,
		"set x=$1", "rec ${x}", "unset x", "rec [${x}]"))), Options{})
	ch := h.call(map[string]string{"destination_number": "42", "context": "default"})
	if got, want := h.rec.all(), []string{"rec 42", "rec []", "hangup NORMAL_CLEARING"}; !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	if ch.Cause() != call.NormalClearing {
		t.Errorf("cause %s", ch.Cause())
	}
}

func TestRouteNoMatchIsNoRoute(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("destination_number", `^1$`, "rec"))), Options{})
	ch := h.call(map[string]string{"destination_number": "2", "context": "default"})
	if ch.Cause() != call.NoRouteDestination {
		t.Errorf("cause %s, want NO_ROUTE_DESTINATION", ch.Cause())
	}
	// An unknown context without a "global" one is no route either.
	ch = h.call(map[string]string{"destination_number": "1", "context": "nowhere"})
	if ch.Cause() != call.NoRouteDestination {
		t.Errorf("unknown context: cause %s", ch.Cause())
	}
}

func TestUnknownContextFallsBackToGlobal(t *testing.T) {
	h := newHarness(t, singleContext("global", ext("e", cond("", "", "rec global"))), Options{})
	h.call(map[string]string{"destination_number": "1", "context": "nowhere"})
	if got := h.rec.all(); len(got) == 0 || got[0] != "rec global" {
		t.Errorf("saw %q", got)
	}
}

func TestUnknownApplicationHangsUp(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("", "", "rec before", "nosuchapp x", "rec after"))), Options{})
	ch := h.call(map[string]string{"destination_number": "1", "context": "default"})
	if ch.Cause() != call.DestinationOutOfOrder {
		t.Errorf("cause %s, want DESTINATION_OUT_OF_ORDER", ch.Cause())
	}
	if got := h.rec.all(); slices.Contains(got, "rec after") {
		t.Errorf("ran past the bad application: %q", got)
	}
}

func TestNothingRunsAfterHangup(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("", "", "hangup USER_BUSY", "rec after"))), Options{})
	ch := h.call(map[string]string{"destination_number": "1", "context": "default"})
	if ch.Cause() != call.UserBusy {
		t.Errorf("cause %s", ch.Cause())
	}
	if got, want := h.rec.all(), []string{"hangup USER_BUSY"}; !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
}

func TestTransfer(t *testing.T) {
	cfg := config.Dialplan{Contexts: []config.Context{
		{Name: "a", Extensions: []config.Extension{
			ext("to-b", cond("destination_number", `^1$`, "rec a1", "transfer 7${x} XML b", "rec never")),
			ext("local", cond("destination_number", `^2$`, "rec a2")),
		}},
		{Name: "b", Extensions: []config.Extension{
			ext("seven", cond("destination_number", `^(7\d*)$`, "rec b $1 ${transfer_source}", "transfer 2")),
		}},
	}}
	h := newHarness(t, cfg, Options{})
	ch := h.call(map[string]string{"destination_number": "1", "context": "a", "x": "5"})
	// "transfer 2" keeps context b, which has no extension 2.
	want := []string{"rec a1", "rec b 75 1", "hangup NO_ROUTE_DESTINATION"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	if ch.Cause() != call.NoRouteDestination {
		t.Errorf("cause %s", ch.Cause())
	}
}

func TestTransferLoopEnds(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("loop", cond("", "", "transfer 1"))), Options{})
	ch := h.call(map[string]string{"destination_number": "1", "context": "default"})
	if ch.Cause() != call.ExchangeRoutingError {
		t.Errorf("cause %s, want EXCHANGE_ROUTING_ERROR", ch.Cause())
	}
}

func TestTransferOutsideDialplanFails(t *testing.T) {
	h := newHarness(t, singleContext("default"), Options{})
	ch, _ := h.channel(map[string]string{"destination_number": "1"})
	defer ch.Hangup(call.NormalClearing)
	if err := h.core.Execute(context.Background(), ch, "transfer", "2 XML default"); err == nil {
		t.Error("transfer of a channel not in the dialplan succeeded")
	}
	if err := h.core.Execute(context.Background(), ch, "transfer", "2 inline"); err == nil {
		t.Error("transfer to a non-XML dialplan succeeded")
	}
}

func TestCapturesCannotInjectExpansions(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("caller_id_name", `^(.*)$`, "rec $1 ${caller_id_name}"))), Options{})
	called := false
	h.core.RegisterAPI("evil", "", func(context.Context, string, *call.Channel) string { called = true; return "pwned" })
	h.call(map[string]string{"context": "default", "caller_id_name": "x${evil(1)}$${y}"})
	if got := h.rec.all(); called || got[0] != "rec x{evil(1)}{y} x${evil(1)}$${y}" {
		t.Errorf("API called %v; saw %q", called, got)
	}
}
