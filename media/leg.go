package media

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrClosed is returned by operations on a closed leg or engine.
var ErrClosed = errors.New("media: closed")

// ErrBridged is returned by Connect when a leg is already bridged.
var ErrBridged = errors.New("media: leg already bridged")

// LegStats counts what a leg received, sent and dropped.
type LegStats struct {
	PacketsIn        uint64         // accepted RTP packets (audio, DTMF, CN)
	PacketsOut       uint64         // RTP packets sent
	Bad              uint64         // malformed RTP: short, wrong version, lengths past the end
	UnknownPT        uint64         // payload type not negotiated
	UnexpectedSource uint64         // from a source the policy refused (or on probation), or before any SDP
	Learned          uint64         // unexpected sources learned after probation
	Dropped          uint64         // outbound frames a music clock skipped because the leg was busy
	SendErrors       uint64         // failed socket writes
	DigitsIn         uint64         // DTMF digits detected
	RTCPIn           uint64         // RTCP packets read (and drained)
	SRTPDropped      uint64         // SRTP/SRTCP packets that failed authentication or replay checks
	Secure           bool           // SRTP is negotiated
	Latched          bool           // a source was accepted since the SDP address last changed
	Consent          bool           // the consent policy lets the leg send
	Remote           netip.AddrPort // where we send now; invalid while we may send nowhere
}

type legStats struct {
	packetsIn, packetsOut, bad, unknownPT, unexpected atomic.Uint64
	dropped, sendErrors, digits, rtcp, learned        atomic.Uint64
	latched                                           atomic.Bool
	srtpDropped                                       atomic.Uint64
	totals                                            *rtpTotals // the engine's, counted alongside
}

// Leg is one RTP endpoint of a call: a UDP socket pair on an even port, the
// negotiated audio stream and the outbound stream; its sockets are read by
// one of the engine's pollers (its reader).
type Leg struct {
	e        *Engine
	log      *slog.Logger
	local    netip.Addr
	port     int
	rtpSock  *udpSock
	rtcpSock *udpSock
	poller   *poller // reads both sockets (poller_linux.go)
	pollSlot uint32  // under poller.mu
	pollGen  int32
	out      outStream
	stats    legStats

	relay  atomic.Pointer[relayHalf] // where received packets are forwarded
	lastRx atomic.Int64              // monotonic ns of the last accepted packet
	latch  latchState                // reader only
	seq    seqTracker                // reader only
	dtmf   dtmfDetector              // reader only

	mu       sync.Mutex // negotiation, SDP versions, music, bridge, source policy, timers
	sessID   uint64
	sessVer  uint64
	lastBody string
	prefer   string
	secure   SecureMedia       // SRTP policy (srtp.go)
	srtpKey  *[sdesKeyLen]byte // our SDES master key and salt, drawn on first use
	offered  bool              // our last offer carried a=crypto
	music    *mohSub
	bridge   *bridge
	// recordings feed the taps (record.go); out.taps is their lock-free copy.
	recordings []*Recording

	// Source policy and consent (source.go), under mu.
	sigSrc      netip.Addr     // SetSignallingSource
	firstRemote netip.Addr     // IP of the first usable SDP address: what Confirm consents to
	confirmed   bool           // Confirm was called
	rtpConsent  bool           // a packet was accepted from the peer
	src         netip.AddrPort // the accepted source of generation srcGen
	srcGen      uint64
	heard       []netip.Addr // IPs we accepted packets from: they want media

	// Media timeout (timeout.go), under mu.
	watching  bool // the timeout runs (Confirm, or an SDP under ConsentNone)
	timer     *time.Timer
	timeoutFn func()
	timedOut  TimeoutKind
	timeoutCh chan struct{}

	digitMu   sync.Mutex
	digitFns  []*digitFn
	nDigitFns atomic.Int32
	digitCh   chan rune
	digitRun  atomic.Bool // a deliverDigits goroutine is running

	closeOnce sync.Once
	closed    chan struct{}
}

type digitFn struct{ fn func(rune) }

