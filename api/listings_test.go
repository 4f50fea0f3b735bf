package api

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/registrar"
)

type fakeRegs []registrar.Binding

func (f fakeRegs) Bindings() []registrar.Binding { return f }

type fakeProfiles []ProfileInfo

func (f fakeProfiles) ProfileInfos() []ProfileInfo { return f }

// articleBindings are the two registrations of the reference article.
func articleBindings() fakeRegs {
	return fakeRegs{
		{
			User: "1002", Realm: "192.168.150.128", CallID: "072332d7b2aa4045babae4f1bd7c9e3a",
			Contact: "sip:42791635@192.168.150.1:58579", Expires: time.Unix(1686662097, 0),
			Source: netip.MustParseAddrPort("192.168.150.1:58579"), Transport: "udp", Profile: "internal",
		},
		{
			User: "1001", Realm: "192.168.150.128", CallID: "08103ee3f88145d8a3ca984addb18662",
			Contact: "<sip:1001@192.168.150.1:55232;ob>", Expires: time.Unix(1686662067, 0),
			Source: netip.MustParseAddrPort("192.168.150.1:55232"), Transport: "UDP", Profile: "internal",
		},
	}
}

var testNow = time.Date(2026, 11, 26, 3, 45, 13, 0, time.UTC)

// newTestCore is a switch with the built-in commands and a fixed clock.
func newTestCore(t *testing.T, d Deps) *call.Core {
	t.Helper()
	core := call.NewCore("blueivr", slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := testNow
	core.Clock = func() time.Time { return now }
	if d.Started.IsZero() {
		d.Started = now.Add(-(26*time.Hour + 3*time.Minute + time.Second + 5*time.Millisecond + 7*time.Microsecond))
	}
	if d.Version == "" {
		d.Version = "1.0.0-test"
	}
	RegisterCommands(core, d)
	return core
}

func api(core *call.Core, line string) string { return core.API(context.Background(), line, nil) }

func TestShowRegistrationsArticleLayout(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr", Registrations: articleBindings()})
	golden(t, "show_registrations.golden", api(core, "show registrations"))
	if got := api(core, "show registrations count"); got != "\n2 total.\n" {
		t.Errorf("count: %q", got)
	}
}

func TestShowRegistrationsEmpty(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr", Registrations: fakeRegs{}})
	golden(t, "show_registrations_empty.golden", api(core, "show registrations"))
	// Without a registrar at all the listing is empty too, not a crash.
	core = newTestCore(t, Deps{Hostname: "blueivr"})
	if got := api(core, "show registrations"); got != "\n0 total.\n" {
		t.Errorf("nil registrar: %q", got)
	}
}

func TestSofiaStatusLayouts(t *testing.T) {
	// README §1 of freeswitch-observed: two profiles, no alias; given in
	// reverse order to show the listing sorts them.
	core := newTestCore(t, Deps{Profiles: fakeProfiles{
		{Name: "internal", Type: "profile", Data: "sip:mod_sofia@127.0.0.1:15060", State: "RUNNING (0)"},
		{Name: "blueivr", Type: "profile", Data: "sip:mod_sofia@127.0.0.1:15080", State: "RUNNING (0)"},
	}})
	golden(t, "sofia_status.golden", api(core, "sofia status"))

	// The article's listing with a gateway and an alias.
	core = newTestCore(t, Deps{Profiles: fakeProfiles{
		{Name: "internal", Type: "profile", Data: "sip:mod_sofia@192.168.150.128:5060", State: "RUNNING (0)"},
		{Name: "192.168.150.128", Type: "alias", Data: "internal", State: "ALIASED"},
		{Name: "blueivr::GW", Type: "gateway", Data: "sip:voipgw@192.168.150.1", State: "NOREG"},
		{Name: "blueivr", Type: "profile", Data: "sip:mod_sofia@192.168.150.128:5080", State: "RUNNING (0)"},
	}})
	golden(t, "sofia_status_article.golden", api(core, "sofia status"))

	core = newTestCore(t, Deps{Profiles: fakeProfiles{
		{Name: "internal", Type: "profile", Data: "sip:mod_sofia@127.0.0.1:5060", State: "RUNNING (0)"},
	}})
	golden(t, "sofia_status_one.golden", api(core, "sofia status"))
	if got := api(core, "sofia bogus"); got != sofiaUsage {
		t.Errorf("sofia bogus: %q", got)
	}
}

func TestStatusVersionUptime(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	golden(t, "status.golden", api(core, "status"))
	if got := api(core, "show status"); got != api(core, "status") {
		t.Errorf("show status differs from status: %q", got)
	}
	checks := map[string]string{
		"version":           "ccpbx Version 1.0.0-test\n",
		"version short":     "1.0.0-test\n",
		"uptime":            "93781\n",
		"uptime m":          "1563\n",
		"uptime ms":         "93781005\n",
		"uptime fortnight":  "-USAGE: [us|ms|s|m|h|d|microseconds|milliseconds|seconds|minutes|hours|days]\n",
		"hostname":          "blueivr",
		"switchname":        "blueivr",
		"echo hello  world": "hello  world",
		"bogus":             "-ERR bogus Command not found!\n",
		"show":              showUsage,
		"show bogus":        showUsage,
		"uuid_kill":         uuidKillUsage,
		"uuid_kill 123":     "-ERR No such channel!\n",
		"help echo":         "echo,Echo,,ccpbx\n",
		"help nosuch":       "-ERR No such command\n",
	}
	for in, want := range checks {
		if got := api(core, in); got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
	if !strings.HasPrefix(api(core, "show api"), "name,description,syntax,ikey\necho,Echo,,ccpbx\n") {
		t.Errorf("show api: %q", api(core, "show api"))
	}
	if !strings.HasSuffix(api(core, "show api"), "\n22 total.\n") {
		t.Errorf("show api total: %q", api(core, "show api"))
	}
}

func TestUptimeText(t *testing.T) {
	cases := map[time.Duration]string{
		0: "UP 0 years, 0 days, 0 hours, 0 minutes, 0 seconds, 0 milliseconds, 0 microseconds",
		366*24*time.Hour + time.Hour + time.Minute + time.Second + time.Millisecond + time.Microsecond: "UP 1 year, 1 day, 1 hour, 1 minute, 1 second, 1 millisecond, 1 microsecond",
		-time.Second: "UP 0 years, 0 days, 0 hours, 0 minutes, 0 seconds, 0 milliseconds, 0 microseconds",
	}
	for d, want := range cases {
		if got := uptimeText(d); got != want {
			t.Errorf("%v: %q", d, got)
		}
	}
}

// fakeMedia is just enough Media for the listings (the codec).
type fakeMedia struct{ call.Media }

func (fakeMedia) Codec() string { return "PCMU" }

func TestShowChannelsAndCalls(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	golden(t, "show_channels_empty.golden", api(core, "show channels"))
	golden(t, "show_calls_empty.golden", api(core, "show calls"))

	// Each leg is created a second after the previous one, so "oldest
	// first" is well defined.
	step := testNow
	core.Clock = func() time.Time { return step }
	a := core.NewChannel(call.ChannelSpec{
		UUID: "0ddb404c-8227-4d5e-93e1-238df1d4da9c", Name: "sofia/blueivr/5550001@127.0.0.1:25091",
		Direction: call.Inbound, Media: fakeMedia{},
		Vars: map[string]string{"caller_id_name": "Caller 5550001", "caller_id_number": "5550001",
			"destination_number": "3000", "context": "blueivr", "network_addr": "127.0.0.1"},
	})
	a.MarkAnswered()
	step = step.Add(time.Second)
	b := core.NewChannel(call.ChannelSpec{
		UUID: "c94ee0f3-a2c1-4d05-af5d-ba411bef8152", Name: "sofia/internal/1001@127.0.0.1:25061",
		Direction: call.Outbound, Media: fakeMedia{},
		Vars: map[string]string{"caller_id_name": "3000", "caller_id_number": "5550001",
			"destination_number": "1001", "context": "default"},
	})
	b.MarkAnswered()
	// What call.Bridge records on both legs while they are bridged.
	a.SetVar("bridge_uuid", b.UUID())
	b.SetVar("bridge_uuid", a.UUID())
	step = step.Add(time.Second)
	lone := core.NewChannel(call.ChannelSpec{
		UUID: "252290b0-5463-485a-8094-490634eba3af", Name: "sofia/blueivr/5550007@127.0.0.1:25097",
		Direction: call.Inbound,
		Vars:      map[string]string{"caller_id_number": "5550007", "destination_number": "3000", "context": "blueivr"},
	})

	golden(t, "show_channels.golden", api(core, "show channels"))
	golden(t, "show_calls.golden", api(core, "show calls"))
	if got := api(core, "show channels count"); got != "\n3 total.\n" {
		t.Errorf("channels count: %q", got)
	}
	if got := api(core, "show calls count"); got != "\n2 total.\n" {
		t.Errorf("calls count: %q", got)
	}
	if got := api(core, "status"); !strings.Contains(got, "3 session(s) since startup\n3 session(s) - peak 3\n") {
		t.Errorf("status sessions: %q", got)
	}

	// After the bridge ends call.Bridge clears only the A leg's
	// bridge_uuid; the B leg must then be listed as a call of its own.
	a.SetVar("bridge_uuid", "")
	golden(t, "show_calls_unbridged.golden", api(core, "show calls"))
	a.SetVar("bridge_uuid", b.UUID())

	if got := api(core, "uuid_kill "+lone.UUID()+" user_busy"); got != "+OK\n" {
		t.Fatalf("uuid_kill: %q", got)
	}
	<-lone.Done()
	if lone.Cause() != call.UserBusy {
		t.Errorf("uuid_kill cause: %s", lone.Cause())
	}
	if got := api(core, "uuid_kill "+lone.UUID()); got != "-ERR No such channel!\n" {
		t.Errorf("second uuid_kill: %q", got)
	}
	if got := api(core, "show channels count"); got != "\n2 total.\n" {
		t.Errorf("channels count after kill: %q", got)
	}
	if got := api(core, "status"); !strings.Contains(got, "3 session(s) since startup\n2 session(s) - peak 3\n") {
		t.Errorf("status after kill: %q", got)
	}
}

func TestContactURI(t *testing.T) {
	cases := map[string]string{
		"sip:1001@192.168.150.1:55232;ob":             "sip:1001@192.168.150.1:55232;ob",
		"<sip:1001@h:5060;ob>":                        "sip:1001@h:5060;ob",
		`"Bob" <sip:1001@h;transport=tcp>;expires=60`: "sip:1001@h;transport=tcp",
		"<sip:broken":                                 "sip:broken",
		"  sip:x@y  ":                                 "sip:x@y",
	}
	for in, want := range cases {
		if got := contactURI(in); got != want {
			t.Errorf("contactURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSofiaContact(t *testing.T) {
	regs := articleBindings()
	regs = append(regs, registrar.Binding{User: "1001", Realm: "192.168.150.128", Contact: "sip:1001@10.0.0.9:5062;transport=tcp",
		Expires: time.Unix(1686662099, 0), Transport: "tcp", Profile: "internal"})
	core := newTestCore(t, Deps{Hostname: "blueivr", Registrations: regs})
	cases := map[string]string{
		"sofia_contact 1002@192.168.150.128":          "sofia/internal/sip:42791635@192.168.150.1:58579",
		"sofia_contact 1001@192.168.150.128":          "sofia/internal/sip:1001@192.168.150.1:55232;ob,sofia/internal/sip:1001@10.0.0.9:5062;transport=tcp",
		"sofia_contact internal/1002@192.168.150.128": "sofia/internal/sip:42791635@192.168.150.1:58579",
		"sofia_contact */1002":                        "sofia/internal/sip:42791635@192.168.150.1:58579",
		"sofia_contact 1002@internal":                 "sofia/internal/sip:42791635@192.168.150.1:58579",
		"sofia_contact blueivr/1002@192.168.150.128":  "error/user_not_registered",
		"sofia_contact 1002@example.com":              "error/user_not_registered",
		"sofia_contact 1003@192.168.150.128":          "error/user_not_registered",
		"sofia_contact":                               "-ERR no reply\n",
	}
	for in, want := range cases {
		got := api(core, in)
		if got == "" {
			got = "-ERR no reply\n" // what the event socket turns an empty reply into
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", in, got, want)
		}
	}
}

func (fakeMedia) OnDigit(func(rune)) func() { return func() {} }

// TestCallCountMatchesRows: `show calls count` counts without building the
// rows, and counts what they are: bridged pairs, one-sided, stale and
// self-referring bridge_uuid variables, lone legs.
func TestCallCountMatchesRows(t *testing.T) {
	core := call.NewCore("test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	RegisterCommands(core, Deps{})
	var chs []*call.Channel
	for range 9 {
		chs = append(chs, core.NewChannel(call.ChannelSpec{Name: "sofia/internal/x", Direction: call.Inbound}))
	}
	link := func(a, b int) { chs[a].SetVar("bridge_uuid", chs[b].UUID()) }
	link(0, 1)
	link(1, 0) // a pair, older first
	link(3, 2)
	link(2, 3) // a pair, set the other way round
	link(4, 5) // one-sided
	link(6, 6) // self
	chs[7].SetVar("bridge_uuid", "gone")
	for n := 0; n <= len(chs); n++ {
		if got, want := callCount(chs[:n]), len(callRows(chs[:n], "h")); got != want {
			t.Errorf("%d channels: callCount %d, rows %d", n, got, want)
		}
	}
	if got := api(core, "show calls count"); got != "\n7 total.\n" {
		t.Errorf("show calls count: %q", got)
	}
	if got := api(core, "show channels count"); got != "\n9 total.\n" {
		t.Errorf("show channels count: %q", got)
	}
}
