package call

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Direction is the channel's direction as FreeSWITCH names it.
type Direction string

// Directions.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
)

// Signalling is the protocol side of a channel, implemented by sip. Each
// method sends what the dialog state calls for; none blocks on the peer
// longer than the protocol requires.
type Signalling interface {
	// Ring sends 180 Ringing, or 183 Session Progress with SDP when early.
	Ring(early bool) error
	// Answer sends the final 2xx with the local SDP (inbound legs).
	Answer() error
	// Hangup ends the dialog with the cause: a final error response for an
	// unanswered inbound leg, CANCEL for a ringing outbound leg, BYE
	// otherwise.
	Hangup(cause Cause) error
}

// Media is the channel's audio, implemented by sip on top of package media.
type Media interface {
	// Play plays the sound at path once; it returns when it has played,
	// or early with ctx's error.
	Play(ctx context.Context, path string) error
	// Music starts looping the sound at path (shared music on hold) until
	// stop is called or something else is played or bridged.
	Music(path string) (stop func(), err error)
	// OnDigit registers fn for each DTMF digit received; remove unregisters.
	OnDigit(fn func(digit rune)) (remove func())
	// SendDigits sends RFC 4733 digits to the peer.
	SendDigits(digits string) error
	// Bridge relays audio between this leg and other until unbridge.
	Bridge(other Media) (unbridge func(), err error)
	// Codec is the negotiated audio codec name ("PCMU", "PCMA").
	Codec() string
}

// Channel is one call leg inside the switch. Its variables and state are
// safe for concurrent use; its dialplan runs in one goroutine.
type Channel struct {
	core      *Core
	uuid      string
	name      string
	direction Direction
	created   time.Time
	log       *slog.Logger
	ctx       context.Context
	cancel    context.CancelFunc

	// evMu orders the channel's events: each one is published under it
	// (Channel.Fire), and a state change is made and reported under it in
	// one step, so subscribers see one channel's events in the order its
	// state changed, as FreeSWITCH fires them from the channel's thread,
	// whichever goroutine (dialplan, signalling, a bridge) causes them.
	// Taken before mu, never with another channel's evMu.
	evMu sync.Mutex

	mu sync.Mutex
	// vars are the channel's variables in the order their names were
	// first set (FreeSWITCH lists variable_* headers that way). A slice
	// searched in order: a channel has a few dozen, and one slice is
	// about half the memory of a map with a separate order list.
	vars       []Header
	sig        Signalling
	media      Media
	ringing    bool
	answeredAt time.Time
	cause      Cause
	done       chan struct{}
	hungup     bool
	// progressAt and progressMediaAt are when the leg first rang (180) or
	// got early media (183); hungupAt is when it ended. With created and
	// answeredAt they are the times a CDR is made of.
	progressAt      time.Time
	progressMediaAt time.Time
	hungupAt        time.Time
	// holds counts the goroutines (the dialplan's) that may still touch
	// the channel after its hangup; CHANNEL_HANGUP_COMPLETE waits for them,
	// so the record carries what they set on the way out (cc_cause, …).
	holds     int
	completed bool
	// hangupFired is set once Terminated has fired the hangup's events;
	// CHANNEL_HANGUP_COMPLETE waits for it as it waits for the holds, so a
	// dialplan that returns on Done (closed before those events) cannot
	// report the leg complete before its CHANNEL_HANGUP.
	hangupFired bool
	// hanging is the cause of a Hangup still sending its signalling; it
	// makes concurrent Hangups send once and keeps the first cause.
	hanging Cause
	// runState and callState are Channel-State and Channel-Call-State.
	runState  RunState
	callState CallState
	// held, lastHold and holdAccum follow CHANNEL_HOLD/UNHOLD.
	held      bool
	lastHold  time.Time
	holdAccum time.Duration
	// other is the leg this one is bridged to (Other-Leg-* headers) and
	// otherType says which side started the call ("originator" on the
	// B leg, "originatee" on the A leg); bridgedAt is the last bridge.
	other *Channel
	// relay is the media relay of the bridge this leg is in (hold.go);
	// holdMu serialises SetHold.
	relay     *relay
	holdMu    sync.Mutex
	otherType string
	bridgedAt time.Time
	// dtmfOff stops DTMF events when the media goes.
	dtmfOff func()
	// cmds is the command queue (sendmsg), app the running application,
	// transfer a requested re-hunt (control.go).
	cmds     chan Command
	app      *running
	transfer bool
	xfer     chan struct{}
}

