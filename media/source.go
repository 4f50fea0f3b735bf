package media

import (
	"fmt"
	"net/netip"
)

// The RTP source policy (README "RTP source policy"): which received packets
// a leg accepts, and where and when it sends.
//
// Receiving. A packet whose source IP is the SDP address or the signalling
// source (SetSignallingSource) is expected: it is accepted at once, the leg
// sends to its address and port from then on (symmetric RTP), and no other
// source can displace it. Once the leg sends to an expected source, another
// port (or the other expected IP) gets the stream only after a probation run
// that no packet from the current one interrupts: a NAT that rebinds the
// phone's port moves it, a second device behind the same NAT as an active
// phone does not. A source matching neither is learned only after
// Config.Probation consecutive packets (same address and port, same SSRC,
// consecutive sequence numbers), and only while no expected source has been
// heard since the SDP address last changed; once learned it is kept until an
// expected source speaks or the SDP address changes. Matching is by IP, not
// port: NATs and phones often send from another port than the one they
// announce.
//
// Sending. Under every policy but ConsentNone nothing generated or relayed
// goes out before consent (Config.Consent), and then only to an address
// known to want it: a source we accepted packets from, or the first SDP
// address once Confirm was called. An SDP that moves media to a new IP (a
// re-INVITE) therefore takes effect only when RTP arrives from that IP or
// from the signalling source, so the leg cannot be aimed at a third party.

// DefaultProbation is how many consecutive packets an unexpected source must
// send before a leg learns it (Asterisk's strictrtp probation).
const DefaultProbation = 4

// maxHeard bounds the IPs a leg remembers having heard from.
const maxHeard = 8

// ConsentPolicy says when a leg may start sending RTP to its remote.
type ConsentPolicy int

const (
	// ConsentNone sends to the SDP address as soon as there is one, and
	// moves to a new SDP address at once: ccpbx before issue 10, for an
	// owner that never calls Confirm. The media timeout then starts at the
	// first SDP as well as at Confirm.
	ConsentNone ConsentPolicy = iota
	// ConsentConfirmOrRTP sends after Confirm (sip: the ACK) or after the
	// first packet accepted from the peer, whichever comes first.
	ConsentConfirmOrRTP
	// ConsentConfirm sends only after Confirm.
	ConsentConfirm
	// ConsentRTP sends only after a packet was accepted from the peer, and
	// only to where packets come from.
	ConsentRTP
)

var consentNames = [...]string{"none", "confirm-or-rtp", "confirm", "rtp"}

func (p ConsentPolicy) String() string {
	if p >= 0 && int(p) < len(consentNames) {
		return consentNames[p]
	}
	return fmt.Sprintf("ConsentPolicy(%d)", int(p))
}

