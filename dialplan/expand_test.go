package dialplan

import (
	"context"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

func TestExpand(t *testing.T) {
	h := newHarness(t, config.Dialplan{}, Options{Globals: map[string]string{"domain": "pbx.local", "sounds_dir": "/snd", "shadow": "global"}})
	var got []string
	h.core.RegisterAPI("echoargs", "test", func(_ context.Context, args string, ch *call.Channel) string {
		got = append(got, args)
		if ch == nil {
			return "no channel"
		}
		return "<" + args + ">"
	})
	h.core.RegisterAPI("upper", "test", func(_ context.Context, args string, _ *call.Channel) string {
		return "U" + args
	})
	ch, _ := h.channel(map[string]string{"caller_id_number": "1001", "shadow": "local", "name": "caller_id_number",
		"digits": "0123456789"})
	defer ch.Hangup(call.NormalClearing)
	cases := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"${caller_id_number}", "1001"},
		{"a${caller_id_number}b${caller_id_number}", "a1001b1001"},
		{"${unset}|", "|"},
		{"${domain}", "pbx.local"},
		{"${shadow} $${shadow}", "local global"},
		{"$${sounds_dir}/ivr/x.wav", "/snd/ivr/x.wav"},
		{"$${nothing}x", "x"},
		{"${${name}}", "1001"},
		{"${echoargs(a b)}", "<a b>"},
		{"${echoargs(agent set status ${caller_id_number} 'Available')}", "<agent set status 1001 'Available'>"},
		{"${echoargs(${upper(x${caller_id_number})})}", "<Ux1001>"},
		{"${nosuchapi(x)}", "-ERR nosuchapi Command not found!\n"},
		{"${digits:2:3}", "234"},
		{"${digits:-3}", "789"},
		{"${digits:7}", "789"},
		{"${digits:1:-7}", "12"},
		{"${digits:20}", ""},
		{"cost $5 and $1", "cost $5 and $1"},
		{"unclosed ${caller_id_number", "unclosed ${caller_id_number"},
		{"${}", ""},
		{"$", "$"},
		{"{}", "{}"},
	}
	for _, c := range cases {
		if out := Expand(context.Background(), h.core, ch, c.in); out != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.in, out, c.want)
		}
	}
	if got[0] != "a b" {
		t.Errorf("API got args %q", got[0])
	}
	// Without a channel, variables are empty but globals and APIs work.
	if out := Expand(context.Background(), h.core, nil, "${caller_id_number}|${domain}|${echoargs(q)}"); out != "|pbx.local|no channel" {
		t.Errorf("no channel: %q", out)
	}
	if out := Expand(context.Background(), nil, nil, "${x}${y(z)}"); out != "" {
		t.Errorf("no core: %q", out)
	}
}

func TestExpandDepthIsBounded(t *testing.T) {
	s := ""
	for range 100 {
		s = "${" + s + "}"
	}
	// Must terminate and not blow the stack; the exact text is not important.
	_ = Expand(context.Background(), nil, nil, s)
}