// ChannelSpec describes a new channel to Core.NewChannel.
type ChannelSpec struct {
	// UUID is generated when empty.
	UUID string
	// Name is FreeSWITCH's channel name, e.g. "sofia/internal/1001@10.0.0.5".
	Name       string
	Direction  Direction
	Vars       map[string]string
	Signalling Signalling
	Media      Media
	Log        *slog.Logger
}

// UUID returns the channel's unique id.
func (c *Channel) UUID() string { return c.uuid }

// Name returns the channel name.
func (c *Channel) Name() string { return c.name }

// Direction returns inbound or outbound.
func (c *Channel) Direction() Direction { return c.direction }

// Created returns when the channel was created.
func (c *Channel) Created() time.Time { return c.created }

// Log returns the channel's logger (it carries the UUID).
func (c *Channel) Log() *slog.Logger { return c.log }

// Core returns the switch the channel belongs to.
func (c *Channel) Core() *Core { return c.core }

// Context is cancelled when the channel hangs up.
func (c *Channel) Context() context.Context { return c.ctx }

// Var returns a channel variable ("" when unset).
func (c *Channel) Var(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.varLocked(name)
}

// varLocked returns a variable ("" when unset); c.mu is held.
func (c *Channel) varLocked(name string) string {
	if i := c.varIndex(name); i >= 0 {
		return c.vars[i].Value
	}
	return ""
}

// varIndex is name's index in c.vars, -1 when unset; c.mu is held.
func (c *Channel) varIndex(name string) int {
	for i := range c.vars {
		if c.vars[i].Name == name {
			return i
		}
	}
	return -1
}

// LookupVar returns a channel variable and whether it is set.
func (c *Channel) LookupVar(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.varIndex(name); i >= 0 {
		return c.vars[i].Value, true
	}
	return "", false
}

// LookupVars sets out[i] to the variable names[i] ("" when unset), all
// read at once under the channel's lock; out must be as long as names.
func (c *Channel) LookupVars(names, out []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, name := range names {
		out[i] = c.varLocked(name)
	}
}

// SetVar sets a channel variable; an empty value unsets it, as in FreeSWITCH.
func (c *Channel) SetVar(name, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setVarLocked(name, value)
}

// setVarLocked sets or (with "") unsets a variable, keeping the order in
// which names were first set.
func (c *Channel) setVarLocked(name, value string) {
	i := c.varIndex(name)
	switch {
	case value == "":
		if i >= 0 {
			c.vars = slices.Delete(c.vars, i, i+1)
		}
	case i >= 0:
		c.vars[i].Value = value
	default:
		c.vars = append(c.vars, Header{name, value})
	}
}

// Vars returns a copy of all channel variables.
func (c *Channel) Vars() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]string, len(c.vars))
	for _, v := range c.vars {
		m[v.Name] = v.Value
	}
	return m
}

// Media returns the channel's media (nil before SDP was negotiated).
func (c *Channel) Media() Media {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.media
}

// SetMedia attaches the channel's media; signalling calls it once SDP is
// negotiated.
func (c *Channel) SetMedia(m Media) {
	c.mu.Lock()
	c.media = m
	off := c.dtmfOff
	c.dtmfOff = nil
	c.mu.Unlock()
	if off != nil {
		off()
	}
	c.watchDigits(m)
}

// SetSignalling attaches the protocol side when it was not known at creation.
func (c *Channel) SetSignalling(s Signalling) {
	c.mu.Lock()
	c.sig = s
	c.mu.Unlock()
}

// Answered reports whether the channel has been answered.
func (c *Channel) Answered() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.answeredAt.IsZero()
}

// HungupAt returns when the channel hung up (zero while it is up).
func (c *Channel) HungupAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hungupAt
}

// AnsweredAt returns the answer time (zero when unanswered).
func (c *Channel) AnsweredAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answeredAt
}

