package dialplan

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"

	"ccpbx/call"
)

// run is one channel's routing state, shared with the apps that steer it
// (transfer).
type run struct {
	transfer atomic.Bool
}

// step is one collected application with its data after $N substitution;
// ${…} is expanded only when it runs, as FreeSWITCH does.
type step struct {
	app, data string
	ext       string
}

// Route is the call.Router: it hunts ch's context (the "context" variable,
// "default" when unset) for destination_number and runs the collected
// actions in order in the calling goroutine. Nothing matching gives
// call.NoRouteDestination. After transfer it hunts again.
//
// A queued caller's goroutine stays parked under Route and execute for the
// whole wait, so the work around each application is in helpers and these
// frames hold little (see acd's appCallcenter).
func (d *Dialplan) Route(ctx context.Context, ch *call.Channel) error {
	r := d.startRun(ch)
	defer d.endRun(ch)

	for transfers := 0; ; transfers++ {
		steps, err := d.huntFor(ch, transfers)
		if err != nil {
			return err
		}
		r.transfer.Store(false)
		if err := d.execute(ctx, ch, r, steps); err != nil {
			return err
		}
		if !r.transfer.Load() || !ch.Ready() {
			return nil
		}
	}
}

//go:noinline
func (d *Dialplan) startRun(ch *call.Channel) *run {
	r := &run{}
	d.mu.Lock()
	d.runs[ch.UUID()] = r
	d.mu.Unlock()
	return r
}

func (d *Dialplan) endRun(ch *call.Channel) {
	d.mu.Lock()
	delete(d.runs, ch.UUID())
	d.mu.Unlock()
}

// huntFor starts the transfers-th hunt of ch's context: what to run, or
// why the call ends.
//
//go:noinline
func (d *Dialplan) huntFor(ch *call.Channel, transfers int) ([]step, error) {
	if transfers > maxTransfers {
		ch.Log().Error("dialplan: too many transfers, giving up")
		return nil, call.ExchangeRoutingError
	}
	if transfers > 0 {
		// A transfer routes the channel again (CS_ROUTING), as
		// FreeSWITCH's state machine does.
		ch.SetRunState(call.CSRouting)
	}
	ctxName := ch.Var("context")
	if ctxName == "" {
		ctxName = "default"
		ch.SetVar("context", ctxName)
	}
	ch.Log().Info("dialplan: processing", "caller_id_name", ch.Var("caller_id_name"),
		"destination_number", ch.Var("destination_number"), "context", ctxName)
	steps := d.hunt(ctxName, ch)
	if len(steps) == 0 {
		ch.Log().Info("dialplan: no route", "destination_number", ch.Var("destination_number"), "context", ctxName)
		return nil, call.NoRouteDestination
	}
	return steps, nil
}

// execute runs steps until they end, the channel hangs up or a transfer
// asks for a new hunt.
func (d *Dialplan) execute(ctx context.Context, ch *call.Channel, r *run, steps []step) error {
	for i := range steps {
		data, ok := d.beforeStep(ctx, ch, r, &steps[i])
		if !ok {
			return nil
		}
		if err := d.core.Execute(ctx, ch, steps[i].app, data); err != nil {
			if err := d.stepFailed(ctx, ch, &steps[i], data, err); err != nil {
				return err
			}
		}
	}
	if ch.TakeTransfer() {
		r.transfer.Store(true)
	}
	return nil
}

// beforeStep runs what comes before step s and expands its data; !ok
// means the steps stop here.
//
//go:noinline
func (d *Dialplan) beforeStep(ctx context.Context, ch *call.Channel, r *run, s *step) (data string, ok bool) {
	// Commands queued from outside (sendmsg) run between
	// applications; a transfer asked for from outside (uuid_transfer)
	// re-hunts before the next one.
	d.core.RunCommands(ctx, ch)
	if ch.TakeTransfer() {
		r.transfer.Store(true)
	}
	if !ch.Ready() || r.transfer.Load() {
		return "", false
	}
	data = Expand(ctx, d.core, ch, s.data)
	ch.Log().Debug("dialplan: execute", "extension", s.ext, "app", s.app, "data", data)
	ch.SetVar("current_application", s.app)
	ch.SetVar("current_application_data", data)
	return data, true
}

// stepFailed logs an application's error; non-nil ends the dialplan.
//
//go:noinline
func (d *Dialplan) stepFailed(ctx context.Context, ch *call.Channel, s *step, data string, err error) error {
	if errors.Is(err, call.ErrNoApp) {
		// FreeSWITCH hangs up on an unknown application.
		ch.Log().Error("dialplan: invalid application", "app", s.app)
		return call.DestinationOutOfOrder
	}
	ch.Log().Log(ctx, failureLevel(err), "dialplan: application failed", "app", s.app, "data", data, "err", err)
	return nil
}

