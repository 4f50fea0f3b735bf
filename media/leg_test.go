package media

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zaf/g711"

	"ccpbx/internal/pbxtest"
)

// frameIndex maps every frame of a sound (in one law) to its index.
func frameIndex(s *Sound, codec string) map[string]int {
	m := make(map[string]int, s.Frames())
	for i := range s.Frames() {
		m[string(s.Frame(i, codec))] = i
	}
	return m
}

// TestMusicOnHoldThenPrompt plays the shipped music to a real UDP socket,
// checks it is the music (energy, frame order, 20 ms pacing, continuous
// sequence), interrupts it with a prompt and checks the music comes back.
func TestMusicOnHoldThenPrompt(t *testing.T) {
	e := newEngine(t, Config{})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0 101", "a=rtpmap:101 telephone-event/8000")
	music, err := e.Sound(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := e.Sound(loggedInPath)
	if err != nil {
		t.Fatal(err)
	}
	musicFrames := frameIndex(music, "PCMU")

	stop, err := l.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	pkts := make([]rxPacket, n)
	for i := range pkts {
		pkts[i] = p.recv()
	}
	var energy float64
	for i, pk := range pkts {
		if pk.PayloadType != 0 || len(pk.Payload) != 160 {
			t.Fatalf("packet %d: PT %d, %d bytes", i, pk.PayloadType, len(pk.Payload))
		}
		for _, c := range pk.Payload {
			v := float64(g711.DecodeUlawFrame(c))
			energy += v * v
		}
		if _, ok := musicFrames[string(pk.Payload)]; !ok {
			t.Fatalf("packet %d is not a frame of the music", i)
		}
		if i == 0 {
			continue
		}
		prev := pkts[i-1]
		if pk.SSRC != prev.SSRC || pk.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("packet %d: SSRC %x seq %d after %x %d", i, pk.SSRC, pk.SequenceNumber, prev.SSRC, prev.SequenceNumber)
		}
		dts := pk.Timestamp - prev.Timestamp
		if dts == 0 || dts%160 != 0 {
			t.Fatalf("packet %d: timestamp step %d, want a multiple of 160", i, dts)
		}
		// The frame advances with the timestamp: the music is played in order.
		want := (musicFrames[string(prev.Payload)] + int(dts/160)) % music.Frames()
		if got := musicFrames[string(pk.Payload)]; got != want && !bytes.Equal(music.Frame(want, "PCMU"), pk.Payload) {
			t.Fatalf("packet %d: music frame %d, want %d", i, got, want)
		}
	}
	if rms := math.Sqrt(energy / (n * 160)); rms < 1000 {
		t.Fatalf("music RMS %.0f: this is (near) silence", rms)
	}
	// Paced at 20 ms: 50 frames cannot arrive faster than real time.
	if span := pkts[n-1].at.Sub(pkts[0].at); span < 45*frameDuration {
		t.Fatalf("50 frames arrived within %v: not paced at 20 ms", span)
	}

	// A prompt interrupts the music and hands back to it.
	done := make(chan error, 1)
	go func() { done <- l.Play(context.Background(), loggedInPath) }()
	last := pkts[n-1]
	next := func() rxPacket {
		pk := p.recv()
		if pk.SSRC != last.SSRC || pk.SequenceNumber != last.SequenceNumber+1 {
			t.Fatalf("SSRC %x seq %d after %x %d", pk.SSRC, pk.SequenceNumber, last.SSRC, last.SequenceNumber)
		}
		last = pk
		return pk
	}
	pk := next()
	for !pk.Marker { // music still in flight
		if _, ok := musicFrames[string(pk.Payload)]; !ok {
			t.Fatal("unmarked packet that is not music")
		}
		pk = next()
	}
	for i := range prompt.Frames() {
		if i > 0 {
			pk = next()
			if pk.Marker {
				t.Fatalf("prompt frame %d marked", i)
			}
		}
		if !bytes.Equal(pk.Payload, prompt.Frame(i, "PCMU")) {
			t.Fatalf("prompt frame %d differs", i)
		}
	}
	pk = next()
	if !pk.Marker {
		t.Fatal("music resumed without the marker bit")
	}
	for range 3 {
		if _, ok := musicFrames[string(pk.Payload)]; !ok {
			t.Fatal("after the prompt: not music")
		}
		pk = next()
	}
	if err := <-done; err != nil {
		t.Fatalf("Play: %v", err)
	}

	stop()
	p.drain()
	if pk, ok := p.tryRecv(100 * time.Millisecond); ok {
		t.Fatalf("packet after stop: seq %d", pk.SequenceNumber)
	}
	ticks, lost := e.MusicStats(mohPath)
	if ticks == 0 {
		t.Fatal("music clock did not tick")
	}
	t.Logf("music clock: %d ticks, %d frames lost", ticks, lost)
}

