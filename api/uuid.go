package api

import (
	"context"
	"strings"

	"ccpbx/call"
)

// The uuid_* commands of FreeSWITCH's mod_commands that act on one live
// channel, with its usage lines and reply strings (including its
// inconsistent capitalisation: "No Such Channel!" for transfer and break,
// "No such channel!" for the variable commands). uuid_kill lives in
// commands.go; uuid_record belongs to the recording module.

const (
	transferUsage  = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
	bridgeUsage    = "-USAGE: <uuid> <other_uuid>\n"
	breakUsage     = "-USAGE: <uuid> [all]\n"
	setvarUsage    = "-USAGE: <uuid> <var> [value]\n"
	getvarUsage    = "-USAGE: <uuid> <var>\n"
	broadcastUsage = "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
	holdUsage      = "-USAGE: [off|toggle] <uuid> [<display>]\n"
	// holdFailed is mod_commands' answer to a hold that did not happen (its
	// usage answer is followed by it too). FreeSWITCH answers +OK for a
	// uuid it cannot find; ccpbx says it failed.
	holdFailed     = "-ERR Operation failed\n"
	noSuchChannel  = "-ERR No Such Channel!\n"
	noSuchChannel2 = "-ERR No such channel!\n"
)

func registerUUIDCommands(core *call.Core) {
	u := uuidCommands{core}
	core.RegisterAPI("uuid_transfer", "Transfer a session", u.transfer)
	core.RegisterAPI("uuid_bridge", "Bridge two calls", u.bridge)
	core.RegisterAPI("uuid_break", "Break out of media sent to channel", u.breakCmd)
	core.RegisterAPI("uuid_setvar", "Set a variable", u.setvar)
	core.RegisterAPI("uuid_getvar", "Get a variable from a channel", u.getvar)
	core.RegisterAPI("uuid_answer", "answer", u.answer)
	core.RegisterAPI("uuid_broadcast", "Execute dialplan application", u.broadcast)
	core.RegisterAPI("uuid_hold", "Place call on hold", u.hold)
	core.RegisterAPI("uuid_exists", "Check if a uuid exists", u.exists)
}

type uuidCommands struct{ core *call.Core }

func (u uuidCommands) transfer(_ context.Context, args string, _ *call.Channel) string {
	argv := call.Separate(args, ' ', 5)
	if len(argv) < 2 || len(argv) > 5 {
		return transferUsage
	}
	ch, ok := u.core.Channel(argv[0])
	if !ok {
		return noSuchChannel
	}
	dest, rest := argv[1], argv[2:]
	leg := ""
	if strings.HasPrefix(dest, "-") {
		leg = strings.ToLower(dest[1:])
		if len(rest) == 0 {
			return transferUsage
		}
		dest, rest = rest[0], rest[1:]
	}
	dialplan, ctxName := "", ""
	if len(rest) > 0 {
		dialplan = rest[0]
	}
	if len(rest) > 1 {
		ctxName = rest[1]
	}
	if dialplan != "" && !strings.EqualFold(dialplan, "XML") {
		return "-ERR\n"
	}
	other := ch.Bridged()
	switch leg {
	case "bleg":
		if other != nil {
			ch = other
		}
	case "both":
		if other != nil {
			other.Transfer(dest, ctxName)
		}
	}
	ch.Transfer(dest, ctxName)
	return "+OK\n"
}

func (u uuidCommands) bridge(_ context.Context, args string, _ *call.Channel) string {
	argv := call.Separate(args, ' ', 4)
	if len(argv) < 2 {
		return bridgeUsage
	}
	a, okA := u.core.Channel(argv[0])
	for _, other := range argv[1:min(len(argv), 3)] {
		b, okB := u.core.Channel(other)
		if !okA || !okB || a == b {
			continue
		}
		// The A leg leaves what it runs (park, a queue, a prompt) and
		// bridges in its own goroutine; b stays where it is (parked) and
		// is relayed to a.
		if err := a.Enqueue(call.Command{Kind: "execute", App: "intercept", Arg: b.UUID()}); err != nil {
			return "-ERR Invalid uuid\n"
		}
		if a.CurrentApp() != "park" {
			a.Interrupt(false)
		}
		return "+OK " + other + "\n"
	}
	return "-ERR Invalid uuid\n"
}