// hunt walks the context's extensions and collects their actions (and the
// anti-actions of failed conditions), FreeSWITCH's "hunting" phase. A
// context that does not exist falls back to "global", as FreeSWITCH does.
func (d *Dialplan) hunt(ctxName string, ch *call.Channel) []step {
	contexts := *d.contexts.Load()
	dc, ok := contexts[ctxName]
	if !ok {
		if dc, ok = contexts["global"]; !ok {
			ch.Log().Warn("dialplan: context not found", "context", ctxName)
			return nil
		}
	}
	exts := dc.exts
	// FreeSWITCH starts the hunt at an extension named like the number.
	dest := ch.Var("destination_number")
	for i, e := range exts {
		if e.name == dest {
			exts = exts[i:]
			break
		}
	}
	var steps []step
	for _, e := range exts {
		matched := d.parseExtension(e, ch, &steps)
		if matched && !e.cont {
			break
		}
	}
	return steps
}

// parseExtension evaluates e's conditions in order and appends what they
// collect. It reports whether the extension counts as matched, which stops
// the hunt unless the extension has continue.
func (d *Dialplan) parseExtension(e *extension, ch *call.Channel, steps *[]step) bool {
	proceed := false
	var caps []string // captures of the last condition that matched with groups
	for _, c := range e.conds {
		matched := true
		if c.field != "" {
			value := d.fieldValue(c, ch)
			re := c.re
			if re == nil {
				re = d.dynamicRegexp(c, ch)
			}
			m := []string(nil)
			if re != nil {
				m = re.FindStringSubmatch(value)
			}
			ch.Log().Debug("dialplan: regex", "extension", e.name, "field", c.field, "value", value,
				"expression", c.expr, "match", m != nil)
			if m == nil {
				matched = false
			} else if len(m) > 1 {
				caps = m
			}
		}
		if !matched {
			proceed = false
			for _, a := range c.anti {
				*steps = append(*steps, step{app: a.app, data: a.data, ext: e.name})
				proceed = true
			}
			if c.brk == breakOnFalse || c.brk == breakAlways {
				break
			}
			continue
		}
		proceed = true
		for _, a := range c.actions {
			data := a.data
			if caps != nil {
				data = substitute(data, caps)
			}
			*steps = append(*steps, step{app: a.app, data: data, ext: e.name})
		}
		if c.brk == breakOnTrue || c.brk == breakAlways {
			break
		}
	}
	return proceed
}

// fieldValue reads what a condition tests: a ${…} expression expanded now,
// or a caller-profile field.
func (d *Dialplan) fieldValue(c *condition, ch *call.Channel) string {
	if c.expandFld {
		return Expand(ch.Context(), d.core, ch, c.field)
	}
	switch c.field {
	case "dialplan":
		return "XML"
	case "uuid":
		return ch.UUID()
	case "chan_name":
		return ch.Name()
	case "ani":
		if v := ch.Var("ani"); v != "" {
			return v
		}
		return ch.Var("caller_id_number")
	}
	if callerFields[c.field] {
		return ch.Var(c.field)
	}
	return ""
}

// dynamicRegexp expands an expression that contains ${…} and compiles it,
// caching a bounded number of results. A bad result never matches.
func (d *Dialplan) dynamicRegexp(c *condition, ch *call.Channel) *regexp.Regexp {
	expr := Expand(ch.Context(), d.core, ch, c.expr)
	d.dynMu.Lock()
	defer d.dynMu.Unlock()
	if re, ok := d.dyn[expr]; ok {
		return re
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		ch.Log().Warn("dialplan: expanded expression does not compile", "expression", expr, "err", err)
		re = nil
	}
	if len(d.dyn) >= maxDynRegexps {
		clear(d.dyn)
	}
	d.dyn[expr] = re
	return re
}

// substitute replaces $0..$9 in data with the regex captures (a missing
// group gives ""), FreeSWITCH's switch_perform_substitution. "${" in data is
// left for expansion; "${" inside a capture is defused (unlike FreeSWITCH),
// so a caller cannot smuggle an ${api(…)} call into an action.
func substitute(data string, caps []string) string {
	if !strings.Contains(data, "$") {
		return data
	}
	var b strings.Builder
	for i := 0; i < len(data); i++ {
		if data[i] == '$' && i+1 < len(data) && data[i+1] >= '0' && data[i+1] <= '9' {
			n := int(data[i+1] - '0')
			if n < len(caps) {
				b.WriteString(defuse(caps[n]))
			}
			i++
			continue
		}
		b.WriteByte(data[i])
	}
	return b.String()
}

// defuse keeps captured text from turning into ${…} when the action runs:
// the captured value comes from the caller (a display name, a number) and
// must not call APIs or read variables. "${" loses its "$".
func defuse(s string) string {
	for strings.Contains(s, "${") {
		s = strings.ReplaceAll(s, "${", "{")
	}
	return s
}

func (d *Dialplan) runOf(ch *call.Channel) *run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs[ch.UUID()]
}