// TestMusicSharedClock: two legs on the same music hear the same frame at
// the same time, each in its own law and SSRC.
func TestMusicSharedClock(t *testing.T) {
	e := newEngine(t, Config{})
	pu, pa := newPeer(t), newPeer(t)
	lu := answeredLeg(t, e, pu, "0")
	la := answeredLeg(t, e, pa, "8")
	music, _ := e.Sound(mohPath)
	fu, fa := frameIndex(music, "PCMU"), frameIndex(music, "PCMA")
	stopU, err := lu.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	stopA, err := la.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	var lastA rxPacket
	for range 5 {
		lastA = pa.recv()
	}
	firstU := pu.recv()
	// Stop both at once, then compare the last frame each one heard.
	stopU()
	stopA()
	lastOf := func(p *peer, last rxPacket) rxPacket {
		for {
			pk, ok := p.tryRecv(100 * time.Millisecond)
			if !ok {
				return last
			}
			last = pk
		}
	}
	u, a := lastOf(pu, firstU), lastOf(pa, lastA)
	iu, iok := fu[string(u.Payload)]
	ia, aok := fa[string(a.Payload)]
	if !iok || !aok || u.PayloadType != 0 || a.PayloadType != 8 {
		t.Fatalf("PCMU ok=%v PT %d, PCMA ok=%v PT %d", iok, u.PayloadType, aok, a.PayloadType)
	}
	if d := iu - ia; d < -1 || d > 1 { // both follow the same clock
		t.Fatalf("legs at frames %d and %d", iu, ia)
	}
	if u.SSRC == a.SSRC {
		t.Fatal("two legs share an SSRC")
	}
}

