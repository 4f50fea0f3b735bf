package call

// The two state machines FreeSWITCH reports on every channel event:
// Channel-State (the core's running state, switch_channel_state_t) and
// Channel-Call-State (what the call looks like to the user,
// switch_channel_callstate_t). Each change fires CHANNEL_STATE or
// CHANNEL_CALLSTATE, which ESL tools use to follow a leg's life.

// RunState is a channel's CS_* state.
type RunState int

// FreeSWITCH's CS_* states, numbered as switch_types.h numbers them
// (Channel-State-Number).
const (
	CSNew RunState = iota
	CSInit
	CSRouting
	CSSoftExecute
	CSExecute
	CSExchangeMedia
	CSPark
	CSConsumeMedia
	CSHibernate
	CSReset
	CSHangup
	CSReporting
	CSDestroy
)

var runStateNames = [...]string{"CS_NEW", "CS_INIT", "CS_ROUTING", "CS_SOFT_EXECUTE", "CS_EXECUTE",
	"CS_EXCHANGE_MEDIA", "CS_PARK", "CS_CONSUME_MEDIA", "CS_HIBERNATE", "CS_RESET", "CS_HANGUP",
	"CS_REPORTING", "CS_DESTROY"}

func (s RunState) String() string {
	if s < 0 || int(s) >= len(runStateNames) {
		return "CS_NONE"
	}
	return runStateNames[s]
}

// CallState is a channel's Channel-Call-State (CCS_*).
type CallState int

// FreeSWITCH's call states, numbered as switch_types.h numbers them
// (Channel-Call-State-Number).
const (
	CCSDown CallState = iota
	CCSDialing
	CCSRinging
	CCSEarly
	CCSActive
	CCSHeld
	CCSRingWait
	CCSHangup
	CCSUnheld
)

var callStateNames = [...]string{"DOWN", "DIALING", "RINGING", "EARLY", "ACTIVE", "HELD", "RING_WAIT", "HANGUP", "UNHELD"}

func (s CallState) String() string {
	if s < 0 || int(s) >= len(callStateNames) {
		return "DOWN"
	}
	return callStateNames[s]
}

// RunState returns the channel's CS_* state.
func (c *Channel) RunState() RunState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runState
}

// CallState returns the channel's call state.
func (c *Channel) CallState() CallState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.callState
}

// SetRunState moves the channel to s and fires CHANNEL_STATE, as the
// FreeSWITCH state machine does on each transition. A hung-up channel
// never enters a live state again, and a repeated state fires nothing.
func (c *Channel) SetRunState(s RunState) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.mu.Lock()
	if c.runState == s || (c.runState >= CSHangup && s < c.runState) || (c.hungup && s < CSHangup) {
		c.mu.Unlock()
		return
	}
	c.runState = s
	c.mu.Unlock()
	if want, full := c.core.Wanted("CHANNEL_STATE", ""); want {
		c.core.Fire(c.newEvent("CHANNEL_STATE", full, 0)) // evMu is held
	}
}

// setCallState changes the call state and fires CHANNEL_CALLSTATE with the
// state it left (Original-Channel-Call-State), as
// switch_channel_perform_set_callstate does.
func (c *Channel) setCallState(s CallState) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.mu.Lock()
	old := c.callState
	if old == s || old == CCSHangup {
		c.mu.Unlock()
		return
	}
	c.callState = s
	c.mu.Unlock()
	want, full := c.core.Wanted("CHANNEL_CALLSTATE", "")
	if !want {
		return
	}
	e := NewEvent("CHANNEL_CALLSTATE", "", 2)
	e.Channel = c
	e.Add("Original-Channel-Call-State", old.String())
	e.Add("Channel-Call-State-Number", itoa(int(s)))
	if full {
		c.AppendHeaders(e)
	}
	c.core.Fire(e) // evMu is held
}

// MarkHeld records that the peer put the call on hold (held) or took it
// off hold, firing CHANNEL_HOLD / CHANNEL_UNHOLD and the call state HELD /
// ACTIVE (FreeSWITCH reports UNHELD only in the event names). Signalling
// calls it when a re-offer changes the media direction; it is a no-op when
// nothing changed and safe on a nil channel.
func (c *Channel) MarkHeld(held bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.hungup || c.answeredAt.IsZero() || c.held == held {
		c.mu.Unlock()
		return
	}
	c.held = held
	now := c.core.Now()
	if held {
		c.lastHold = now
	} else if !c.lastHold.IsZero() {
		c.holdAccum += now.Sub(c.lastHold)
	}
	c.mu.Unlock()
	if held {
		c.FireNamed("CHANNEL_HOLD")
		c.setCallState(CCSHeld)
		return
	}
	c.FireNamed("CHANNEL_UNHOLD")
	c.setCallState(CCSActive)
}

// Held reports whether the call is on hold.
func (c *Channel) Held() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// Holder is implemented by signalling that can put its peer on hold
// itself (a re-INVITE with sendonly); SetHold uses it when present.
type Holder interface {
	Hold(held bool) error
}
