package call

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// profile is a snapshot of what a channel contributes to an event: taken
// under the channel's lock, written out without it, so building an event
// about one leg never holds two legs' locks.
type profile struct {
	name, uuid        string
	dir               Direction
	run               RunState
	call              CallState
	hungup            bool
	answered, ringing bool
	cause             Cause
	codec             string
	created           time.Time
	answeredAt        time.Time
	progressAt        time.Time
	progressMediaAt   time.Time
	hungupAt          time.Time
	bridgedAt         time.Time
	lastHold          time.Time
	holdAccum         time.Duration
	other             *Channel
	otherType         string
	// std holds the values of profileVars, by index.
	std [len(profileVars)]string
}

// profileVars are the variables a caller profile block reads.
var profileVars = [...]string{"username", "caller_id_name", "caller_id_number", "callee_id_name",
	"callee_id_number", "network_addr", "ani", "destination_number", "context", "presence_id",
	"call_uuid", "transfer_source", "orig_caller_id_name", "orig_caller_id_number", "read_codec"}

// get is one of profileVars' values ("" for any other name).
func (p *profile) get(k string) string {
	for i, n := range profileVars {
		if n == k {
			return p.std[i]
		}
	}
	return ""
}

// Header names built once instead of once per event: "variable_" + name for
// the names channels use (bounded, since names can come from the network)
// and the caller-profile blocks' prefixed names.
var (
	varHeaders     sync.Map // name → "variable_" + name
	varHeaderCount atomic.Int32
)

const maxVarHeaders = 4096

func varHeader(name string) string {
	if h, ok := varHeaders.Load(name); ok {
		return h.(string)
	}
	h := "variable_" + name
	if varHeaderCount.Load() < maxVarHeaders {
		if _, loaded := varHeaders.LoadOrStore(name, h); !loaded {
			varHeaderCount.Add(1)
		}
	}
	return h
}

var profileHeaders sync.Map // [2]string{prefix, name} → prefix + "-" + name (a fixed set)

func profileHeader(prefix, name string) string {
	k := [2]string{prefix, name}
	if h, ok := profileHeaders.Load(k); ok {
		return h.(string)
	}
	h := prefix + "-" + name
	profileHeaders.Store(k, h)
	return h
}

// snapshotLocked fills p with the channel's profile; c.mu is held.
func (c *Channel) snapshotLocked(p *profile) {
	*p = profile{
		name: c.name, uuid: c.uuid, dir: c.direction, run: c.runState, call: c.callState,
		hungup: c.hungup, answered: !c.answeredAt.IsZero(), ringing: c.ringing, cause: c.cause,
		created: c.created, answeredAt: c.answeredAt, progressAt: c.progressAt,
		progressMediaAt: c.progressMediaAt, hungupAt: c.hungupAt, bridgedAt: c.bridgedAt,
		lastHold: c.lastHold, holdAccum: c.holdAccum, other: c.other, otherType: c.otherType,
	}
	for i, k := range profileVars {
		p.std[i] = c.varLocked(k)
	}
}

// setCodec sets p.codec from the read_codec variable or, once there is
// one, the media's codec; call it without the channel's lock.
func (p *profile) setCodec(m Media) {
	p.codec = p.get("read_codec")
	if m != nil {
		if codec := m.Codec(); codec != "" {
			p.codec = codec
		}
	}
}

// channelHeadersMax bounds the headers AppendHeaders writes before the
// variables: the Channel-* block (18 at most), the caller profile (33),
// Other-Type and the other leg's profile (33), with room to spare.
const channelHeadersMax = 24 + 2*40

// AppendHeaders adds the channel's data to e in FreeSWITCH's order
// (switch_channel_event_set_data): the Channel-* block, the caller
// profile as Caller-*, the bridged leg's as Other-Leg-*, then every
// variable as variable_* in the order it was first set. Empty values are
// left out, as FreeSWITCH leaves them out.
//
// The room e's header list has beyond the envelope's (NewEvent's own
// headers) is kept after the channel data, for the headers the caller adds
// next.
func (c *Channel) AppendHeaders(e *Event) {
	c.appendHeaders(e, max(cap(e.Headers)-len(e.Headers)-envelopeMax, 0))
}