// Ready reports whether the channel is still up (FreeSWITCH's session:ready()).
func (c *Channel) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.hungup
}

// Done is closed when the channel has hung up.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Cause returns the hangup cause (CauseNone while the channel is up).
func (c *Channel) Cause() Cause {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// RingReady sends 180 Ringing on an inbound channel.
func (c *Channel) RingReady() error { return c.ring(false) }

// PreAnswer sends 183 with SDP (early media) on an inbound channel.
func (c *Channel) PreAnswer() error { return c.ring(true) }

func (c *Channel) ring(early bool) error {
	c.mu.Lock()
	sig, hung, answered := c.sig, c.hungup, !c.answeredAt.IsZero()
	c.mu.Unlock()
	if hung {
		return c.Cause()
	}
	if answered || sig == nil {
		return nil
	}
	if err := sig.Ring(early); err != nil {
		return err
	}
	c.MarkRinging(early)
	return nil
}

// MarkRinging records that the leg is ringing (signalling calls it for
// outbound legs on 180/183) and fires CHANNEL_PROGRESS.
func (c *Channel) MarkRinging(early bool) {
	c.mu.Lock()
	first := !c.ringing
	c.ringing = true
	if now := c.core.Now(); early && c.progressMediaAt.IsZero() {
		c.progressMediaAt = now
	} else if !early && c.progressAt.IsZero() {
		c.progressAt = now
	}
	c.mu.Unlock()
	if first {
		name := "CHANNEL_PROGRESS"
		if early {
			name = "CHANNEL_PROGRESS_MEDIA"
		}
		c.FireNamed(name)
		if early {
			c.setCallState(CCSEarly)
		} else {
			c.setCallState(CCSRinging)
		}
	}
}

// Answer answers an inbound channel (200 OK); it is a no-op when answered.
func (c *Channel) Answer() error {
	c.mu.Lock()
	sig, hung, answered := c.sig, c.hungup, !c.answeredAt.IsZero()
	c.mu.Unlock()
	if hung {
		return c.Cause()
	}
	if answered {
		return nil
	}
	if sig != nil {
		if err := sig.Answer(); err != nil {
			return err
		}
	}
	c.MarkAnswered()
	return nil
}

// MarkAnswered records the answer (signalling calls it for outbound legs on
// 200 OK) and fires CHANNEL_ANSWER once.
func (c *Channel) MarkAnswered() {
	c.mu.Lock()
	if !c.answeredAt.IsZero() || c.hungup {
		c.mu.Unlock()
		return
	}
	c.answeredAt = c.core.Now()
	c.setVarLocked("answer_epoch", strconv.FormatInt(c.answeredAt.Unix(), 10))
	c.setVarLocked("endpoint_disposition", "ANSWER")
	c.mu.Unlock()
	c.setCallState(CCSActive)
	c.FireNamed("CHANNEL_ANSWER")
}

// Hangup ends the channel with cause, sending what the signalling needs.
// It is safe to call more than once, also concurrently: the signalling is
// told once and only the first cause counts. A Hangup that finds another
// one under way returns at once without waiting for it.
func (c *Channel) Hangup(cause Cause) {
	if cause == CauseNone {
		cause = NormalClearing
	}
	c.mu.Lock()
	if c.hungup || c.hanging != CauseNone {
		c.mu.Unlock()
		return
	}
	c.hanging = cause
	sig := c.sig
	c.mu.Unlock()
	if sig != nil {
		if err := sig.Hangup(cause); err != nil {
			c.log.Debug("hangup signalling", "err", err)
		}
	}
	c.Terminated(cause)
}

// Terminated records that the channel is gone without sending anything
// (signalling calls it on BYE, CANCEL or a failure response).
func (c *Channel) Terminated(cause Cause) {
	if cause == CauseNone {
		cause = NormalClearing
	}
	c.mu.Lock()
	if c.hungup {
		c.mu.Unlock()
		return
	}
	if c.hanging != CauseNone {
		// A Hangup is under way: its cause came first.
		cause = c.hanging
	}
	c.hungup = true
	c.hungupAt = c.core.Now()
	c.cause = cause
	c.setVarLocked("hangup_cause", string(cause))
	c.setVarLocked("hangup_cause_q850", strconv.Itoa(q850Var(cause)))
	off := c.dtmfOff
	c.dtmfOff = nil
	c.mu.Unlock()
	if off != nil {
		off()
	}
	c.cancel()
	close(c.done)
	c.core.remove(c)
	// FreeSWITCH's order: the call state turns HANGUP, CHANNEL_HANGUP,
	// then the state machine enters CS_HANGUP.
	c.setCallState(CCSHangup)
	c.FireNamed("CHANNEL_HANGUP")
	c.SetRunState(CSHangup)
	c.mu.Lock()
	c.hangupFired = true
	c.mu.Unlock()
	c.log.Info("channel hung up", "cause", string(cause))
	c.complete()
}

// Hold keeps CHANNEL_HANGUP_COMPLETE back until release is called: the
// goroutine that holds the channel (its dialplan) may still set variables
// after the hangup, and the complete event is the leg's final record. A
// Hold taken after the event fired is a no-op. release may be called more
// than once.
func (c *Channel) Hold() (release func()) {
	c.mu.Lock()
	if c.completed {
		c.mu.Unlock()
		return func() {}
	}
	c.holds++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.holds--
			c.mu.Unlock()
			c.complete()
		})
	}
}

