package api

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"ccpbx/call"
	"ccpbx/registrar"
)

// ProfileInfo is one row of `sofia status`: a SIP profile (Type "profile"),
// an alias ("alias") or a gateway ("gateway").
type ProfileInfo struct {
	Name  string // "internal"
	Type  string // "profile"
	Data  string // "sip:mod_sofia@127.0.0.1:5060"
	State string // "RUNNING (0)"
}

// Profiles is the read model of the SIP stack `sofia status` needs.
type Profiles interface{ ProfileInfos() []ProfileInfo }

// Registrations is the read model of the registrar `show registrations`
// needs; *registrar.Registrar implements it.
type Registrations interface{ Bindings() []registrar.Binding }

// Deps are what the commands read besides the switch core. Profiles and
// Registrations may be nil (the listing is then empty).
type Deps struct {
	Version       string
	Started       time.Time
	Hostname      string
	Profiles      Profiles
	Registrations Registrations
}

// commands holds the state the built-in commands share.
type commands struct {
	core *call.Core
	d    Deps

	mu       sync.Mutex
	sessions uint64 // channels created since start
	live     int
	peak     int
}

// RegisterCommands adds ccpbx's built-in API commands to core: status,
// version, uptime, hostname, switchname, echo, help, show (registrations,
// calls, channels, api, status), sofia status, sofia_contact, uuid_kill and originate.
func RegisterCommands(core *call.Core, d Deps) *Commands {
	if d.Started.IsZero() {
		d.Started = core.Now()
	}
	if d.Hostname == "" {
		d.Hostname = core.Hostname
	}
	c := &commands{core: core, d: d}
	// Session counters for `status` are kept by a bus filter: it sees every
	// event synchronously, so the counts are exact, and it returns false so
	// nothing is ever queued for it. It reads the event name only, so it
	// is bare: it does not make the channel data be built for these
	// events. The subscription lives as long as the core.
	core.Bus.SubscribeBare(0, call.Kinds("CHANNEL_CREATE", "CHANNEL_HANGUP"), c.count)

	core.RegisterAPI("status", "Show current status", c.status)
	core.RegisterAPI("version", "Version", c.version)
	core.RegisterAPI("uptime", "Show uptime", c.uptime)
	core.RegisterAPI("hostname", "Return the system hostname", c.hostname)
	core.RegisterAPI("switchname", "Return the switch name", c.hostname)
	core.RegisterAPI("echo", "Echo", func(_ context.Context, args string, _ *call.Channel) string { return args })
	core.RegisterAPI("help", "Show help for all the api commands", c.help)
	core.RegisterAPI("show", "Show various reports", c.show)
	core.RegisterAPI("sofia", "Sofia Controls", c.sofia)
	core.RegisterAPI("sofia_contact", "Sofia Contacts", c.sofiaContact)
	core.RegisterAPI("uuid_kill", "Kill channel", c.uuidKill)
	core.RegisterAPI("originate", "Originate a call", c.originate)
	registerUUIDCommands(core)
	registerRecord(core) // record.go: uuid_record
	return &Commands{c}
}

func (c *commands) count(e *call.Event) bool {
	switch e.Name {
	case "CHANNEL_CREATE":
		c.mu.Lock()
		c.sessions++
		c.live++
		if c.live > c.peak {
			c.peak = c.live
		}
		c.mu.Unlock()
	case "CHANNEL_HANGUP":
		c.mu.Lock()
		if c.live > 0 {
			c.live--
		}
		c.mu.Unlock()
	}
	return false
}

func plural(n int64, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// uptimeText is FreeSWITCH's "UP 0 years, 0 days, …" line.
func uptimeText(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	us := d.Microseconds()
	const (
		usMs  = 1000
		usSec = 1000 * usMs
		usMin = 60 * usSec
		usHr  = 60 * usMin
		usDay = 24 * usHr
		usYr  = 365 * usDay
	)
	parts := []struct {
		unit int64
		name string
	}{{usYr, "year"}, {usDay, "day"}, {usHr, "hour"}, {usMin, "minute"}, {usSec, "second"}, {usMs, "millisecond"}, {1, "microsecond"}}
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, plural(us/p.unit, p.name))
		us %= p.unit
	}
	return "UP " + strings.Join(out, ", ")
}

func (c *commands) status(_ context.Context, _ string, _ *call.Channel) string {
	ready := "ready"
	if c.core.Closing() {
		ready = "not ready"
	}
	c.mu.Lock()
	sessions, peak := c.sessions, c.peak
	c.mu.Unlock()
	var b strings.Builder
	b.WriteString(uptimeText(c.core.Now().Sub(c.d.Started)) + "\n")
	fmt.Fprintf(&b, "ccpbx (Version %s) is %s\n", c.d.Version, ready)
	fmt.Fprintf(&b, "%d session(s) since startup\n", sessions)
	fmt.Fprintf(&b, "%d session(s) - peak %d\n", len(c.core.Channels()), peak)
	return b.String()
}