// TestRelayTranscodesAndRemaps bridges a PCMU leg and a PCMA leg.
func TestRelayTranscodesAndRemaps(t *testing.T) {
	e := newEngine(t, Config{})
	pA, pB := newPeer(t), newPeer(t)
	a := answeredLeg(t, e, pA, "0 101", "a=rtpmap:101 telephone-event/8000")
	b := answeredLeg(t, e, pB, "8 96", "a=rtpmap:96 telephone-event/8000")
	music, _ := e.Sound(mohPath)
	musicA := frameIndex(music, "PCMA")

	stopB, err := b.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	first := pB.recv()
	disconnect, err := Connect(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(a, b); !errors.Is(err, ErrBridged) {
		t.Fatalf("second Connect: %v", err)
	}
	var digitsB []rune
	gotB := make(chan rune, 8)
	removeB := b.OnDigit(func(d rune) { gotB <- d })
	defer removeB()
	gotA := make(chan rune, 8)
	a.OnDigit(func(d rune) { gotA <- d })

	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(i)
	}
	// A -> B: PCMU becomes PCMA, on B's stream (same SSRC as its music).
	for range 3 {
		pA.send(a, 0, false, payload)
	}
	last := first
	var relayed []rxPacket
	for len(relayed) < 3 {
		pk := pB.recv()
		if pk.SSRC != first.SSRC || pk.SequenceNumber != last.SequenceNumber+1 {
			t.Fatalf("B stream: SSRC %x seq %d after %x %d", pk.SSRC, pk.SequenceNumber, first.SSRC, last.SequenceNumber)
		}
		last = pk
		if _, isMusic := musicA[string(pk.Payload)]; isMusic && len(relayed) == 0 {
			continue
		}
		relayed = append(relayed, pk)
	}
	if !relayed[0].Marker || relayed[1].Marker {
		t.Fatal("marker bit: want it on the first relayed packet only")
	}
	for i, pk := range relayed {
		if pk.PayloadType != 8 {
			t.Fatalf("relayed PT %d", pk.PayloadType)
		}
		for j, c := range pk.Payload {
			if c != g711.Ulaw2AlawFrame(payload[j]) {
				t.Fatalf("relayed packet %d byte %d not transcoded", i, j)
			}
		}
		if i > 0 && pk.Timestamp-relayed[i-1].Timestamp != 160 {
			t.Fatal("sender's timing not kept")
		}
	}

	// B -> A: PCMA becomes PCMU.
	pB.send(b, 8, false, payload)
	pk := pA.recv()
	if pk.PayloadType != 0 || pk.Payload[7] != g711.Alaw2UlawFrame(payload[7]) {
		t.Fatalf("B->A: PT %d", pk.PayloadType)
	}

	// Unknown payload type: dropped and counted, nothing relayed.
	pA.send(a, 18, false, payload[:20])
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return a.Stats().UnknownPT == 1 }, "unknown PT counted")

	// DTMF: A's telephone-event 101 reaches B as 96, and A detects the digit.
	var ev [4]byte
	putDTMF(ev[:], dtmfEvent{event: 5, volume: 10, duration: 160})
	pA.sendRaw(a, 101, true, 4000, 777, ev[:])
	putDTMF(ev[:], dtmfEvent{event: 5, end: true, volume: 10, duration: 320})
	pA.sendRaw(a, 101, false, 4001, 777, ev[:])
	pA.sendRaw(a, 101, false, 4002, 777, ev[:])
	for range 3 {
		pk := pB.recv()
		if pk.PayloadType != 96 || !bytes.Equal(pk.Payload[:1], []byte{5}) {
			t.Fatalf("DTMF relayed as PT %d payload %v", pk.PayloadType, pk.Payload)
		}
		last = pk
	}
	select {
	case d := <-gotA:
		if d != '5' {
			t.Fatalf("A detected %c", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("A detected no digit")
	}
	// B's own peer sends a digit with its payload type 96.
	putDTMF(ev[:], dtmfEvent{event: 11, end: true, volume: 10, duration: 800})
	for range 3 {
		pB.sendRaw(b, 96, false, 9000, 12345, ev[:])
	}
	select {
	case d := <-gotB:
		digitsB = append(digitsB, d)
	case <-time.After(5 * time.Second):
		t.Fatal("B detected no digit")
	}
	if string(digitsB) != "#" {
		t.Fatalf("B digits %q", string(digitsB))
	}
	for range 3 {
		if pk := pA.recv(); pk.PayloadType != 101 {
			t.Fatalf("B's DTMF reached A as PT %d", pk.PayloadType)
		}
	}

	// Disconnect: B returns to its music, same SSRC, continuous sequence.
	disconnect()
	disconnect() // idempotent
	pk = pB.recv()
	if pk.SSRC != first.SSRC || pk.SequenceNumber != last.SequenceNumber+1 || !pk.Marker {
		t.Fatalf("after disconnect: SSRC %x seq %d marker %v (last seq %d)", pk.SSRC, pk.SequenceNumber, pk.Marker, last.SequenceNumber)
	}
	if _, ok := musicA[string(pk.Payload)]; !ok {
		t.Fatal("B did not return to the music")
	}
	// A had no source before the bridge: it is silent again.
	pA.send(a, 0, false, payload)
	pA.drain()
	if _, ok := pA.tryRecv(100 * time.Millisecond); ok {
		t.Fatal("A still receives audio after disconnect")
	}
	if s := b.Stats(); s.PacketsIn < 4 || s.DigitsIn != 1 {
		t.Fatalf("B stats %+v", s)
	}
}

// TestDTMFSendDetect: one leg sends digits to another over real UDP.
func TestDTMFSendDetect(t *testing.T) {
	e := newEngine(t, Config{})
	a, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := b.AnswerOffer(a.Offer())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AcceptAnswer(answer); err != nil {
		t.Fatal(err)
	}
	got := make(chan rune, 16)
	b.OnDigit(func(d rune) { got <- d })
	if err := a.SendDigits("12#*9D"); err != nil {
		t.Fatal(err)
	}
	var s []rune
	for len(s) < 6 {
		select {
		case d := <-got:
			s = append(s, d)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %q", string(s))
		}
	}
	if string(s) != "12#*9D" {
		t.Fatalf("detected %q", string(s))
	}
	if err := a.SendDigits("1x"); err == nil {
		t.Fatal("invalid digit accepted")
	}
	a.Close()
	b.Close()
}

// TestSendDigitsPackets checks the RFC 4733 packets on the wire.
func TestSendDigitsPackets(t *testing.T) {
	e := newEngine(t, Config{})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0 100", "a=rtpmap:100 telephone-event/8000")
	if err := l.SendDigits("7"); err != nil {
		t.Fatal(err)
	}
	var pkts []rxPacket
	for range 8 {
		pkts = append(pkts, p.recv())
	}
	ends := 0
	for i, pk := range pkts {
		ev, ok := parseDTMF(pk.Payload)
		if !ok || pk.PayloadType != 100 || ev.event != 7 || pk.Timestamp != pkts[0].Timestamp {
			t.Fatalf("packet %d: PT %d %+v ts %d", i, pk.PayloadType, ev, pk.Timestamp)
		}
		if pk.Marker != (i == 0) {
			t.Fatalf("packet %d marker %v", i, pk.Marker)
		}
		if ev.end {
			ends++
		}
	}
	if ends != 3 {
		t.Fatalf("%d end packets, want 3", ends)
	}
	// Without telephone-event negotiated: an error, not silence.
	p2 := newPeer(t)
	l2 := answeredLeg(t, e, p2, "0")
	if err := l2.SendDigits("1"); err == nil {
		t.Fatal("SendDigits without telephone-event succeeded")
	}
}

// TestLatching: symmetric RTP to the port the expected source really sends
// from; packets from a second port of an expected IP are accepted at once,
// and the stream moves there after an uninterrupted run (NAT rebinding).
func TestLatching(t *testing.T) {
	e := newEngine(t, Config{})
	signalled, real, rebound := newPeer(t), newPeer(t), newPeer(t)
	l := answeredLeg(t, e, signalled, "0")
	if got := l.Stats().Remote.Port(); int(got) != signalled.port() {
		t.Fatalf("before latching: sending to %d", got)
	}
	real.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().Latched }, "latch")
	if got := l.Stats().Remote; got != real.addr() {
		t.Fatalf("latched to %v, want %v", got, real.addr())
	}
	for range DefaultProbation - 1 {
		rebound.send(l, 0, false, make([]byte, 160))
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().PacketsIn == DefaultProbation }, "accepted")
	if got := l.Stats().Remote; got != real.addr() {
		t.Fatalf("moved to %v before a full run", got)
	}
	rebound.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().Remote == rebound.addr() }, "follow")
	if s := l.Stats(); s.PacketsIn != DefaultProbation+1 || s.UnexpectedSource != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestLatchPolicy drives admit directly: expected sources at once, an