// complete fires CHANNEL_HANGUP_COMPLETE once the channel is down (its
// hangup events fired) and no Hold is left, after setting FreeSWITCH's
// timing variables (duration, billsec, *_stamp, *_epoch …) as
// switch_channel_set_timestamps does.
func (c *Channel) complete() {
	c.mu.Lock()
	if !c.hangupFired || c.holds > 0 || c.completed {
		c.mu.Unlock()
		return
	}
	c.completed = true
	c.setTimestampsLocked()
	if c.media != nil && c.varLocked("read_codec") == "" {
		codec := c.media.Codec()
		if codec != "" {
			c.setVarLocked("read_codec", codec)
			c.setVarLocked("write_codec", codec)
		}
	}
	c.mu.Unlock()
	// CS_REPORTING carries the record, CS_DESTROY ends the leg.
	c.SetRunState(CSReporting)
	c.FireNamed("CHANNEL_HANGUP_COMPLETE")
	c.SetRunState(CSDestroy)
	c.FireNamed("CHANNEL_DESTROY")
}

// timestampVars is the most variables setTimestampsLocked and complete
// add to a leg: the five *_stamp/_epoch/_uepoch triples, caller_id, the
// four *sec/msec/usec triples, duration's three, and the two codecs.
const timestampVars = 5*3 + 1 + 4*3 + 3 + 2

// Variable names of setTimestampsLocked, spelt out once instead of
// concatenated for every leg.
type stampNames struct{ stamp, epoch, uepoch string }

var (
	startNames         = stampNames{"start_stamp", "start_epoch", "start_uepoch"}
	answerNames        = stampNames{"answer_stamp", "answer_epoch", "answer_uepoch"}
	progressNames      = stampNames{"progress_stamp", "progress_epoch", "progress_uepoch"}
	progressMediaNames = stampNames{"progress_media_stamp", "progress_media_epoch", "progress_media_uepoch"}
	endNames           = stampNames{"end_stamp", "end_epoch", "end_uepoch"}
	billNames          = stampNames{"billsec", "billmsec", "billusec"}
	answerSecNames     = stampNames{"answersec", "answermsec", "answerusec"}
	progressSecNames   = stampNames{"progresssec", "progressmsec", "progressusec"}
	progressMediaSec   = stampNames{"progress_mediasec", "progress_mediamsec", "progress_mediausec"}
)