func (u uuidCommands) breakCmd(_ context.Context, args string, _ *call.Channel) string {
	id, flag, _ := strings.Cut(strings.TrimSpace(args), " ")
	if id == "" {
		return breakUsage
	}
	ch, ok := u.core.Channel(id)
	if !ok {
		return noSuchChannel
	}
	if strings.Contains(flag, "all") {
		// "all" also drops what was queued behind the current prompt.
		for {
			select {
			case <-ch.Commands():
				continue
			default:
			}
			break
		}
	}
	ch.Interrupt(true)
	if strings.Contains(flag, "both") {
		if o := ch.Bridged(); o != nil {
			o.Interrupt(true)
		}
	}
	// FreeSWITCH writes nothing on success; the socket then answers
	// "-ERR no reply".
	return ""
}

func (u uuidCommands) setvar(_ context.Context, args string, _ *call.Channel) string {
	argv := call.Separate(args, ' ', 3)
	if len(argv) < 2 || argv[0] == "" || argv[1] == "" {
		return setvarUsage
	}
	ch, ok := u.core.Channel(argv[0])
	if !ok {
		return noSuchChannel2
	}
	value := ""
	if len(argv) > 2 {
		value = argv[2]
	}
	ch.SetVar(argv[1], value)
	return "+OK\n"
}

func (u uuidCommands) getvar(_ context.Context, args string, _ *call.Channel) string {
	argv := call.Separate(args, ' ', 3)
	if len(argv) < 2 || argv[0] == "" || argv[1] == "" {
		return getvarUsage
	}
	ch, ok := u.core.Channel(argv[0])
	if !ok {
		return noSuchChannel2
	}
	if v, ok := ch.LookupVar(argv[1]); ok {
		return v
	}
	return "_undef_"
}

func (u uuidCommands) answer(_ context.Context, args string, _ *call.Channel) string {
	ch, ok := u.core.Channel(strings.TrimSpace(args))
	if !ok {
		return "-ERROR\n"
	}
	if err := ch.Answer(); err != nil {
		return "-ERR " + err.Error() + "\n"
	}
	return "+OK\n"
}

func (u uuidCommands) broadcast(_ context.Context, args string, _ *call.Channel) string {
	argv := call.Separate(args, ' ', 4)
	if len(argv) < 2 {
		return broadcastUsage
	}
	ch, ok := u.core.Channel(argv[0])
	if !ok {
		return "-ERR Invalid uuid\n"
	}
	legs := []*call.Channel{ch}
	if len(argv) > 2 {
		which := strings.ToLower(argv[2])
		other := ch.Bridged()
		switch {
		case strings.Contains(which, "both"):
			if other != nil {
				legs = append(legs, other)
			}
		case strings.Contains(which, "bleg"):
			if other != nil {
				legs = []*call.Channel{other}
			}
		}
	}
	app, arg := "playback", argv[1]
	// "app::arg" runs an application instead of playing a file.
	if a, d, ok := strings.Cut(argv[1], "::"); ok {
		app, arg = a, d
	}
	for _, leg := range legs {
		if err := leg.Enqueue(call.Command{Kind: "execute", App: app, Arg: arg}); err != nil {
			return "-ERR " + err.Error() + "\n"
		}
	}
	return "+OK Message Sent\n"
}

func (u uuidCommands) hold(_ context.Context, args string, _ *call.Channel) string {
	argv := call.Separate(args, ' ', 3)
	if len(argv) < 1 || argv[0] == "" {
		return holdUsage + holdFailed
	}
	mode, id := "on", argv[0]
	if w := strings.ToLower(argv[0]); w == "off" || w == "toggle" {
		if len(argv) < 2 {
			return holdUsage + holdFailed
		}
		mode, id = w, argv[1]
	}
	ch, ok := u.core.Channel(id)
	if !ok || !ch.Answered() {
		return holdFailed
	}
	held := mode == "on" || (mode == "toggle" && !ch.Held())
	if held == ch.Held() {
		return holdFailed
	}
	if err := ch.SetHold(held); err != nil {
		return holdFailed
	}
	return "+OK Success\n"
}

func (u uuidCommands) exists(_ context.Context, args string, _ *call.Channel) string {
	if _, ok := u.core.Channel(strings.TrimSpace(args)); ok {
		return "true"
	}
	return "false"
}