// unexpected one only after the probation and only while no expected
// source spoke.
func TestLatchPolicy(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stranger := netip.MustParseAddrPort("198.51.100.7:4000")
	run := func(st *mediaState, from netip.AddrPort, n int, ssrc uint32) (accepted int) {
		for i := range n {
			if l.admit(st, from, &rtpHeader{ssrc: ssrc, seq: uint16(100 + i)}) {
				accepted++
			}
		}
		return accepted
	}
	// Nothing expected heard: the stranger is learned by its 4th packet.
	st := &mediaState{signalled: netip.MustParseAddrPort("203.0.113.5:4000"), send: true, gen: 1}
	if got := run(st, stranger, DefaultProbation, 9); got != 1 {
		t.Fatalf("probation: %d of %d accepted, want the last one", got, DefaultProbation)
	}
	if !l.admit(st, stranger, &rtpHeader{ssrc: 9, seq: 500}) {
		t.Fatal("learned source refused")
	}
	// Another stranger cannot displace the learned one...
	if got := run(st, netip.MustParseAddrPort("198.51.100.8:4000"), 20, 10); got != 0 {
		t.Fatalf("second stranger: %d accepted", got)
	}
	// ...but the SDP address (any port) can, and then the learned one is out.
	if !l.admit(st, netip.MustParseAddrPort("203.0.113.5:5555"), &rtpHeader{ssrc: 1, seq: 1}) {
		t.Fatal("signalled IP with another port refused")
	}
	if got := run(st, stranger, 20, 9); got != 0 {
		t.Fatalf("after the expected source spoke, the learned one got %d packets in", got)
	}
	// Between expected sources: accepted at once, but the stream moves only
	// after a run that the current source does not interrupt.
	phone, other := netip.MustParseAddrPort("203.0.113.5:5555"), netip.MustParseAddrPort("203.0.113.5:6666")
	for i := range 3 * DefaultProbation {
		if !l.admit(st, other, &rtpHeader{ssrc: 7, seq: uint16(i)}) {
			t.Fatal("expected IP refused")
		}
		if i%2 == 1 && !l.admit(st, phone, &rtpHeader{ssrc: 1, seq: uint16(2 + i)}) {
			t.Fatal("current source refused")
		}
	}
	if l.latch.addr != phone {
		t.Fatalf("an interleaved run moved the stream to %v", l.latch.addr)
	}
	if got := run(st, other, DefaultProbation, 7); got != DefaultProbation || l.latch.addr != other {
		t.Fatalf("uninterrupted run: accepted %d, stream at %v", got, l.latch.addr)
	}
	// A run broken by a gap, another SSRC or another port starts over.
	st2 := &mediaState{signalled: netip.MustParseAddrPort("203.0.113.5:4000"), send: true, gen: 2}
	for i, h := range []rtpHeader{{ssrc: 1, seq: 1}, {ssrc: 1, seq: 2}, {ssrc: 1, seq: 4}, {ssrc: 2, seq: 5}, {ssrc: 2, seq: 6}, {ssrc: 2, seq: 7}} {
		if l.admit(st2, stranger, &h) {
			t.Fatalf("packet %d accepted before a clean run of %d", i, DefaultProbation)
		}
	}
	// The signalling source is expected like the SDP address.
	st3 := &mediaState{signalled: netip.MustParseAddrPort("192.168.1.20:4000"), sigSrc: netip.MustParseAddr("198.51.100.9"), send: true, gen: 3}
	if !l.admit(st3, netip.MustParseAddrPort("198.51.100.9:31000"), &rtpHeader{ssrc: 1, seq: 1}) {
		t.Fatal("signalling source refused")
	}
	if got := run(st3, stranger, 20, 9); got != 0 {
		t.Fatalf("stranger displaced the signalling source: %d accepted", got)
	}
}

