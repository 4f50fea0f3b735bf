package api

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"ccpbx/call"
	"ccpbx/guard"
)

// BanTable is one listener's table of banned addresses, named by the
// source `ban list` shows ("sip", "event_socket").
type BanTable struct {
	Source string
	Bans   *guard.Bans
}

// Bounds of the ban command's arguments.
const (
	maxBanArgs       = 128
	DefaultBanAdd    = time.Hour
	maxBanAddSeconds = 366 * 24 * 3600
)

const banUsage = "-USAGE: ban list | ban del <ip> | ban add <ip> [seconds]\n"

// RegisterBanCommands adds `ban` to core: one list of the addresses every
// table has banned for guessing passwords, with the source of each ban,
// and the operator's `ban del` (lifts the address in every table) and
// `ban add` (bans it in every table, default one hour). Persistence is the
// tables' business (guard.BanPolicy.Notify).
func RegisterBanCommands(core *call.Core, tables ...BanTable) {
	core.RegisterAPI("ban", "List, add and lift bans of addresses that guessed passwords", func(_ context.Context, args string, _ *call.Channel) string {
		return banCommand(tables, core.Now(), args)
	})
}

func banCommand(tables []BanTable, now time.Time, args string) string {
	if len(args) > maxBanArgs {
		return "-ERR arguments too long\n"
	}
	f := strings.Fields(args)
	if len(f) == 0 {
		return banUsage
	}
	switch strings.ToLower(f[0]) {
	case "list":
		if len(f) != 1 {
			return banUsage
		}
		return banList(tables, now)
	case "del":
		if len(f) != 2 {
			return banUsage
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			return "-ERR invalid address\n"
		}
		var lifted []string
		for _, t := range tables {
			if t.Bans.Lift(ip) {
				lifted = append(lifted, t.Source)
			}
		}
		if len(lifted) == 0 {
			return "-ERR " + ip.String() + " is not banned\n"
		}
		return "+OK " + ip.String() + " lifted (" + strings.Join(lifted, ", ") + ")\n"
	case "add":
		if len(f) < 2 || len(f) > 3 {
			return banUsage
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			return "-ERR invalid address\n"
		}
		d := DefaultBanAdd
		if len(f) == 3 {
			n, err := strconv.Atoi(f[2])
			if err != nil || n < 1 || n > maxBanAddSeconds {
				return fmt.Sprintf("-ERR seconds must be 1-%d\n", maxBanAddSeconds)
			}
			d = time.Duration(n) * time.Second
		}
		var banned []string
		for _, t := range tables {
			if t.Bans.Ban(ip, now.Add(d)) {
				banned = append(banned, t.Source)
			}
		}
		if len(banned) == 0 {
			return "-ERR " + ip.String() + " is on the allow-list\n"
		}
		return "+OK " + ip.String() + " banned (" + strings.Join(banned, ", ") + ")\n"
	}
	return banUsage
}

// banList is `ban list`: a header and one `|`-separated row per ban, in
// table order then address order, and +OK (only +OK when there is none,
// as mod_callcenter's listings).
func banList(tables []BanTable, now time.Time) string {
	var b strings.Builder
	for _, t := range tables {
		for _, ban := range t.Bans.List() {
			if b.Len() == 0 {
				b.WriteString("source|ip|until|seconds_left|failures\n")
			}
			left := int64(ban.Until.Sub(now).Round(time.Second) / time.Second)
			fmt.Fprintf(&b, "%s|%s|%s|%d|%d\n", t.Source, ban.Addr, ban.Until.Local().Format("2006-01-02 15:04:05"), left, ban.Failures)
		}
	}
	b.WriteString("+OK\n")
	return b.String()
}