// NewLeg allocates an even RTP port and starts reading it. It binds local
// when that is an address of this host, otherwise all addresses; local is
// what the SDP advertises.
func (e *Engine) NewLeg(local netip.Addr) (*Leg, error) {
	if !local.IsValid() {
		return nil, fmt.Errorf("media: new leg: no local address")
	}
	local = local.Unmap()
	select {
	case <-e.done:
		return nil, ErrClosed
	default:
	}
	bind := local
	if local.IsUnspecified() {
		bind = netip.IPv4Unspecified()
		if local.Is6() {
			bind = netip.IPv6Unspecified()
		}
	}
	rtpConn, rtcpConn, port, err := e.ports.alloc(bind)
	if err != nil && errors.Is(err, syscall.EADDRNOTAVAIL) {
		// An advertised address that is not on this host (1:1 NAT): bind all.
		bind = netip.IPv4Unspecified()
		if local.Is6() {
			bind = netip.IPv6Unspecified()
		}
		rtpConn, rtcpConn, port, err = e.ports.alloc(bind)
	}
	if err != nil {
		return nil, fmt.Errorf("media: new leg: %w", err)
	}
	l := &Leg{
		e:         e,
		local:     local,
		port:      port,
		rtpSock:   rtpConn,
		rtcpSock:  rtcpConn,
		sessID:    rand.Uint64N(1 << 62),
		sessVer:   rand.Uint64N(1 << 30),
		closed:    make(chan struct{}),
		digitCh:   make(chan rune, 64),
		timeoutCh: make(chan struct{}),
	}
	l.log = e.log.With("rtp_port", port)
	l.out.sock = rtpConn
	l.stats.totals = e.rtp.forPort(port)
	l.out.stats = &l.stats
	l.out.ssrc = rand.Uint32()
	l.out.seq = uint16(rand.Uint32())
	l.out.ts = rand.Uint32()
	p, err := e.pollerFor()
	if err != nil {
		l.closeSockets()
		e.ports.release(port)
		return nil, fmt.Errorf("media: new leg: %w", err)
	}
	if err := p.add(l); err != nil {
		l.closeSockets()
		e.releasePoller(p)
		e.ports.release(port)
		return nil, fmt.Errorf("media: new leg: %w", err)
	}
	l.poller = p
	if !e.track(l) {
		p.remove(l)
		l.closeSockets()
		e.releasePoller(p)
		e.ports.release(port)
		return nil, ErrClosed
	}
	return l, nil
}

// LocalPort is the RTP port (RTCP is LocalPort()+1).
func (l *Leg) LocalPort() int { return l.port }

// LocalAddr is the address the SDP advertises.
func (l *Leg) LocalAddr() netip.Addr { return l.local }

// Codec is the negotiated codec we send, "PCMU" or "PCMA", or "" before any
// SDP exchange.
func (l *Leg) Codec() string {
	if st := l.out.state.Load(); st != nil {
		return st.neg.codec
	}
	return ""
}

// DTMFPayloadType is the negotiated telephone-event payload type, or -1.
func (l *Leg) DTMFPayloadType() int {
	if st := l.out.state.Load(); st != nil {
		return st.neg.dtmfPT
	}
	return -1
}

// Direction is our negotiated direction (SendRecv before any SDP).
func (l *Leg) Direction() Direction {
	if st := l.out.state.Load(); st != nil {
		return st.neg.dir
	}
	return SendRecv
}

// SetPreferredCodec makes AnswerOffer pick codec ("PCMU"/"PCMA") when the
// offer contains it, e.g. the codec of the leg this one will be bridged to.
func (l *Leg) SetPreferredCodec(codec string) {
	l.mu.Lock()
	l.prefer = codec
	l.mu.Unlock()
}

// SetSecureMedia sets the leg's SRTP policy (FreeSWITCH's
// rtp_secure_media) for the offers and answers that follow.
func (l *Leg) SetSecureMedia(m SecureMedia) {
	l.mu.Lock()
	l.secure = m
	l.mu.Unlock()
}