func (c *commands) version(_ context.Context, args string, _ *call.Channel) string {
	if strings.Contains(strings.ToLower(args), "short") {
		return c.d.Version + "\n"
	}
	return "ccpbx Version " + c.d.Version + "\n"
}

func (c *commands) uptime(_ context.Context, args string, _ *call.Channel) string {
	scale := time.Second
	switch strings.ToLower(strings.TrimSpace(args)) {
	case "", "s", "seconds":
	case "us", "microseconds":
		scale = time.Microsecond
	case "ms", "milliseconds":
		scale = time.Millisecond
	case "m", "minutes":
		scale = time.Minute
	case "h", "hours":
		scale = time.Hour
	case "d", "days":
		scale = 24 * time.Hour
	default:
		return "-USAGE: [us|ms|s|m|h|d|microseconds|milliseconds|seconds|minutes|hours|days]\n"
	}
	up := c.core.Now().Sub(c.d.Started)
	if up < 0 {
		up = 0
	}
	return strconv.FormatInt(int64(up/scale), 10) + "\n"
}

func (c *commands) hostname(context.Context, string, *call.Channel) string { return c.d.Hostname }

// apiRows lists the registered commands as `show api` rows.
func (c *commands) apiRows(only string) [][]string {
	names := c.core.APINames()
	keys := make([]string, 0, len(names))
	for k := range names {
		if only == "" || strings.EqualFold(k, only) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	rows := make([][]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, []string{k, names[k], "", "ccpbx"})
	}
	return rows
}

// help lists commands without a header or total, as FreeSWITCH's help.
func (c *commands) help(_ context.Context, args string, _ *call.Channel) string {
	rows := c.apiRows(strings.TrimSpace(args))
	if len(rows) == 0 {
		return "-ERR No such command\n"
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, ",") + "\n")
	}
	return b.String()
}

const showUsage = "-USAGE: api|calls [count]|channels [count]|registrations [count]|status\n"

func (c *commands) show(ctx context.Context, args string, ch *call.Channel) string {
	f := strings.Fields(args)
	if len(f) == 0 {
		return showUsage
	}
	count := len(f) > 1 && strings.EqualFold(f[1], "count")
	var cols []string
	var rows [][]string
	switch strings.ToLower(f[0]) {
	case "registrations":
		cols, rows = registrationColumns, registrationRows(c.bindings(), c.d.Hostname)
	case "channels":
		chs := c.core.Channels()
		if count {
			return countListing(len(chs))
		}
		cols, rows = channelColumns, channelRows(chs, c.d.Hostname)
	case "calls":
		// A count (what monitoring polls) needs the pairing, not the rows
		// with every channel's variables copied.
		chs := c.core.Channels()
		if count {
			return countListing(callCount(chs))
		}
		cols, rows = callColumns, callRows(chs, c.d.Hostname)
	case "api":
		return csvListing([]string{"name", "description", "syntax", "ikey"}, c.apiRows(""))
	case "status":
		return c.status(ctx, "", ch)
	default:
		return showUsage
	}
	if count {
		return countListing(len(rows))
	}
	return csvListing(cols, rows)
}

func (c *commands) bindings() []registrar.Binding {
	if c.d.Registrations == nil {
		return nil
	}
	return c.d.Registrations.Bindings()
}

// csvListing is FreeSWITCH's `show` layout: the column names and rows
// joined with commas (the header only when there are rows), a blank line,
// then "N total.".
func csvListing(cols []string, rows [][]string) string {
	var b strings.Builder
	if len(rows) > 0 {
		b.WriteString(strings.Join(cols, ",") + "\n")
		for _, r := range rows {
			b.WriteString(strings.Join(r, ",") + "\n")
		}
	}
	fmt.Fprintf(&b, "\n%d total.\n", len(rows))
	return b.String()
}

// countListing is the `show … count` reply.
func countListing(n int) string { return fmt.Sprintf("\n%d total.\n", n) }

const uuidKillUsage = "-USAGE: <uuid> [cause]\n"

func (c *commands) uuidKill(_ context.Context, args string, _ *call.Channel) string {
	id, causeText, _ := strings.Cut(strings.TrimSpace(args), " ")
	if id == "" {
		return uuidKillUsage
	}
	cause := call.NormalClearing
	if t := strings.TrimSpace(causeText); t != "" {
		cause, _ = call.ParseCause(t)
	}
	ch, ok := c.core.Channel(id)
	if !ok {
		return "-ERR No such channel!\n"
	}
	ch.Hangup(cause)
	return "+OK\n"
}
