package api

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"ccpbx/guard"
)

func TestBanCommand(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	sip := guard.NewBans(guard.BanPolicy{MaxFailures: 2, Window: time.Minute, BanTime: time.Minute, Now: clock})
	esl := guard.NewBans(guard.BanPolicy{MaxFailures: 2, Window: time.Minute, BanTime: time.Minute, Now: clock,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	tables := []BanTable{{"sip", sip}, {"event_socket", esl}}
	run := func(args string) string { return banCommand(tables, now, args) }

	if got := run("list"); got != "+OK\n" {
		t.Fatalf("empty list = %q", got)
	}
	ip := netip.MustParseAddr("192.0.2.9")
	sip.Failure(ip)
	sip.Failure(ip)
	if got := run("add 127.0.0.1 30"); got != "+OK 127.0.0.1 banned (sip)\n" {
		t.Fatalf("add = %q", got)
	}
	got := run("list")
	lines := strings.Split(got, "\n")
	if len(lines) != 5 || lines[0] != "source|ip|until|seconds_left|failures" ||
		!strings.HasPrefix(lines[1], "sip|127.0.0.1|") || !strings.HasSuffix(lines[1], "|30|0") ||
		!strings.HasPrefix(lines[2], "sip|192.0.2.9|") || !strings.HasSuffix(lines[2], "|60|2") || lines[3] != "+OK" {
		t.Fatalf("list = %q", got)
	}
	if got := run("add 192.0.2.9"); got != "+OK 192.0.2.9 banned (sip, event_socket)\n" {
		t.Fatalf("add to both = %q", got)
	}
	if got := run("del 192.0.2.9"); got != "+OK 192.0.2.9 lifted (sip, event_socket)\n" {
		t.Fatalf("del = %q", got)
	}
	for args, want := range map[string]string{
		"del 192.0.2.9":          "-ERR 192.0.2.9 is not banned\n",
		"del nonsense":           "-ERR invalid address\n",
		"add 10.0.0.1 0":         "-ERR seconds must be 1-31622400\n",
		"add 10.0.0.1 1e9":       "-ERR seconds must be 1-31622400\n",
		"":                       banUsage,
		"list extra":             banUsage,
		"frob":                   banUsage,
		strings.Repeat("a", 200): "-ERR arguments too long\n",
	} {
		if got := run(args); got != want {
			t.Errorf("ban %q = %q, want %q", args, got, want)
		}
	}
}