// Secure reports whether the current negotiation uses SRTP.
func (l *Leg) Secure() bool {
	st := l.out.state.Load()
	return st != nil && st.neg.secure
}

// localKeyLocked is our SDES key, drawn once per leg: a re-offer repeats it
// (RFC 4568 §7.1.4 allows that), so the peer's contexts carry on.
func (l *Leg) localKeyLocked() (*[sdesKeyLen]byte, error) {
	if l.srtpKey == nil {
		k, err := newSDESKey()
		if err != nil {
			return nil, err
		}
		l.srtpKey = &k
	}
	return l.srtpKey, nil
}

// Offer is our SDP offer: PCMU, PCMA, telephone-event/8000 on 101, 20 ms,
// and a=crypto for both suites when the SRTP policy is optional (RTP/AVP)
// or mandatory (RTP/SAVP).
func (l *Leg) Offer() []byte { return l.OfferPreferring("") }

// OfferPreferring is Offer with codec ("PCMU" or "PCMA") listed first.
func (l *Leg) OfferPreferring(codec string) []byte { return l.offer(codec, SendRecv) }

// OfferDirection is a re-offer with our direction dir: SendOnly puts the
// peer on hold, SendRecv takes it off (uuid_hold), keeping the current codec
// first.
func (l *Leg) OfferDirection(dir Direction) []byte { return l.offer(l.Codec(), dir) }

func (l *Leg) offer(codec string, dir Direction) []byte {
	formats := []formatLine{
		{pt: 0, name: "PCMU/8000"},
		{pt: 8, name: "PCMA/8000"},
		{pt: 101, name: "telephone-event/8000", fmtp: "0-16"},
	}
	if codec == "PCMA" {
		formats[0], formats[1] = formats[1], formats[0]
	}
	sm := sdpMedia{local: l.local, port: l.port, formats: formats, dir: dir}
	l.mu.Lock()
	l.offered = false
	if l.secure == SecureOptional || l.secure == SecureMandatory {
		if k, err := l.localKeyLocked(); err == nil {
			for i := range suites {
				sm.crypto = append(sm.crypto, cryptoLine(i+1, i, k))
			}
			l.offered = true
			if l.secure == SecureMandatory {
				sm.proto = "RTP/SAVP"
			}
		}
	}
	l.mu.Unlock()
	return l.render(sm.body(nil, nil))
}

// secureLocked attaches the SRTP session n needs, reusing the current one
// when suite and keys are unchanged (a re-INVITE for hold keeps counters
// and replay windows).
func (l *Leg) secureLocked(n *negotiation) error {
	if !n.secure {
		return nil
	}
	k, err := l.localKeyLocked()
	if err != nil {
		return err
	}
	if old := l.out.state.Load(); old != nil && old.neg.sec.same(n.crypto.suite, k, &n.crypto.key) {
		n.sec = old.neg.sec
		return nil
	}
	n.sec, err = newSRTPSession(n.crypto.suite, k, &n.crypto.key)
	return err
}

// render prepends v= and o= to body. The session version changes only when
// the body differs from the last one we sent (RFC 3264 §8).
func (l *Leg) render(body string) []byte {
	l.mu.Lock()
	if body != l.lastBody {
		if l.lastBody != "" {
			l.sessVer++
		}
		l.lastBody = body
	}
	id, ver := l.sessID, l.sessVer
	l.mu.Unlock()
	head := fmt.Sprintf("v=0\r\no=- %d %d IN %s %s\r\n", id, ver, ipVer(l.local), addrString(l.local))
	return []byte(head + body)
}