// ParseConsentPolicy parses the names String returns.
func ParseConsentPolicy(s string) (ConsentPolicy, error) {
	for i, n := range consentNames {
		if s == n {
			return ConsentPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("media: unknown consent policy %q (want none, confirm-or-rtp, confirm or rtp)", s)
}

func (p ConsentPolicy) byConfirm() bool { return p == ConsentConfirmOrRTP || p == ConsentConfirm }
func (p ConsentPolicy) byRTP() bool     { return p == ConsentConfirmOrRTP || p == ConsentRTP }

// latchState is owned by the reader goroutine.
type latchState struct {
	gen           uint64
	addr          netip.AddrPort // accepted source; invalid until one is
	addrExpected  bool           // addr is an expected source
	heardExpected bool           // an expected source spoke in this generation
	cand          netip.AddrPort // unexpected source on probation
	candSSRC      uint32
	candSeq       uint16
	candN         int
}

// expects reports whether packets from a are accepted at once.
func (st *mediaState) expects(a netip.Addr) bool {
	return a == st.signalled.Addr() || (st.sigSrc.IsValid() && a == st.sigSrc)
}

// admit applies the source policy to one packet; reader goroutine only. The
// path for a packet from the accepted source takes no lock.
func (l *Leg) admit(st *mediaState, from netip.AddrPort, h *rtpHeader) bool {
	lt := &l.latch
	if lt.gen != st.gen {
		*lt = latchState{gen: st.gen}
		l.stats.latched.Store(false)
	}
	if from == lt.addr {
		if lt.candN != 0 {
			lt.candN = 0 // the current source is alive: no run against it
		}
		return true
	}
	if st.expects(from.Addr()) {
		lt.heardExpected = true
		if !lt.addrExpected || lt.probation(from, h, l.e.cfg.Probation) {
			lt.addrExpected, lt.candN = true, 0
			l.latchTo(st, from)
		}
		return true
	}
	if lt.heardExpected || lt.addr.IsValid() {
		return false // never displace an expected or learned source
	}
	if !lt.probation(from, h, l.e.cfg.Probation) {
		return false
	}
	lt.candN = 0
	l.stats.learned.Add(1)
	l.latchTo(st, from)
	return true
}

// probation counts a run of consecutive packets from one source (same
// address and port, same SSRC, sequence numbers one apart) and reports
// whether this packet completes a run of n.
func (lt *latchState) probation(from netip.AddrPort, h *rtpHeader, n int) bool {
	if lt.candN > 0 && from == lt.cand && h.ssrc == lt.candSSRC && h.seq == lt.candSeq+1 {
		lt.candN++
	} else {
		lt.cand, lt.candSSRC, lt.candN = from, h.ssrc, 1
	}
	lt.candSeq = h.seq
	return lt.candN >= n
}

// latchTo makes from the accepted source: RTP consent is given, from's IP is
// known to want media, and the leg sends to it. Rare (once per source).
func (l *Leg) latchTo(st *mediaState, from netip.AddrPort) {
	l.latch.addr = from
	l.stats.latched.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur := l.out.state.Load(); cur == nil || cur.gen != st.gen {
		return // a newer SDP arrived meanwhile; the reader restarts on it
	}
	l.src, l.srcGen = from, st.gen
	l.rtpConsent = true
	if !l.heardFromLocked(from.Addr()) {
		if len(l.heard) == maxHeard { // a peer that keeps moving: forget the oldest
			l.heard = append(l.heard[:0], l.heard[1:]...)
		}
		l.heard = append(l.heard, from.Addr())
	}
	l.retargetLocked()
}

func (l *Leg) heardFromLocked(a netip.Addr) bool {
	for _, h := range l.heard {
		if h == a {
			return true
		}
	}
	return false
}

// consentLocked reports whether the policy lets the leg send at all.
func (l *Leg) consentLocked() bool {
	p := l.e.cfg.Consent
	return p == ConsentNone || (p.byConfirm() && l.confirmed) || (p.byRTP() && l.rtpConsent)
}

// targetLocked is where the leg sends under st, or the zero AddrPort for
// nowhere; l.mu is held.
func (l *Leg) targetLocked(st *mediaState) netip.AddrPort {
	if st == nil || !l.consentLocked() {
		return netip.AddrPort{}
	}
	if l.src.IsValid() && l.srcGen == st.gen {
		return l.src
	}
	a := st.signalled.Addr()
	if l.e.cfg.Consent == ConsentNone || l.heardFromLocked(a) ||
		(l.e.cfg.Consent.byConfirm() && l.confirmed && a == l.firstRemote) {
		return st.signalled
	}
	return netip.AddrPort{}
}

func (l *Leg) retargetLocked() { l.out.setRemote(l.targetLocked(l.out.state.Load())) }

// SetSignallingSource tells the leg the IP its call's signalling came from
// (sip: the source of the INVITE, or of the 2xx for a call we placed). RTP
// from it is expected like RTP from the SDP address: NATed phones send both
// from their public address while their SDP names a private one. Call it
// before or with the first SDP; later calls replace it.
func (l *Leg) SetSignallingSource(a netip.Addr) {
	a = a.Unmap()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sigSrc = a
	if st := l.out.state.Load(); st != nil && st.sigSrc != a {
		cp := *st
		cp.sigSrc = a
		l.out.state.Store(&cp)
	}
}

// Confirm tells the leg its call is established (sip: on the ACK of a call
// we answered, on the 2xx of a call we placed). Under ConsentConfirm and
// ConsentConfirmOrRTP it is consent to send to the first SDP address the
// leg was given (never to an address a later SDP moves to). Under every
// policy the media timeout starts now, with or without an SDP, so a call
// that never exchanged one still ends. Calling it again restarts the
// timeout count and changes nothing else.
func (l *Leg) Confirm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirmed = true
	l.retargetLocked()
	l.watching = true
	l.lastRx.Store(monoNow())
	l.armLocked()
}

// rtcpFrom reports whether RTCP from a proves the peer is alive: it comes
// from an expected IP or from the accepted source's IP.
func (st *mediaState) rtcpFrom(a, accepted netip.Addr) bool {
	return st.expects(a) || (accepted.IsValid() && a == accepted)
}
