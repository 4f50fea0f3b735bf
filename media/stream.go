package media

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaf/g711"
)

// epoch anchors the monotonic nanosecond clock the hot paths use (time.Since
// reads the monotonic clock and does not allocate).
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// G.711 law conversion tables, built once so relaying between a PCMU leg and
// a PCMA leg costs one lookup per byte.
var ulawToAlaw, alawToUlaw [256]byte

func init() {
	for i := range 256 {
		ulawToAlaw[i] = g711.Ulaw2AlawFrame(uint8(i))
		alawToUlaw[i] = g711.Alaw2UlawFrame(uint8(i))
	}
}

// source is one thing that feeds a leg's outbound stream: a music
// subscription, a prompt, the far leg of a bridge, a DTMF burst. Sources are
// compared by identity.
type source struct{ kind string }

// mediaState is an immutable snapshot of a leg's negotiated media, replaced
// as a whole on every offer/answer so the reader and the senders read it
// without locks.
type mediaState struct {
	neg       negotiation
	signalled netip.AddrPort // address and port from the SDP
	sigSrc    netip.Addr     // where the signalling came from (SetSignallingSource), or invalid
	send      bool           // we send (our direction sends and the peer gave an address)
	hold      bool           // not sendrecv: the call is on hold, only the hold timeout applies
	alaw      bool           // we send PCMA
	gen       uint64         // bumped when the signalled address changes (restart latching)
}

// outStream is a leg's one outbound RTP stream. It owns SSRC, sequence number
// and timestamp; sources stack on it and only the top one is heard. When the
// top changes, the next packet carries the marker bit, continues the sequence
// and advances the timestamp by the wall-clock time since the last packet,
// so the peer never sees an SSRC change.
type outStream struct {
	state atomic.Pointer[mediaState]
	top   atomic.Pointer[source]  // mirror of sources' last element for lock-free checks
	taps  atomic.Pointer[recTaps] // recordings of the leg (record.go): audio sent goes right

	mu      sync.Mutex
	sources []*source
	sock    *udpSock // nil once the leg closed
	remote  netip.AddrPort
	dst     sockaddr // remote in the kernel's form; dstOK: sendable
	dstOK   bool
	ssrc    uint32
	seq     uint16 // last sent
	ts      uint32 // timestamp of the last sent packet...
	at      int64  // ...and the monotonic time it stands for
	started bool
	last    *source // source of the last sent packet
	seqOff  uint16  // relay rewrite: out = in + off, fixed at each switch
	tsOff   uint32
	evTS    uint32 // timestamp of the DTMF event being sent
	buf     [rtpHeaderLen + 1500]byte
	stats   *legStats
}

func (s *outStream) push(src *source) {
	s.mu.Lock()
	s.sources = append(s.sources, src)
	s.top.Store(src)
	s.mu.Unlock()
}

// remove takes src off the stack wherever it is; the source below it (or the
// one that was on top) is heard again. Removing twice is harmless.
func (s *outStream) remove(src *source) {
	s.mu.Lock()
	for i, x := range s.sources {
		if x == src {
			s.sources = append(s.sources[:i], s.sources[i+1:]...)
			break
		}
	}
	if n := len(s.sources); n > 0 {
		s.top.Store(s.sources[n-1])
	} else {
		s.top.Store(nil)
	}
	s.mu.Unlock()
}

func (s *outStream) setRemote(ap netip.AddrPort) {
	s.mu.Lock()
	s.remote = ap
	s.dstOK = s.sock != nil && s.sock.setSockaddr(&s.dst, ap)
	s.mu.Unlock()
}

func (s *outStream) remoteAddr() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// switchTS is the timestamp of the first packet after a source switch: the
// last timestamp advanced by the time elapsed since it, and by at least one
// frame so the new audio never overlaps the packet already sent.
func (s *outStream) switchTS(now int64) uint32 {
	if !s.started {
		return s.ts
	}
	el := (now - s.at) * sampleRate / int64(time.Second)
	if el < frameSamples {
		el = frameSamples
	}
	return s.ts + uint32(el)
}

// ready reports whether a packet from src can go out now; mu is held.
func (s *outStream) ready(src *source) (*mediaState, bool) {
	if s.top.Load() != src {
		return nil, false
	}
	st := s.state.Load()
	if st == nil || !st.send || !s.remote.IsValid() {
		return nil, false
	}
	return st, true
}

