package dialplan

import (
	"context"
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"${a}", "$${b}", "${api(x ${a})}", "${${a}}", "${a:1:2}", "${a:-9:-9}", "${", "${}}", "}{", "$$${",
		"${callcenter_config(agent set status ${caller_id_number} 'Available')}", "${a(b(c)}", "${x:99999999999999999999}",
	} {
		f.Add(s)
	}
	core := call.NewCore("fuzz", quietLog())
	core.RegisterAPI("api", "", func(_ context.Context, args string, _ *call.Channel) string { return "[" + args + "]" })
	setGlobals(core, map[string]string{"b": "B"})
	ch := core.NewChannel(call.ChannelSpec{Vars: map[string]string{"a": "hello", "caller_id_number": "1001"}, Log: quietLog()})
	f.Fuzz(func(t *testing.T, s string) {
		out := Expand(context.Background(), core, ch, s)
		if !strings.Contains(s, "${") && out != s {
			t.Fatalf("text without ${ changed: %q → %q", s, out)
		}
	})
}

func FuzzParseAction(f *testing.F) {
	for _, s := range []string{"answer", "set a=b", " log\tINFO x", "", "  ", "a{b c", "lua callcenter.lua"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		app, _, err := ParseAction(s)
		if err == nil && (app == "" || strings.ContainsAny(app, " \t{}$")) {
			t.Fatalf("ParseAction(%q) accepted app %q", s, app)
		}
	})
}

// FuzzDialplan compiles an arbitrary one-condition extension and hunts it:
// New either refuses it with an error or it routes without panicking.
func FuzzDialplan(f *testing.F) {
	f.Add("destination_number", `^(\d+)$`, "", "bridge user/$1", "hangup", "1001")
	f.Add("${x}", `^${y}$`, "never", "set a=$9", "log $0", "")
	f.Add("", "(", "sometimes", "", "x{", "300")
	f.Add("caller_id_number", `(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)`, "on-true", "rec $1$2$10", "rec", "abcdefghijk")
	core := call.NewCore("fuzz", quietLog())
	f.Fuzz(func(t *testing.T, field, expr, brk, act, anti, dest string) {
		cfg := config.Dialplan{Contexts: []config.Context{{Name: "c", Extensions: []config.Extension{{
			Name: "e", Conditions: []config.Condition{{Field: field, Expression: expr, Break: brk,
				Actions: []string{act}, AntiActions: []string{anti}}},
		}}}}}
		d, err := New(cfg, core, Options{Log: quietLog()})
		if err != nil {
			return
		}
		ch := core.NewChannel(call.ChannelSpec{Vars: map[string]string{"destination_number": dest, "x": dest, "y": expr},
			Log: quietLog()})
		defer ch.Hangup(call.NormalClearing)
		for _, s := range d.hunt("c", ch) {
			if s.app == "" {
				t.Fatalf("empty application collected")
			}
		}
	})
}
