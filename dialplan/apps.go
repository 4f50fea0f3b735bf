package dialplan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"ccpbx/call"
	"ccpbx/guard"
)

// RegisterApps registers the built-in applications on the core.
func (d *Dialplan) RegisterApps() {
	apps := map[string]call.App{
		"answer":     appAnswer,
		"pre_answer": appPreAnswer,
		"ring_ready": appRingReady,
		"hangup":     appHangup,
		"playback":   appPlayback,
		"sleep":      appSleep,
		"set":        appSet,
		"export":     appExport,
		"unset":      appUnset,
		"log":        appLog,
		"echo":       appEcho,
		"bridge":     d.appBridge,
		"transfer":   d.appTransfer,
		"lua":        d.appLua,
		"park":       d.appPark,
		"intercept":  d.appIntercept,
	}
	for name, fn := range apps {
		d.core.RegisterApp(name, fn)
	}
	registerRecordApps(d.core) // record.go
}

func appAnswer(_ context.Context, ch *call.Channel, _ string) error { return ch.Answer() }

func appPreAnswer(_ context.Context, ch *call.Channel, _ string) error { return ch.PreAnswer() }

func appRingReady(_ context.Context, ch *call.Channel, _ string) error { return ch.RingReady() }

// appHangup hangs up with the named cause (NORMAL_CLEARING when empty or
// unknown, as FreeSWITCH does).
func appHangup(_ context.Context, ch *call.Channel, data string) error {
	cause, ok := call.ParseCause(data)
	if !ok && strings.TrimSpace(data) != "" {
		ch.Log().Warn("hangup: unknown cause, using NORMAL_CLEARING", "cause", data)
	}
	ch.Hangup(cause)
	return nil
}

// appPlayback plays one file. Like FreeSWITCH's file player it pre-answers
// an unanswered channel first so the caller hears the prompt as early
// media.
func appPlayback(ctx context.Context, ch *call.Channel, data string) error {
	return play(ctx, ch, strings.TrimSpace(data))
}

func play(ctx context.Context, ch *call.Channel, path string) error {
	if path == "" {
		return errors.New("playback: no file")
	}
	if !ch.Answered() {
		if err := ch.PreAnswer(); err != nil {
			return fmt.Errorf("playback %s: pre-answer: %w", path, err)
		}
	}
	m := ch.Media()
	if m == nil {
		return fmt.Errorf("playback %s: channel has no media", path)
	}
	if err := m.Play(ctx, path); err != nil {
		status := "FILE NOT FOUND"
		if ctx.Err() != nil {
			status = "PLAYBACK INTERRUPTED" // uuid_break, a transfer or a hangup
		}
		ch.SetVar("playback_last_status", status)
		ch.SetVar("current_application_response", status)
		return fmt.Errorf("playback %s: %w", path, err)
	}
	ch.SetVar("playback_last_status", "FILE PLAYED")
	ch.SetVar("current_application_response", "FILE PLAYED")
	return nil
}

// appSleep waits data milliseconds, or until the channel hangs up.
func appSleep(ctx context.Context, ch *call.Channel, data string) error {
	ms, err := strconv.Atoi(strings.TrimSpace(data))
	if err != nil || ms < 0 {
		return fmt.Errorf("sleep %q: want milliseconds", data)
	}
	return sleep(ctx, time.Duration(ms)*time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return nil // a hangup ends a sleep; the dialplan loop notices
	}
}

// appSet sets name=value; no value (or no '=') unsets, as FreeSWITCH does.
func appSet(_ context.Context, ch *call.Channel, data string) error {
	name, value, _ := strings.Cut(data, "=")
	name = strings.TrimSpace(name)
	if name == "" {
		return fmt.Errorf("set %q: no variable name", data)
	}
	ch.SetVar(name, value)
	return nil
}

// appExport sets name=value here and lists name in export_vars, so bridge
// copies it to the B legs. "nolocal:name=value" only exports.
func appExport(_ context.Context, ch *call.Channel, data string) error {
	name, value, _ := strings.Cut(data, "=")
	name = strings.TrimSpace(name)
	local := true
	if rest, ok := strings.CutPrefix(name, "nolocal:"); ok {
		name, local = rest, false
	}
	if name == "" {
		return fmt.Errorf("export %q: no variable name", data)
	}
	if local {
		ch.SetVar(name, value)
	} else {
		ch.SetVar(nolocalPrefix+name, value)
	}
	list := splitList(ch.Var("export_vars"))
	for _, n := range list {
		if n == name {
			return nil
		}
	}
	ch.SetVar("export_vars", strings.Join(append(list, name), ","))
	return nil
}