// sendFrame sends one generated 20 ms frame (both laws given, the negotiated
// one is sent). adv is the number of samples since this source's previous
// frame. A music clock passes wait=false: it must never block on one leg,
// so a frame that meets contention is dropped and counted.
func (s *outStream) sendFrame(src *source, ulaw, alaw []byte, adv uint32, wait bool) {
	if s.top.Load() != src {
		return
	}
	if wait {
		s.mu.Lock()
	} else if !s.mu.TryLock() {
		s.stats.dropped.Add(1)
		return
	}
	st, ok := s.ready(src)
	if !ok {
		s.mu.Unlock()
		return
	}
	now := monoNow()
	marker := false
	var ts uint32
	if src != s.last || !s.started {
		marker, ts = true, s.switchTS(now)
	} else {
		ts = s.ts + adv
	}
	payload := ulaw
	if st.alaw {
		payload = alaw
	}
	s.seq++
	putRTPHeader(s.buf[:], marker, st.neg.codecPT, s.seq, ts, s.ssrc)
	n := copy(s.buf[rtpHeaderLen:], payload)
	if t := s.taps.Load(); t != nil {
		t.tap(true, s.ssrc, ts, payload, st.alaw)
	}
	s.ts, s.at, s.last, s.started = ts, now, src, true
	s.writeLocked(rtpHeaderLen + n)
	s.mu.Unlock()
}

// forward relays a packet received on the other leg of a bridge: payload
// type mapped to this leg's (audio, telephone-event, CN), audio converted
// between the laws by table, SSRC replaced, sequence and timestamp shifted by
// offsets fixed at the switch so the sender's timing, gaps and marker bits
// pass through unchanged.
func (s *outStream) forward(src *source, h *rtpHeader, pkt []byte, kind uint8) {
	if s.top.Load() != src {
		return
	}
	s.mu.Lock()
	st, ok := s.ready(src)
	if !ok {
		s.mu.Unlock()
		return
	}
	var pt uint8
	var table *[256]byte
	switch kind {
	case kindPCMU:
		pt = st.neg.codecPT
		if st.alaw {
			table = &ulawToAlaw
		}
	case kindPCMA:
		pt = st.neg.codecPT
		if !st.alaw {
			table = &alawToUlaw
		}
	case kindDTMF:
		if st.neg.dtmfPT < 0 {
			s.mu.Unlock()
			return
		}
		pt = uint8(st.neg.dtmfPT)
	case kindCN:
		if st.neg.cnPT < 0 {
			s.mu.Unlock()
			return
		}
		pt = uint8(st.neg.cnPT)
	default:
		s.mu.Unlock()
		return
	}
	payload := pkt[h.payloadOff:h.payloadEnd]
	if len(payload) > len(s.buf)-rtpHeaderLen {
		s.mu.Unlock() // larger than any datagram the reader accepts
		return
	}
	now := monoNow()
	marker := h.marker
	if src != s.last || !s.started {
		marker = true
		ts := s.switchTS(now)
		s.seqOff = s.seq + 1 - h.seq
		s.tsOff = ts - h.ts
		s.last, s.started = src, true
		s.seq = h.seq + s.seqOff - 1
		s.ts, s.at = ts, now
	}
	seq, ts := h.seq+s.seqOff, h.ts+s.tsOff
	putRTPHeader(s.buf[:], marker, pt, seq, ts, s.ssrc)
	dst := s.buf[rtpHeaderLen : rtpHeaderLen+len(payload)]
	if table != nil {
		for i, c := range payload {
			dst[i] = table[c]
		}
	} else {
		copy(dst, payload)
	}
	if t := s.taps.Load(); t != nil && (kind == kindPCMU || kind == kindPCMA) {
		t.tap(true, s.ssrc, ts, dst, st.alaw)
	}
	// Only move forward: a late (reordered) packet must not pull the stream's
	// position back, or the next switch would reuse sequence numbers.
	if int16(seq-s.seq) > 0 {
		s.seq = seq
	}
	if int32(ts-s.ts) > 0 {
		s.ts, s.at = ts, now
	}
	s.writeLocked(rtpHeaderLen + len(payload))
	s.mu.Unlock()
}

// sendEvent sends one RFC 4733 packet of the event src is sending. Every
// packet of an event carries the event's start timestamp; the first one
// carries the marker bit.
func (s *outStream) sendEvent(src *source, payload []byte, first bool) {
	s.mu.Lock()
	st, ok := s.ready(src)
	if !ok || st.neg.dtmfPT < 0 {
		s.mu.Unlock()
		return
	}
	now := monoNow()
	if first || src != s.last {
		first = true
		s.evTS = s.switchTS(now)
		s.ts, s.at, s.last, s.started = s.evTS, now, src, true
	}
	s.seq++
	putRTPHeader(s.buf[:], first, uint8(st.neg.dtmfPT), s.seq, s.evTS, s.ssrc)
	n := copy(s.buf[rtpHeaderLen:], payload)
	s.writeLocked(rtpHeaderLen + n)
	s.mu.Unlock()
}

func (s *outStream) writeLocked(n int) {
	pkt := s.buf[:n]
	if st := s.state.Load(); st != nil && st.neg.sec != nil {
		var err error
		if pkt, err = st.neg.sec.encrypt(pkt); err != nil {
			s.stats.sendErrors.Add(1)
			return
		}
	}
	if s.sock == nil {
		return // the leg closed
	}
	if !s.dstOK {
		s.stats.sendErrors.Add(1)
		return
	}
	if err := s.sock.sendTo(pkt, &s.dst); err != nil {
		s.stats.sendErrors.Add(1)
		return
	}
	s.stats.packetsOut.Add(1)
	s.stats.totals.out.Add(1)
}