// appendHeaders is AppendHeaders leaving room for own more headers after
// the channel's and for the envelope stamp puts in front: the header list
// is allocated once. The channel's state is read under its lock, the
// bridged leg's under that leg's lock afterwards, so building an event
// about one leg never holds two legs' locks.
func (c *Channel) appendHeaders(e *Event, own int) {
	var p, op profile
	l0 := len(e.Headers)
	c.mu.Lock()
	c.snapshotLocked(&p)
	nv := len(c.vars)
	// The variables are copied under the lock to the end of the list,
	// after room for the blocks written below, and moved down behind them
	// once they are written.
	base := l0 + channelHeadersMax
	hs := e.Headers
	if need := base + nv + own + envelopeMax; cap(hs) < need {
		hs = make([]Header, l0, need)
		copy(hs, e.Headers)
	}
	vars := hs[base : base+nv]
	for i, v := range c.vars {
		vars[i] = Header{varHeader(v.Name), v.Value}
	}
	m := c.media
	c.mu.Unlock()
	p.setCodec(m)
	other := p.other != nil && p.other != c
	if other {
		o := p.other
		o.mu.Lock()
		o.snapshotLocked(&op)
		om := o.media
		o.mu.Unlock()
		op.setCodec(om)
	}
	e.Headers = hs[:l0]
	add := func(name, value string) {
		if value != "" {
			e.Add(name, value)
		}
	}
	add("Channel-State", p.run.String())
	add("Channel-Call-State", p.call.String())
	add("Channel-State-Number", strconv.Itoa(int(p.run)))
	add("Channel-Name", p.name)
	add("Unique-ID", p.uuid)
	add("Call-Direction", string(p.dir))
	add("Presence-Call-Direction", string(p.dir))
	add("Channel-HIT-Dialplan", strconv.FormatBool(p.dir == Inbound))
	add("Channel-Presence-ID", p.get("presence_id"))
	callUUID := p.get("call_uuid")
	if callUUID == "" {
		callUUID = p.uuid
	}
	add("Channel-Call-UUID", callUUID)
	answer := "ringing"
	switch {
	case p.hungup:
		answer = "hangup"
	case p.answered:
		answer = "answered"
	case p.call == CCSEarly:
		answer = "early"
	}
	add("Answer-State", answer)
	if p.hungup {
		add("Hangup-Cause", string(p.cause))
	}
	if p.codec != "" {
		add("Channel-Read-Codec-Name", p.codec)
		add("Channel-Read-Codec-Rate", "8000")
		add("Channel-Read-Codec-Bit-Rate", "64000")
		add("Channel-Write-Codec-Name", p.codec)
		add("Channel-Write-Codec-Rate", "8000")
		add("Channel-Write-Codec-Bit-Rate", "64000")
	}
	p.appendProfile(e, "Caller", true)
	if other {
		add("Other-Type", p.otherType)
		op.appendProfile(e, "Other-Leg", false)
	}
	// A move down within one array (copy is memmove): the blocks stay
	// below base (TestChannelHeadersMax).
	e.Headers = append(e.Headers, vars...)
}