// TestBadInputCounted: malformed packets, unknown payload types and packets
// before any SDP are dropped and counted, never a panic.
func TestBadInputCounted(t *testing.T) {
	e := newEngine(t, Config{})
	p := newPeer(t)
	fresh, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	p.send(fresh, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return fresh.Stats().UnexpectedSource == 1 }, "pre-SDP packet counted")

	l := answeredLeg(t, e, p, "0")
	for _, b := range [][]byte{
		{0x80, 0},
		{0x40, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0},
		{0x8f, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0},
		{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9},
	} {
		p.sendBytes(l, b)
	}
	p.send(l, 99, false, []byte{1})
	p.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		s := l.Stats()
		return s.Bad == 4 && s.UnknownPT == 1 && s.PacketsIn == 1
	}, "counters: 4 bad, 1 unknown PT, 1 in")
	// RTCP on port+1 is drained and counted.
	rtcp := []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if _, err := p.conn.WriteToUDPAddrPort(rtcp, netip.AddrPortFrom(loopback, uint16(l.LocalPort()+1))); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().RTCPIn == 1 }, "RTCP counted")
	// RTCP sent to the RTP port (rtcp-mux assumed) is counted as RTCP, not as
	// an unknown payload type.
	p.sendBytes(l, rtcp)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().RTCPIn == 2 }, "muxed RTCP counted")
	if s := l.Stats(); s.UnknownPT != 1 || s.Bad != 4 {
		t.Fatalf("muxed RTCP miscounted: %+v", s)
	}
}

func TestMediaTimeoutFires(t *testing.T) {
	e := newEngine(t, Config{MediaTimeout: 100 * time.Millisecond})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0")
	fired := make(chan struct{})
	l.OnMediaTimeout(func() { close(fired) })
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("no media timeout")
	}
}

