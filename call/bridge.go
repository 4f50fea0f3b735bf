package call

import (
	"fmt"
)

// Bridge connects a and b (audio relayed both ways) and blocks until one of
// them hangs up. When a (the caller side) goes first, b is hung up with
// a's cause; when b goes first, a stays up so its dialplan can go on (the
// caller decides, as with hangup_after_bridge).
func (c *Core) Bridge(a, b *Channel) error {
	ma, mb := a.Media(), b.Media()
	if ma == nil || mb == nil {
		return fmt.Errorf("bridge %s/%s: %w", a.UUID(), b.UUID(), IncompatibleDestination)
	}
	r, err := newRelay(ma, mb)
	if err != nil {
		return fmt.Errorf("bridge %s/%s: %w", a.UUID(), b.UUID(), err)
	}
	unbridge := r.stop
	a.setRelay(r)
	b.setRelay(r)
	defer a.clearRelay(r)
	defer b.clearRelay(r)
	a.SetVar("bridge_uuid", b.UUID())
	b.SetVar("bridge_uuid", a.UUID())
	a.SetVar("last_bridge_to", b.UUID())
	b.SetVar("last_bridge_to", a.UUID())
	a.setBridged(b, "originatee")
	b.setBridged(a, "originator")
	a.SetRunState(CSExchangeMedia)
	b.SetRunState(CSExchangeMedia)
	if want, full := a.core.Wanted("CHANNEL_BRIDGE", ""); want {
		a.Fire(bridgeEvent("CHANNEL_BRIDGE", a, b, full))
	}
	xfer := a.transferSignal()
wait:
	for {
		select {
		case <-a.Done():
			unbridge()
			b.Hangup(a.Cause())
			break wait
		case <-b.Done():
			unbridge()
			a.SetVar("last_bridge_hangup_cause", string(b.Cause()))
			break wait
		case <-xfer:
			if !a.TransferPending() {
				continue // a transfer taken before this bridge began
			}
			// uuid_transfer of the A leg: it leaves the bridge for its
			// new extension and the B leg, left alone, is hung up.
			unbridge()
			b.Hangup(NormalClearing)
			break wait
		}
	}
	a.SetVar("bridge_uuid", "")
	b.SetVar("bridge_uuid", "")
	if want, full := a.core.Wanted("CHANNEL_UNBRIDGE", ""); want {
		a.Fire(bridgeEvent("CHANNEL_UNBRIDGE", a, b, full))
	}
	if a.Ready() {
		a.SetRunState(CSExecute)
	}
	return nil
}

// bridgeEvent is CHANNEL_BRIDGE or _UNBRIDGE about the A leg: the two
// Bridge-*-Unique-ID headers first, then a's data with b as Other-Leg, as
// switch_ivr_bridge fires them. Without full (only bare subscribers want
// it) the event has the two Bridge-* headers and not a's data.
func bridgeEvent(name string, a, b *Channel, full bool) *Event {
	e := NewEvent(name, "", 2)
	e.Channel = a
	e.Add("Bridge-A-Unique-ID", a.UUID())
	e.Add("Bridge-B-Unique-ID", b.UUID())
	if full {
		a.AppendHeaders(e)
	}
	return e
}

// HangupAfterBridge applies the hangup_after_bridge variable once a bridge
// from a to b has ended: when it is true and a is still up (and not being
// transferred), a is hung up
// with b's cause (NORMAL_CLEARING when b has none). It reports whether a
// was hung up; otherwise a's dialplan goes on.
func HangupAfterBridge(a, b *Channel) bool {
	if !SwitchTrue(a.Var("hangup_after_bridge")) || !a.Ready() || a.TransferPending() {
		return false
	}
	cause := b.Cause()
	if cause == CauseNone {
		cause = NormalClearing
	}
	a.Hangup(cause)
	return true
}