// setTimestampsLocked sets the timing variables of a hung-up leg. Whole
// seconds are differences of whole-second epochs, as in FreeSWITCH, so
// duration and billsec agree with the *_epoch variables beside them.
func (c *Channel) setTimestampsLocked() {
	const stamp = "2006-01-02 15:04:05"
	// Room for every variable added here, allocated once at its size
	// rather than by append doubling the list.
	if free := cap(c.vars) - len(c.vars); free < timestampVars {
		vars := make([]Header, len(c.vars), len(c.vars)+timestampVars)
		copy(vars, c.vars)
		c.vars = vars
	}
	set := func(n *stampNames, t time.Time) {
		if !t.IsZero() {
			c.setVarLocked(n.stamp, t.Local().Format(stamp))
			c.setVarLocked(n.epoch, strconv.FormatInt(t.Unix(), 10))
			c.setVarLocked(n.uepoch, strconv.FormatInt(t.UnixMicro(), 10))
			return
		}
		c.setVarLocked(n.epoch, "0")
		c.setVarLocked(n.uepoch, "0")
	}
	set(&startNames, c.created)
	set(&answerNames, c.answeredAt)
	set(&progressNames, c.progressAt)
	set(&progressMediaNames, c.progressMediaAt)
	set(&endNames, c.hungupAt)
	if name := c.varLocked("caller_id_name"); name != "" {
		c.setVarLocked("caller_id", `"`+name+`" <`+c.varLocked("caller_id_number")+`>`)
	} else if num := c.varLocked("caller_id_number"); num != "" {
		c.setVarLocked("caller_id", num)
	}
	since := func(from, to time.Time, n *stampNames) {
		var s, ms, us int64
		if !from.IsZero() && !to.IsZero() {
			s = to.Unix() - from.Unix()
			ms = to.UnixMilli() - from.UnixMilli()
			us = to.UnixMicro() - from.UnixMicro()
		}
		c.setVarLocked(n.stamp, strconv.FormatInt(max(s, 0), 10))
		c.setVarLocked(n.epoch, strconv.FormatInt(max(ms, 0), 10))
		c.setVarLocked(n.uepoch, strconv.FormatInt(max(us, 0), 10))
	}
	// FreeSWITCH names the whole-leg length duration/mduration/uduration.
	var d, md, ud int64
	if !c.hungupAt.IsZero() {
		d = c.hungupAt.Unix() - c.created.Unix()
		md = c.hungupAt.UnixMilli() - c.created.UnixMilli()
		ud = c.hungupAt.UnixMicro() - c.created.UnixMicro()
	}
	c.setVarLocked("duration", strconv.FormatInt(max(d, 0), 10))
	c.setVarLocked("mduration", strconv.FormatInt(max(md, 0), 10))
	c.setVarLocked("uduration", strconv.FormatInt(max(ud, 0), 10))
	if c.answeredAt.IsZero() {
		since(time.Time{}, time.Time{}, &billNames)
		since(time.Time{}, time.Time{}, &answerSecNames)
	} else {
		since(c.answeredAt, c.hungupAt, &billNames)
		since(c.created, c.answeredAt, &answerSecNames)
	}
	since(c.created, c.progressAt, &progressSecNames)
	since(c.created, c.progressMediaAt, &progressMediaSec)
}

// State names the channel's call state as FreeSWITCH's Channel-Call-State.
func (c *Channel) State() string { return c.CallState().String() }

// FireNamed fires the event name about this channel if some subscriber can
// want it: with the channel's headers (as Event builds them) when one of
// those subscribers wants the event full, bare (the envelope only) when
// all of them are bare (Bus.Wanted); otherwise it builds nothing.
func (c *Channel) FireNamed(name string) {
	if want, full := c.core.Wanted(name, ""); want {
		c.Fire(c.newEvent(name, full, 0))
	}
}

// Event builds an event about this channel with FreeSWITCH's channel
// headers (Channel-*, Caller-*, Other-Leg-*, variable_*).
func (c *Channel) Event(name string) *Event {
	return c.newEvent(name, true, 0)
}

// newEvent starts an event about this channel that will get own headers
// of its own after the channel's: with the channel's headers when full,
// without them (for bare subscribers only, Bus.Wanted) otherwise. Its
// header list has room for the own headers and the envelope stamp puts in
// front, so building and firing it allocates the list once.
func (c *Channel) newEvent(name string, full bool, own int) *Event {
	if !full {
		e := NewEvent(name, "", own)
		e.Channel = c
		return e
	}
	e := &Event{Name: name, Channel: c}
	c.appendHeaders(e, own)
	return e
}

// Signalling is the channel's protocol side (nil when it has none).
func (c *Channel) Signalling() Signalling {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sig
}
