package dialplan

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"

	"ccpbx/call"
)

// appBridge places the dial string's calls on behalf of ch and, when one
// answers, answers ch and bridges the two until one side hangs up.
//
// While the B legs ring, ch is rung too (180), or given their early media
// (183 and a relay) unless ignore_early_media is true. A failure sets
// originate_disposition and originate_failed_cause; unless
// continue_on_fail allows it (true, or a list of causes) the caller is
// hung up with the failure cause, as FreeSWITCH does. After the bridge,
// hangup_after_bridge=true hangs ch up; otherwise its dialplan goes on.
func (d *Dialplan) appBridge(ctx context.Context, ch *call.Channel, data string) error {
	dial := strings.TrimSpace(data)
	if dial == "" {
		return errors.New("bridge: no dial string")
	}
	vars := exportedVars(ch)
	// The B leg shows the A leg's identity: effective_caller_id_* when the
	// dialplan or directory set it, else what the caller sent.
	for _, k := range []string{"name", "number"} {
		v := ch.Var("effective_caller_id_" + k)
		if v == "" {
			v = ch.Var("caller_id_" + k)
		}
		if _, set := vars["origination_caller_id_"+k]; !set && v != "" {
			vars["origination_caller_id_"+k] = v
		}
	}
	// call_timeout on the A leg bounds the ring time, as in FreeSWITCH.
	for _, k := range []string{"call_timeout", "originate_timeout"} {
		if v := ch.Var(k); v != "" {
			if _, set := vars[k]; !set {
				vars[k] = v
			}
		}
	}
	ring := &ringback{a: ch, noEarly: call.SwitchTrue(ch.Var("ignore_early_media"))}
	b, err := d.core.Originate(ctx, dial, call.OriginateOptions{
		Caller: ch,
		Vars:   vars,
		OnRing: ring.onRing,
	})
	ring.stop()
	if err != nil {
		return bridgeFailed(ch, err)
	}
	ch.SetVar("originate_disposition", "SUCCESS")
	if !ch.Ready() {
		b.Hangup(call.OriginatorCancel)
		return nil
	}
	if err := ch.Answer(); err != nil {
		b.Hangup(call.NormalClearing)
		return err
	}
	if err := d.core.Bridge(ch, b); err != nil {
		b.Hangup(call.NormalTemporaryFailure)
		return bridgeFailed(ch, err)
	}
	call.HangupAfterBridge(ch, b)
	return nil
}

// bridgeFailed records the failure and hangs the caller up unless
// continue_on_fail says to go on with the dialplan.
func bridgeFailed(ch *call.Channel, err error) error {
	cause, ok := call.AsCause(err)
	if !ok {
		cause = call.NormalTemporaryFailure
	}
	ch.SetVar("originate_disposition", string(cause))
	ch.SetVar("originate_failed_cause", string(cause))
	ch.Log().Info("bridge failed", "cause", string(cause), "err", err)
	if ch.Ready() && !continueOnFail(ch.Var("continue_on_fail"), cause) {
		ch.Hangup(cause)
	}
	return nil
}

// continueOnFail reads FreeSWITCH's continue_on_fail: true, or a comma
// list of cause names or Q.850 numbers that let the dialplan go on.
func continueOnFail(v string, cause call.Cause) bool {
	if call.SwitchTrue(v) {
		return true
	}
	for _, p := range splitList(v) {
		if strings.EqualFold(p, string(cause)) {
			return true
		}
		if n, err := strconv.Atoi(p); err == nil && n == cause.Q850() && n != 0 {
			return true
		}
	}
	return false
}

// ringback passes B-leg progress to the A leg. OnRing may be called from
// several goroutines (forked legs) and even after Originate returned.
type ringback struct {
	a       *call.Channel
	noEarly bool

	mu       sync.Mutex
	done     bool
	early    bool   // A has been given 183
	unbridge func() // relay of one B leg's early media
}

func (r *ringback) onRing(leg *call.Channel, early bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	if !early || r.noEarly {
		if !r.early {
			if err := r.a.RingReady(); err != nil {
				r.a.Log().Debug("bridge: ring A leg", "err", err)
			}
		}
		return
	}
	if r.unbridge != nil {
		return // one leg's early media is enough
	}
	ma, mb := r.a.Media(), leg.Media()
	if ma == nil || mb == nil {
		if !r.early {
			_ = r.a.RingReady()
		}
		return
	}
	if err := r.a.PreAnswer(); err != nil {
		r.a.Log().Debug("bridge: pre-answer A leg", "err", err)
		return
	}
	r.early = true
	unbridge, err := ma.Bridge(mb)
	if err != nil {
		r.a.Log().Debug("bridge: early media relay", "err", err)
		return
	}
	r.unbridge = unbridge
}

// stop ends the early-media relay before the real bridge (or failure).
func (r *ringback) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	if r.unbridge != nil {
		r.unbridge()
		r.unbridge = nil
	}
}