// nolocalPrefix keeps the value of an export that must not apply to the
// A leg itself.
const nolocalPrefix = "nolocal:"

// exportedVars collects the export_vars values bridge hands to B legs.
func exportedVars(ch *call.Channel) map[string]string {
	out := map[string]string{}
	for _, n := range splitList(ch.Var("export_vars")) {
		if v, ok := ch.LookupVar(nolocalPrefix + n); ok {
			out[n] = v
		} else if v, ok := ch.LookupVar(n); ok {
			out[n] = v
		}
	}
	return out
}

// splitList reads a comma list such as export_vars the way FreeSWITCH
// does (call.Separate at ','), leaving out empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range call.Separate(s, ',', 0) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func appUnset(_ context.Context, ch *call.Channel, data string) error {
	name := strings.TrimSpace(data)
	if name == "" {
		return errors.New("unset: no variable name")
	}
	ch.SetVar(name, "")
	return nil
}

// appLog logs "LEVEL message"; without a known level the whole text is
// logged at DEBUG, as FreeSWITCH does. The FreeSWITCH level the dialplan
// wrote is kept in the fs_level attribute.
func appLog(ctx context.Context, ch *call.Channel, data string) error {
	word, rest, _ := strings.Cut(data, " ")
	level, ok := parseLevel(word)
	msg, fsLevel := rest, strings.ToUpper(strings.TrimSpace(word))
	if !ok {
		level, msg, fsLevel = slog.LevelDebug, data, "DEBUG"
	}
	ch.Log().Log(ctx, level, strings.TrimRight(msg, "\r\n"), "source", "dialplan", "fs_level", fsLevel)
	return nil
}

// parseLevel maps FreeSWITCH log level names onto slog levels. The text a
// dialplan or script logs is its author's message, not the switch's
// state, so the mapping keeps slog's error stream for what says it is an
// error (ERR, CRIT) and puts ALERT, which dialplans use for banners seen
// on every console (the article's "log ALERT ==== [3000] … ====" on each
// queue call), at INFO with CONSOLE, NOTICE and INFO: visible at the
// default level, not an alarm on every call.
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRIT", "ERR", "ERROR":
		return slog.LevelError, true
	case "WARNING", "WARN":
		return slog.LevelWarn, true
	case "CONSOLE", "ALERT", "NOTICE", "INFO":
		return slog.LevelInfo, true
	case "DEBUG":
		return slog.LevelDebug, true
	}
	return slog.LevelDebug, false
}

// failureLevel is the level an application's failure is logged at: ERROR
// when the configuration is at fault and every call through it fails the
// same way (a script or sound file that does not exist, a path outside
// the allowed folders), WARN for what one call met (a bridge that failed,
// a caller who hung up).
func failureLevel(err error) slog.Level {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, guard.ErrOutside) {
		return slog.LevelError
	}
	return slog.LevelWarn
}

// Echoer is implemented by media that can loop a leg's audio back to it.
type Echoer interface {
	Echo() (stop func(), err error)
}

// appEcho answers and returns the caller's audio to them until hangup.
// When the channel's media cannot loop audio back (it does not implement
// Echoer) the caller hears silence until they hang up, and a warning says
// so.
func appEcho(ctx context.Context, ch *call.Channel, _ string) error {
	if err := ch.Answer(); err != nil {
		return err
	}
	if e, ok := ch.Media().(Echoer); ok {
		stop, err := e.Echo()
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		defer stop()
	} else {
		ch.Log().Warn("echo: media cannot loop audio back; holding the call in silence")
	}
	select {
	case <-ch.Done():
	case <-ctx.Done():
	}
	return nil
}

// appTransfer re-routes the channel: "dest [XML] [context]".
func (d *Dialplan) appTransfer(_ context.Context, ch *call.Channel, data string) error {
	f := strings.Fields(data)
	if len(f) == 0 {
		return errors.New("transfer: no destination")
	}
	if len(f) > 1 && !strings.EqualFold(f[1], "XML") {
		return fmt.Errorf("transfer %q: only the XML dialplan exists", data)
	}
	if d.runOf(ch) == nil {
		return errors.New("transfer: channel is not in the dialplan")
	}
	context := ""
	if len(f) > 2 {
		context = f[2]
	}
	// The hunt happens once this app returns: in the dialplan's loop, or
	// after park or an outbound socket session gives the channel back.
	ch.Transfer(f[0], context)
	ch.Log().Info("dialplan: transfer", "destination_number", f[0], "context", ch.Var("context"))
	return nil
}