// appendProfile writes the caller-profile block under prefix ("Caller",
// "Other-Leg"), switch_caller_profile_event_set_data's fields and order.
func (p *profile) appendProfile(e *Event, prefix string, index bool) {
	add := func(name, value string) {
		if value != "" {
			e.Add(profileHeader(prefix, name), value)
		}
	}
	add("Direction", string(p.dir))
	add("Logical-Direction", string(p.dir))
	add("Username", p.get("username"))
	if p.dir == Inbound {
		// Originated legs have no dialplan in their caller profile.
		add("Dialplan", "XML")
	}
	cidName, cidNum := p.get("caller_id_name"), p.get("caller_id_number")
	add("Caller-ID-Name", cidName)
	add("Caller-ID-Number", cidNum)
	origName, origNum := p.get("orig_caller_id_name"), p.get("orig_caller_id_number")
	if origName == "" {
		origName = cidName
	}
	if origNum == "" {
		origNum = cidNum
	}
	add("Orig-Caller-ID-Name", origName)
	add("Orig-Caller-ID-Number", origNum)
	add("Callee-ID-Name", p.get("callee_id_name"))
	add("Callee-ID-Number", p.get("callee_id_number"))
	add("Network-Addr", p.get("network_addr"))
	ani := p.get("ani")
	if ani == "" {
		ani = cidNum
	}
	add("ANI", ani)
	add("Destination-Number", p.get("destination_number"))
	add("Unique-ID", p.uuid)
	source := "src/switch_ivr_originate.c"
	if p.dir == Inbound {
		source = moduleSource(p.name)
	}
	add("Source", source)
	add("Transfer-Source", p.get("transfer_source"))
	add("Context", p.get("context"))
	add("Channel-Name", p.name)
	if index {
		add("Profile-Index", "1")
	}
	add("Profile-Created-Time", microsOrZero(p.created))
	add("Channel-Created-Time", microsOrZero(p.created))
	add("Channel-Answered-Time", microsOrZero(p.answeredAt))
	add("Channel-Progress-Time", microsOrZero(p.progressAt))
	add("Channel-Progress-Media-Time", microsOrZero(p.progressMediaAt))
	add("Channel-Hangup-Time", microsOrZero(p.hungupAt))
	add("Channel-Transfer-Time", "0")
	add("Channel-Resurrect-Time", "0")
	add("Channel-Bridged-Time", microsOrZero(p.bridgedAt))
	add("Channel-Last-Hold", microsOrZero(p.lastHold))
	add("Channel-Hold-Accum", strconv.FormatInt(p.holdAccum.Microseconds(), 10))
	add("Screen-Bit", "true")
	add("Privacy-Hide-Name", "false")
	add("Privacy-Hide-Number", "false")
}

// moduleSource is an inbound leg's Caller-Source: "mod_" and the endpoint
// its channel name starts with ("mod_sofia" for "sofia/…").
func moduleSource(name string) string {
	ep, _, _ := strings.Cut(name, "/")
	if ep == "sofia" {
		return "mod_sofia"
	}
	return "mod_" + ep
}

// microsOrZero is a Caller-Channel-*-Time value: microseconds since the
// epoch, or 0 for a moment that has not happened.
func microsOrZero(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

func itoa(n int) string { return strconv.Itoa(n) }

// watchDigits fires a DTMF event for each digit the leg's media receives,
// with FreeSWITCH's DTMF-Digit, DTMF-Duration and DTMF-Source after the
// channel data.
func (c *Channel) watchDigits(m Media) {
	if m == nil {
		return
	}
	off := m.OnDigit(func(d rune) {
		want, full := c.core.Wanted("DTMF", "")
		if !want {
			return
		}
		e := c.newEvent("DTMF", full, 3)
		e.Add("DTMF-Digit", string(d))
		e.Add("DTMF-Duration", "2000")
		e.Add("DTMF-Source", "RTP")
		c.Fire(e)
	})
	c.mu.Lock()
	if c.hungup {
		c.mu.Unlock()
		off()
		return
	}
	c.dtmfOff = off
	c.mu.Unlock()
}

// setBridged links the two legs of a bridge for the Other-Leg-* headers;
// nil other unlinks.
func (c *Channel) setBridged(other *Channel, otherType string) {
	c.mu.Lock()
	c.other, c.otherType = other, otherType
	if other != nil {
		c.bridgedAt = c.core.Now()
	}
	c.mu.Unlock()
}

// Bridged returns the leg this one is bridged to now (nil when none).
func (c *Channel) Bridged() *Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.varLocked("bridge_uuid") == "" {
		return nil
	}
	return c.other
}