func TestMediaTimeoutHoldAware(t *testing.T) {
	e := newEngine(t, Config{MediaTimeout: time.Hour})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0", "a=inactive")
	fired := 0
	l.OnMediaTimeout(func() { fired++ })
	l.lastRx.Store(monoNow() - int64(2*time.Hour))
	l.checkTimeout()
	if fired != 0 {
		t.Fatal("timed out while on hold")
	}
	if _, err := l.AnswerOffer(p.offer("0", "a=sendrecv")); err != nil {
		t.Fatal(err)
	}
	l.checkTimeout()
	if fired != 0 {
		t.Fatal("timed out right after resume")
	}
	l.lastRx.Store(monoNow() - int64(2*time.Hour))
	l.checkTimeout()
	l.checkTimeout()
	if fired != 1 {
		t.Fatalf("fired %d times, want once", fired)
	}
	// RTP keeps it alive.
	l2 := answeredLeg(t, e, p, "0")
	l2.OnMediaTimeout(func() { t.Error("timed out although RTP arrived") })
	l2.lastRx.Store(monoNow() - int64(2*time.Hour))
	p.send(l2, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l2.Stats().PacketsIn == 1 }, "packet")
	l2.checkTimeout()
}

// TestBeforeSDPAndAfterClose: Play and Music before the peer's SDP send
// nothing and do not fail; after Close they return ErrClosed.
func TestBeforeSDPAndAfterClose(t *testing.T) {
	short := wavFile(1, 1, 8000, 16, pcm16(make([]int16, 480)...))
	e := newEngine(t, Config{SoundsFS: fstest.MapFS{"short.wav": {Data: short}}})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	if l.Codec() != "" {
		t.Fatalf("codec %q before SDP", l.Codec())
	}
	stop, err := l.Music("short.wav")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Play(context.Background(), "short.wav"); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := l.SendDigits("1"); err == nil {
		t.Fatal("SendDigits before SDP succeeded")
	}
	if s := l.Stats(); s.PacketsOut != 0 {
		t.Fatalf("sent %d packets without a remote", s.PacketsOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Play(ctx, "short.wav"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Play: %v", err)
	}
	if err := l.Play(context.Background(), "nope.wav"); err == nil {
		t.Fatal("missing sound played")
	}
	other, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(l, other); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l.Close()
	if other.relay.Load() != nil || other.out.top.Load() != nil {
		t.Fatal("closing a leg left its bridge on the other leg")
	}
	if err := l.Play(context.Background(), "short.wav"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Play after Close: %v", err)
	}
	if _, err := l.Music("short.wav"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Music after Close: %v", err)
	}
	if _, err := Connect(l, other); err == nil {
		t.Fatal("Connect with a closed leg")
	}
	e.Close()
	if _, err := e.NewLeg(loopback); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewLeg after engine Close: %v", err)
	}
}

// TestLegsSharePollers: legs have no goroutine of their own; their sockets
// are read by at most one poller per CPU, which stop with the last leg.
func TestLegsSharePollers(t *testing.T) {
	e := newEngine(t, Config{})
	var legs []*Leg
	for range 20 {
		l, err := e.NewLeg(loopback)
		if err != nil {
			t.Fatal(err)
		}
		legs = append(legs, l)
	}
	// A poller started by the last NewLeg may not have been scheduled yet
	// on a loaded machine (it is not in the stack dump until it runs).
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(mediaGoroutines(), "ccpbx/media.(*poller).run")
	}, "a poller goroutine for 20 legs")
	if n := strings.Count(mediaGoroutines(), "ccpbx/media.(*poller).run"); n < 1 || n > runtime.GOMAXPROCS(0) {
		t.Errorf("%d poller goroutines for 20 legs, want 1..%d:\n%s", n, runtime.GOMAXPROCS(0), mediaGoroutines())
	}
	for _, g := range strings.Split(mediaGoroutines(), "\n\n") {
		if !strings.Contains(g, "(*poller).run") {
			t.Errorf("a goroutine other than the pollers runs for idle legs:\n%s", g)
		}
	}
	for _, l := range legs {
		l.Close()
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return mediaGoroutines() == "" },
		"the pollers to stop with the last leg; still running:\n%s", mediaStacks{})
}
