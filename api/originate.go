package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ccpbx/call"
)

const originateUsage = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"

// originate is FreeSWITCH's originate command: place the call of the dial
// string and, once answered, either run one application on the new leg
// ("&playback(/x.wav)", hung up when it returns) or send the leg into the
// dialplan at <exten> in <context>. The reply is "+OK <uuid>" or
// "-ERR <CAUSE>".
//
// The line is split with call.SeparateNested: FreeSWITCH's rules, except
// that {…}, […] and (…) stay whole, so variables and application arguments
// may hold blanks. An empty quoted argument keeps its place, as in
// FreeSWITCH, so a line can skip the dialplan and still name a context.
func (c *commands) originate(ctx context.Context, args string, _ *call.Channel) string {
	argv := call.SeparateNested(args, ' ', 0)
	if len(argv) < 2 {
		return originateUsage
	}
	dial, target := argv[0], argv[1]
	opt := func(i int) string {
		if i < len(argv) && argv[i] != "undef" {
			return argv[i]
		}
		return ""
	}
	dialContext := opt(3)
	if dialContext == "" {
		dialContext = "default"
	}
	vars := map[string]string{}
	if v := opt(4); v != "" {
		vars["origination_caller_id_name"] = v
	}
	if v := opt(5); v != "" {
		vars["origination_caller_id_number"] = v
	}
	if v := opt(6); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return originateUsage
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, time.Duration(n)*time.Second, call.NoAnswer)
		defer cancel()
	}

	var app, appArgs string
	if strings.HasPrefix(target, "&") {
		app, appArgs = target[1:], ""
		if i := strings.IndexByte(app, '('); i >= 0 {
			if !strings.HasSuffix(app, ")") {
				return originateUsage
			}
			app, appArgs = app[:i], app[i+1:len(app)-1]
		}
		if app == "" {
			return originateUsage
		}
		if _, ok := c.core.LookupApp(app); !ok {
			return "-ERR INVALID_APPLICATION\n"
		}
	}

	ch, err := c.core.Originate(ctx, dial, call.OriginateOptions{Vars: vars})
	if err != nil {
		cause, ok := call.AsCause(err)
		if !ok {
			cause = call.NormalTemporaryFailure
		}
		return "-ERR " + string(cause) + "\n"
	}
	if app != "" {
		go func() {
			if err := c.core.Execute(ch.Context(), ch, app, appArgs); err != nil {
				ch.Log().Warn("originate application failed", "app", app, "err", err)
			}
			ch.Hangup(call.NormalClearing)
		}()
	} else {
		ch.SetVar("destination_number", target)
		ch.SetVar("context", dialContext)
		if err := c.core.Route(ch); err != nil {
			ch.Hangup(call.SystemShutdown)
			return "-ERR " + string(call.SystemShutdown) + "\n"
		}
	}
	return fmt.Sprintf("+OK %s\n", ch.UUID())
}
