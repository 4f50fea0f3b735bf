package sip

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/config"
)

// Limits are the switch-wide admission limits (config [core]); the
// per-profile ones come with each profile's config. Zero values mean no
// limit.
type Limits struct {
	// MaxSessions caps SIP legs up at once (FreeSWITCH's max-sessions).
	MaxSessions int
	// SessionsPerSecond caps new inbound calls per second, all profiles.
	SessionsPerSecond int
	// OverloadDelay is the scheduling delay past which new INVITEs and
	// REGISTERs are shed (see overload.go).
	OverloadDelay time.Duration
	// Healthy, when set and false, answers new INVITEs 503 with
	// Retry-After: a cluster node that cannot renew its lease sends its
	// calls to another node (Kamailio fails over on 5xx). nil: always.
	Healthy func() bool
}

// LimitsFrom reads the switch-wide limits from the configuration.
func LimitsFrom(c config.Core) Limits {
	return Limits{MaxSessions: c.MaxSessions, SessionsPerSecond: c.SessionsPerSecond, OverloadDelay: c.OverloadDelay.Duration}
}

// profileLimits is what a profile admits from one source.
type profileLimits struct {
	acl           []netip.Prefix
	perIPRate     *rateTable
	maxCallsPerIP int
	// calls counts the inbound legs up per source address; guarded by
	// Stack.mu (track/untrack keep it).
	calls map[netip.Addr]int
}

func newProfileLimits(pc config.Profile) (profileLimits, error) {
	l := profileLimits{maxCallsPerIP: pc.MaxCallsPerIP, calls: make(map[netip.Addr]int)}
	for _, a := range pc.ACL {
		pfx, err := config.ParseACLEntry(a)
		if err != nil {
			return l, err
		}
		l.acl = append(l.acl, pfx)
	}
	if pc.CallsPerSecondPerIP > 0 {
		l.perIPRate = newRateTable(pc.CallsPerSecondPerIP)
	}
	return l, nil
}