// AcceptAnswer applies the peer's answer to our offer: codec, telephone-event
// payload type, remote address and direction. Media starts flowing.
func (l *Leg) AcceptAnswer(sdp []byte) error {
	s, err := ParseSDP(sdp)
	if err != nil {
		return err
	}
	l.mu.Lock()
	n, err := negotiateAnswer(s, l.secure, l.offered)
	if err == nil {
		err = l.secureLocked(&n)
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.apply(n)
	return nil
}

// AnswerOffer answers an offer (an initial INVITE, or a re-INVITE for hold
// and resume): one codec (the current one when the offer still has it), the
// offerer's telephone-event payload type, CN when offered, the mirrored
// direction, and port 0 for every other m= line. errors.Is(err,
// ErrNoCommonCodec) means the caller should answer 488.
func (l *Leg) AnswerOffer(sdp []byte) ([]byte, error) {
	s, err := ParseSDP(sdp)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	prefer, policy := l.prefer, l.secure
	l.mu.Unlock()
	if c := l.Codec(); c != "" {
		prefer = c // keep the codec across re-INVITEs
	}
	n, err := negotiateOffer(s, prefer, policy)
	if err != nil {
		return nil, err
	}
	var crypto []string
	if n.secure {
		l.mu.Lock()
		err = l.secureLocked(&n)
		if err == nil {
			crypto = []string{cryptoLine(n.crypto.tag, n.crypto.suite, l.srtpKey)}
		}
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	codecName := "PCMU/8000"
	if n.codec == "PCMA" {
		codecName = "PCMA/8000"
	}
	formats := []formatLine{{pt: n.codecPT, name: codecName}}
	if n.dtmfPT >= 0 {
		fmtp := n.dtmfFmtp
		if fmtp == "" {
			fmtp = "0-16"
		}
		formats = append(formats, formatLine{pt: uint8(n.dtmfPT), name: "telephone-event/8000", fmtp: fmtp})
	}
	if n.cnPT >= 0 {
		formats = append(formats, formatLine{pt: uint8(n.cnPT), name: "CN/8000"})
	}
	var before, after []string
	for i := range s.Media {
		switch {
		case i < n.mline:
			before = append(before, refusedLine(&s.Media[i]))
		case i > n.mline:
			after = append(after, refusedLine(&s.Media[i]))
		}
	}
	body := sdpMedia{local: l.local, port: l.port, formats: formats, dir: n.dir, proto: n.proto, crypto: crypto}.body(before, after)
	l.apply(n)
	return l.render(body), nil
}

// apply publishes a new negotiation.
func (l *Leg) apply(n negotiation) {
	n.remote = netip.AddrPortFrom(n.remote.Addr().Unmap(), n.remote.Port())
	st := &mediaState{
		neg:       n,
		signalled: n.remote,
		send:      n.dir.sends() && n.remote.Port() != 0 && !n.remote.Addr().IsUnspecified(),
		hold:      n.dir != SendRecv,
		alaw:      n.codec == "PCMA",
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st.sigSrc = l.sigSrc
	old := l.out.state.Load()
	if old != nil {
		st.gen = old.gen
	}
	if old == nil || old.signalled != st.signalled {
		st.gen++ // a new address: the source policy starts over
	}
	if !l.firstRemote.IsValid() && st.send {
		l.firstRemote = st.signalled.Addr()
	}
	l.out.state.Store(st)
	l.out.setRemote(l.targetLocked(st))
	// A new negotiation (answer, hold, resume) restarts the media timeout.
	if l.e.cfg.Consent == ConsentNone {
		l.watching = true
	}
	l.lastRx.Store(monoNow())
	l.armLocked()
}

// handleRTP processes one received datagram; it must not allocate.
func (l *Leg) handleRTP(pkt []byte, from netip.AddrPort, h *rtpHeader) {
	if !parseRTP(pkt, h) {
		l.stats.bad.Add(1)
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	st := l.out.state.Load()
	if pkt[1] >= 192 && pkt[1] <= 223 {
		// RTCP multiplexed on the RTP port (RFC 5761) by a peer that
		// assumed rtcp-mux: count it like the RTCP port does.
		l.stats.rtcp.Add(1)
		if st != nil && st.neg.sec != nil && !st.neg.sec.decryptRTCPMux(pkt) {
			l.stats.srtpDropped.Add(1)
			return
		}
		if st != nil {
			var accepted netip.Addr
			if l.latch.gen == st.gen {
				accepted = l.latch.addr.Addr()
			}
			if st.rtcpFrom(from.Addr(), accepted) {
				l.lastRx.Store(monoNow())
			}
		}
		return
	}
	if st == nil {
		l.stats.unexpected.Add(1) // no SDP yet: we do not know who may send
		l.stats.totals.rejected.Add(1)
		return
	}
	if sec := st.neg.sec; sec != nil {
		// Authenticate before the source policy sees the packet, so a
		// forged or replayed packet can neither latch nor refresh anything.
		var ok bool
		if pkt, ok = sec.decrypt(pkt); !ok || !parseRTP(pkt, h) {
			l.stats.srtpDropped.Add(1)
			return
		}
	}
	if !l.admit(st, from, h) {
		l.stats.unexpected.Add(1)
		l.stats.totals.rejected.Add(1)
		return
	}
	kind := st.neg.kinds[h.pt]
	if kind == kindNone {
		l.stats.unknownPT.Add(1)
		return
	}
	l.stats.packetsIn.Add(1)
	l.stats.totals.in.Add(1)
	l.seq.feed(h, l.stats.totals)
	l.lastRx.Store(monoNow())
	if kind == kindDTMF {
		if d, ok := l.dtmf.feed(h.ts, pkt[h.payloadOff:h.payloadEnd]); ok {
			l.stats.digits.Add(1)
			if l.nDigitFns.Load() > 0 {
				select {
				case l.digitCh <- d:
					if l.digitRun.CompareAndSwap(false, true) {
						go l.deliverDigits()
					}
				default: // a handler that stalls loses digits, not the reader
				}
			}
		}
	}
	if t := l.out.taps.Load(); t != nil && (kind == kindPCMU || kind == kindPCMA) {
		t.tap(false, h.ssrc, h.ts, pkt[h.payloadOff:h.payloadEnd], kind == kindPCMA)
	}
	if r := l.relay.Load(); r != nil {
		r.to.out.forward(r.src, h, pkt, kind)
	}
}

// handleRTCP processes one datagram of the RTCP port, read so the peer's
// reports do not pile up in the socket buffer, and counts it. RTCP from the
// peer keeps the media timeout from firing (a peer on hold may send only
// RTCP).
func (l *Leg) handleRTCP(pkt []byte, from netip.AddrPort) {
	if len(pkt) < 8 || pkt[0]>>6 != 2 {
		l.stats.bad.Add(1)
		return
	}
	l.stats.rtcp.Add(1)
	st := l.out.state.Load()
	if st == nil {
		return
	}
	if st.neg.sec != nil && !st.neg.sec.decryptRTCP(pkt) {
		l.stats.srtpDropped.Add(1)
		return
	}
	l.mu.Lock()
	var accepted netip.Addr
	if l.srcGen == st.gen {
		accepted = l.src.Addr()
	}
	l.mu.Unlock()
	if st.rtcpFrom(from.Addr().Unmap(), accepted) {
		l.lastRx.Store(monoNow())
	}
}

// OnDigit registers fn for every DTMF digit the peer sends (RFC 4733), each
// digit once. Handlers run in order on the leg's digit goroutine (started
// when a digit is queued, gone once none is), not on the reader, so a slow
// handler delays digits, never audio.
func (l *Leg) OnDigit(fn func(digit rune)) (remove func()) {
	d := &digitFn{fn: fn}
	l.digitMu.Lock()
	l.digitFns = append(l.digitFns, d)
	l.nDigitFns.Store(int32(len(l.digitFns)))
	l.digitMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.digitMu.Lock()
			for i, x := range l.digitFns {
				if x == d {
					l.digitFns = append(l.digitFns[:i:i], l.digitFns[i+1:]...)
					break
				}
			}
			l.nDigitFns.Store(int32(len(l.digitFns)))
			l.digitMu.Unlock()
		})
	}
}

func (l *Leg) deliverDigits() {
	for {
		select {
		case <-l.closed:
			return
		case d := <-l.digitCh:
			l.digitMu.Lock()
			fns := append([]*digitFn(nil), l.digitFns...)
			l.digitMu.Unlock()
			for _, f := range fns {
				f.fn(d)
			}
		default:
			// Queue empty: stop, unless a digit arrived after the check
			// and its reader found this goroutine still running.
			l.digitRun.Store(false)
			if len(l.digitCh) == 0 || !l.digitRun.CompareAndSwap(false, true) {
				return
			}
		}
	}
}

// SendDigits sends digits as RFC 4733 events: 100 ms each (an update every
// 20 ms, the end packet three times), 60 ms apart. Other audio of this leg
// pauses while a digit is sent. It blocks until all are sent.
func (l *Leg) SendDigits(digits string) error {
	if err := validateDigits(digits); err != nil {
		return err
	}
	st := l.out.state.Load()
	if st == nil || st.neg.dtmfPT < 0 {
		return fmt.Errorf("media: send digits: peer did not negotiate telephone-event")
	}
	var payload [4]byte
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	wait := func(d time.Duration) error {
		t.Reset(d)
		select {
		case <-t.C:
			return nil
		case <-l.closed:
			return ErrClosed
		}
	}
	const updates = 5 // 5 x 20 ms = 100 ms
	for i, d := range digits {
		ev, _ := digitEvent(d)
		src := &source{kind: "dtmf"}
		l.out.push(src)
		start := time.Now()
		var err error
		for k := 1; k <= updates && err == nil; k++ {
			putDTMF(payload[:], dtmfEvent{event: ev, volume: 10, duration: uint16(k * frameSamples)})
			l.out.sendEvent(src, payload[:], k == 1)
			err = wait(time.Until(start.Add(time.Duration(k) * frameDuration)))
		}
		for k := 0; k < 3 && err == nil; k++ {
			putDTMF(payload[:], dtmfEvent{event: ev, end: true, volume: 10, duration: updates * frameSamples})
			l.out.sendEvent(src, payload[:], false)
		}
		l.out.remove(src)
		if err != nil {
			return err
		}
		if i < len(digits)-1 {
			if err := wait(60 * time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stats returns a snapshot of the leg's counters.
func (l *Leg) Stats() LegStats {
	return LegStats{
		PacketsIn:        l.stats.packetsIn.Load(),
		PacketsOut:       l.stats.packetsOut.Load(),
		Bad:              l.stats.bad.Load(),
		UnknownPT:        l.stats.unknownPT.Load(),
		UnexpectedSource: l.stats.unexpected.Load(),
		Dropped:          l.stats.dropped.Load(),
		SendErrors:       l.stats.sendErrors.Load(),
		DigitsIn:         l.stats.digits.Load(),
		RTCPIn:           l.stats.rtcp.Load(),
		SRTPDropped:      l.stats.srtpDropped.Load(),
		Secure:           l.Secure(),
		Learned:          l.stats.learned.Load(),
		Latched:          l.stats.latched.Load(),
		Consent:          l.consent(),
		Remote:           l.out.remoteAddr(),
	}
}

func (l *Leg) consent() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.consentLocked()
}

// Done is closed when the leg is closed.
func (l *Leg) Done() <-chan struct{} { return l.closed }

// Close stops the leg: ends its bridge (the other leg returns to its
// previous source) and its music, closes the sockets, completes its
// recordings, leaves its poller (no packet of it is handled after that) and
// puts the port in quarantine. Safe to call more than once.
func (l *Leg) Close() {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.mu.Lock()
		br, music := l.bridge, l.music
		l.music = nil
		if l.timer != nil {
			l.timer.Stop()
		}
		l.mu.Unlock()
		if br != nil {
			br.disconnect()
		}
		if music != nil {
			music.b.unsubscribe(music)
		}
		l.poller.remove(l) // no handler of l runs after this
		l.closeSockets()
		l.e.releasePoller(l.poller)
		l.stopRecordings()
		l.e.ports.release(l.port)
		l.e.untrack(l)
	})
}

// closeSockets closes both sockets; the outbound stream stops sending
// first, under its lock, so no send can reach a reused descriptor.
func (l *Leg) closeSockets() {
	l.out.mu.Lock()
	l.out.sock = nil
	l.out.mu.Unlock()
	l.rtpSock.close()
	l.rtcpSock.close()
}