func (l *profileLimits) allowed(ip netip.Addr) bool {
	if len(l.acl) == 0 {
		return true
	}
	for _, p := range l.acl {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// admit is the first thing every request meets, before its handler: the
// profile's ACL, the blanks sipgo keeps in To and From taken out, the
// RFC 3261/4475 checks sipgo leaves to us (validate.go),
// then for new calls and registrations the limits and overload shedding.
// A refused request is answered here (never an ACK), through reply, and
// its handler does not run. Everything here is cheap: no digest, no
// database, no dialog work.
func (p *profile) admit(req *sipmsg.Request, tx sipmsg.ServerTransaction) bool {
	s := p.stack
	ack := req.Method == sipmsg.ACK
	src, _ := netip.ParseAddrPort(req.Source())
	ip := src.Addr().Unmap()
	if !p.limits.allowed(ip) {
		if !ack {
			s.respond(tx, req, 403, "Forbidden")
		}
		return false
	}
	trimToFromBlanks(req)
	if r := validate(req); r.code != 0 {
		if !ack {
			_, _ = s.reply(tx, req, r)
		}
		return false
	}
	newCall := req.Method == sipmsg.INVITE && !hasToTag(req)
	if !newCall && req.Method != sipmsg.REGISTER {
		return true
	}
	if s.overload.shedding() {
		s.overload.shed.Add(1)
		s.respond(tx, req, 503, "Service Unavailable", retryAfter())
		return false
	}
	if newCall && s.limits.Healthy != nil && !s.limits.Healthy() {
		s.limited.Add(1)
		s.respond(tx, req, 503, "Service Unavailable", retryAfter())
		return false
	}
	if !newCall {
		// A REGISTER: the wrapper releases it after handling.
		if !s.overload.acquire() {
			s.overload.shed.Add(1)
			s.respond(tx, req, 503, "Service Unavailable", retryAfter())
			return false
		}
		return true
	}
	s.mu.Lock()
	legs, fromIP := len(s.legs), p.limits.calls[ip]
	s.mu.Unlock()
	switch {
	case s.limits.MaxSessions > 0 && legs >= s.limits.MaxSessions,
		p.limits.maxCallsPerIP > 0 && fromIP >= p.limits.maxCallsPerIP,
		p.limits.perIPRate != nil && !p.limits.perIPRate.take(ip, time.Now()),
		s.sessionRate != nil && !s.sessionRate.take(time.Now()):
		p.log.Debug("call refused by a limit", "source", req.Source(), "legs", legs, "from_ip", fromIP)
		s.limited.Add(1)
		s.respond(tx, req, 503, "Maximum Calls In Progress", retryAfter())
		return false
	}
	return true
}

// shedEarly answers a new INVITE or REGISTER over UDP with 503 while the
// switch is overloaded, in the transport's read loop, before sipgo parses
// it again and keeps a transaction for it (64·T1 of memory and timers per
// request): when the read loop itself is what falls behind, every
// datagram it does not finish faster is one the kernel drops and the
// client retransmits. The answer is stateless, so a retransmission is
// answered again the same way; a 503 to an INVITE is ACKed by the client,
// and that ACK matches nothing and is ignored. The profile's ACL still
// comes first.
func (p *profile) shedEarly(req *sipmsg.Request, from net.Addr) bool {
	s := p.stack
	if !s.overload.shedding() || from == nil {
		return false
	}
	if req.Method != sipmsg.REGISTER && (req.Method != sipmsg.INVITE || hasToTag(req)) {
		return false
	}
	conn := p.udpConn.Load()
	if conn == nil {
		return false
	}
	req.SetSource(from.String())
	req.SetTransport("UDP")
	if src, err := netip.ParseAddrPort(from.String()); err == nil && !p.limits.allowed(src.Addr().Unmap()) {
		return false // admit answers 403
	}
	if req.Via() == nil || req.CallID() == nil || req.CSeq() == nil || req.From() == nil || req.To() == nil {
		return false // admit answers 400
	}
	p.countRequest(req)
	s.overload.shed.Add(1)
	s.overload.early.Add(1)
	_, _ = s.reply(nil, req, response{code: 503, reason: "Service Unavailable", headers: []sipmsg.Header{retryAfter()}, stateless: *conn})
	return true
}

func hasToTag(req *sipmsg.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

// retryAfter tells a refused client to come back in 1-5 s, spread so that
// the clients refused together do not return together.
func retryAfter() sipmsg.Header {
	return sipmsg.NewHeader("Retry-After", strconv.Itoa(1+rand.IntN(5)))
}

// inboundSource is the source address an inbound leg is counted under
// (max_calls_per_ip); false for outbound legs.
func inboundSource(l *leg) (netip.Addr, bool) {
	ch := l.channel()
	if ch == nil || ch.Direction() != call.Inbound {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(ch.Var("network_addr"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// countCallLocked adds (+1) or removes (-1) an inbound leg from its
// source's count; s.mu is held.
func (s *Stack) countCallLocked(l *leg, ip netip.Addr, delta int) {
	calls := l.p.limits.calls
	if n := calls[ip] + delta; n > 0 {
		calls[ip] = n
	} else {
		delete(calls, ip)
	}
}

// bucket is a token bucket: rate tokens a second, at most rate stored
// (one second's burst).
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) take(rate float64, now time.Time) bool {
	if b.last.IsZero() {
		b.tokens = rate
	} else if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(rate, b.tokens+d*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// rate is one token bucket behind a lock (sessions_per_second).
type rate struct {
	mu sync.Mutex
	r  float64
	b  bucket
}

func newRate(perSecond int) *rate { return &rate{r: float64(perSecond)} }

func (r *rate) take(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.take(r.r, now)
}

// maxRateSources bounds the per-address table: spoofed UDP sources must
// not grow it without end. When it is full of recently active sources, a
// new source is let through (the global sessions_per_second still holds)
// rather than refused: a flood from made-up addresses must not lock out a
// real trunk.
const maxRateSources = 65536

// rateTable is a token bucket per source address.
type rateTable struct {
	mu sync.Mutex
	r  float64
	m  map[netip.Addr]*bucket
}

func newRateTable(perSecond int) *rateTable {
	return &rateTable{r: float64(perSecond), m: make(map[netip.Addr]*bucket)}
}

func (t *rateTable) take(ip netip.Addr, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.m[ip]
	if !ok {
		if len(t.m) >= maxRateSources {
			t.sweepLocked(now)
			if len(t.m) >= maxRateSources {
				return true
			}
		}
		b = &bucket{}
		t.m[ip] = b
	}
	return b.take(t.r, now)
}

// sweepLocked forgets sources whose bucket has refilled: they are as good
// as new.
func (t *rateTable) sweepLocked(now time.Time) {
	for ip, b := range t.m {
		if now.Sub(b.last) > time.Second {
			delete(t.m, ip)
		}
	}
}
