package media

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/zaf/g711"

	"ccpbx/internal/pbxtest"
)

// srtpPeer is a fake SRTP phone: a peer with its own SDES key, and the
// contexts built from the key exchange.
type srtpPeer struct {
	*peer
	key    [sdesKeyLen]byte
	tx, rx *srtp.Context
}

func newSRTPPeer(t testing.TB) *srtpPeer {
	k, err := newSDESKey()
	if err != nil {
		t.Fatal(err)
	}
	return &srtpPeer{peer: newPeer(t), key: k}
}

func (p *srtpPeer) cryptoAttr(tag int, suite string) string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s", tag, suite, base64.StdEncoding.EncodeToString(p.key[:]))
}

// savpOffer is an RTP/SAVP offer of PCMU with our key for suite.
func (p *srtpPeer) savpOffer(suite string) []byte {
	return bytes.Replace(p.offer("0", p.cryptoAttr(1, suite)), []byte("RTP/AVP"), []byte("RTP/SAVP"), 1)
}

// keyFrom reads the leg's a=crypto line and builds both contexts.
func (p *srtpPeer) keyFrom(t testing.TB, sdp []byte) {
	t.Helper()
	s, err := ParseSDP(sdp)
	if err != nil || len(s.Media) == 0 || len(s.Media[0].Crypto) == 0 {
		t.Fatalf("no a=crypto in %q (%v)", sdp, err)
	}
	sd, ok := s.Media[0].Crypto[0].usable()
	if !ok {
		t.Fatalf("unusable a=crypto %+v", s.Media[0].Crypto[0])
	}
	prof := suites[sd.suite].profile
	if p.tx, err = srtp.CreateContext(p.key[:16], p.key[16:], prof); err != nil {
		t.Fatal(err)
	}
	if p.rx, err = srtp.CreateContext(sd.key[:16], sd.key[16:], prof); err != nil {
		t.Fatal(err)
	}
}

// sealed is one encrypted packet of payload from this peer.
func (p *srtpPeer) sealed(t testing.TB, payload []byte) []byte {
	t.Helper()
	p.seq++
	p.ts += 160
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}, Payload: payload}
	raw, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := p.tx.EncryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// recvSealed reads one packet as it crossed the wire and its decryption.
func (p *srtpPeer) recvSealed(t testing.TB) (wire, plain rtp.Packet) {
	t.Helper()
	buf := make([]byte, 1500)
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := p.conn.Read(buf)
	if err != nil {
		t.Fatal("no SRTP packet arrived")
	}
	if err := wire.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
		t.Fatal(err)
	}
	dec, err := p.rx.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("leg sent SRTP we cannot authenticate: %v", err)
	}
	if err := plain.Unmarshal(dec); err != nil {
		t.Fatal(err)
	}
	return wire, plain
}

// tone is 20 ms of a 1 kHz tone, µ-law encoded: content a receiver can
// recognise byte for byte after a relay that does not transcode.
func tone() []byte {
	pcm := make([]byte, 320)
	for i := range 160 {
		v := int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return g711.EncodeUlaw(pcm)
}

// TestSRTPBridgeToPlain: an SRTP agent bridged to a plain trunk carries the
// tone both ways; what crosses the agent's wire is not the G.711 encoding
// of the tone; a tampered and a replayed packet are dropped and counted.
func TestSRTPBridgeToPlain(t *testing.T) {
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"} {
		t.Run(suite, func(t *testing.T) {
			e := newEngine(t, Config{})
			agent := newSRTPPeer(t)
			la, err := e.NewLeg(loopback)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(la.Close)
			la.SetSecureMedia(SecureMandatory)
			ans, err := la.AnswerOffer(agent.savpOffer(suite))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(ans, []byte("RTP/SAVP")) || !bytes.Contains(ans, []byte("a=crypto:1 "+suite+" inline:")) {
				t.Fatalf("answer is not SRTP with suite %s:\n%s", suite, ans)
			}
			agent.keyFrom(t, ans)
			trunk := newPeer(t)
			lb := answeredLeg(t, e, trunk, "0")
			disconnect, err := Connect(la, lb)
			if err != nil {
				t.Fatal(err)
			}
			defer disconnect()
			tn := tone()

			// agent -> trunk: decrypted in the relay.
			first := agent.sealed(t, tn)
			agent.sendBytes(la, first)
			if got := trunk.recv(); !bytes.Equal(got.Payload, tn) {
				t.Fatalf("trunk heard %x, want the tone", got.Payload[:8])
			}
			// trunk -> agent: encrypted, and not the tone on the wire.
			trunk.send(lb, 0, false, tn)
			wire, plain := agent.recvSealed(t)
			if bytes.Contains(wire.Payload, tn[:16]) {
				t.Fatal("the agent's wire carries the plaintext tone")
			}
			if !bytes.Equal(plain.Payload, tn) {
				t.Fatalf("agent decrypted %x, want the tone", plain.Payload[:8])
			}

			in := la.Stats().PacketsIn
			tampered := agent.sealed(t, tn)
			tampered[20] ^= 0x01
			agent.sendBytes(la, tampered)
			pbxtest.WaitFor(t, 5*time.Second, func() bool { return la.Stats().SRTPDropped == 1 }, "the tampered packet to be dropped")
			agent.sendBytes(la, first) // a replay of an authentic packet
			pbxtest.WaitFor(t, 5*time.Second, func() bool { return la.Stats().SRTPDropped == 2 }, "the replayed packet to be dropped")
			plainPkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7, SSRC: 5}, Payload: tn}
			raw, _ := plainPkt.Marshal()
			agent.sendBytes(la, raw) // plain RTP on an SRTP leg
			pbxtest.WaitFor(t, 5*time.Second, func() bool { return la.Stats().SRTPDropped == 3 }, "the plain packet to be dropped")
			if got := la.Stats().PacketsIn; got != in {
				t.Fatalf("dropped packets were accepted: PacketsIn %d -> %d", in, got)
			}
			if !la.Stats().Secure || lb.Stats().Secure {
				t.Fatal("Secure should be true for the agent leg only")
			}
		})
	}
}

// TestSRTPGeneratedAudioEncrypted: what the leg generates itself (DTMF
// here, music and prompts alike: one write path) goes out encrypted.
func TestSRTPGeneratedAudioEncrypted(t *testing.T) {
	e := newEngine(t, Config{})
	agent := newSRTPPeer(t)
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	offer := bytes.Replace(agent.offer("0 101", "a=rtpmap:101 telephone-event/8000", agent.cryptoAttr(3, "AES_CM_128_HMAC_SHA1_32")),
		[]byte("RTP/AVP"), []byte("RTP/SAVP"), 1)
	ans, err := l.AnswerOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	agent.keyFrom(t, ans)
	stop, err := l.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for range 3 {
		_, plain := agent.recvSealed(t)
		if plain.PayloadType != 0 || len(plain.Payload) != 160 {
			t.Fatalf("music packet: pt %d, %d bytes", plain.PayloadType, len(plain.Payload))
		}
	}
}

// TestSRTPPolicy: rtp_secure_media decides what is offered and accepted.
func TestSRTPPolicy(t *testing.T) {
	e := newEngine(t, Config{})
	p := newSRTPPeer(t)
	plainOffer := p.offer("0")
	savp := p.savpOffer("AES_CM_128_HMAC_SHA1_80")
	bestEffort := p.offer("0", p.cryptoAttr(1, "AES_CM_128_HMAC_SHA1_80"))
	leg := func(m SecureMedia) *Leg {
		l, err := e.NewLeg(loopback)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		l.SetSecureMedia(m)
		return l
	}
	for _, c := range []struct {
		policy      SecureMedia
		offer       []byte
		refused     bool
		secure      bool
		answerProto string
	}{
		{SecureMandatory, plainOffer, true, false, ""},
		{SecureMandatory, savp, false, true, "RTP/SAVP"},
		{SecureMandatory, bestEffort, false, true, "RTP/AVP"},
		{SecureOptional, plainOffer, false, false, "RTP/AVP"},
		{SecureOptional, savp, false, true, "RTP/SAVP"},
		{SecureDefault, savp, false, true, "RTP/SAVP"},
		{SecureDefault, plainOffer, false, false, "RTP/AVP"},
		{SecureForbidden, savp, true, false, ""},
		{SecureForbidden, bestEffort, false, false, "RTP/AVP"},
	} {
		l := leg(c.policy)
		ans, err := l.AnswerOffer(c.offer)
		if c.refused {
			if !errors.Is(err, ErrNoCommonCodec) {
				t.Errorf("%v: offer %q accepted (err %v), want 488", c.policy, firstM(c.offer), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.policy, err)
			continue
		}
		if l.Secure() != c.secure || !strings.Contains(string(ans), " "+c.answerProto+" ") ||
			strings.Contains(string(ans), "a=crypto") != c.secure {
			t.Errorf("%v, offer %q: secure %v, answer\n%s", c.policy, firstM(c.offer), l.Secure(), ans)
		}
	}
	// Our offers.
	for _, c := range []struct {
		policy SecureMedia
		proto  string
		crypto bool
	}{{SecureDefault, "RTP/AVP", false}, {SecureForbidden, "RTP/AVP", false}, {SecureOptional, "RTP/AVP", true}, {SecureMandatory, "RTP/SAVP", true}} {
		o := string(leg(c.policy).Offer())
		if !strings.Contains(o, " "+c.proto+" ") || strings.Contains(o, "a=crypto:1 AES_CM_128_HMAC_SHA1_80") != c.crypto ||
			strings.Contains(o, "a=crypto:2 AES_CM_128_HMAC_SHA1_32") != c.crypto {
			t.Errorf("%v offer:\n%s", c.policy, o)
		}
	}
	// Answers to our offers.
	m := leg(SecureMandatory)
	m.Offer()
	if err := m.AcceptAnswer(p.offer("0")); !errors.Is(err, ErrSecureRequired) {
		t.Errorf("mandatory accepted a plain answer: %v", err)
	}
	o := leg(SecureOptional)
	o.Offer()
	if err := o.AcceptAnswer(p.offer("0")); err != nil || o.Secure() {
		t.Errorf("optional, plain answer: %v secure %v", err, o.Secure())
	}
	o2 := leg(SecureOptional)
	o2.Offer()
	if err := o2.AcceptAnswer(p.offer("0", p.cryptoAttr(2, "AES_CM_128_HMAC_SHA1_32"))); err != nil || !o2.Secure() {
		t.Errorf("optional, SRTP answer: %v secure %v", err, o2.Secure())
	}
}

// TestSRTPOfferAnswerBothWays: two legs, one offering SRTP, the other
// answering it, carry audio end to end (our offer and answer interoperate).
func TestSRTPOfferAnswerBothWays(t *testing.T) {
	e := newEngine(t, Config{})
	a, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.SetSecureMedia(SecureMandatory)
	ans, err := b.AnswerOffer(a.Offer())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AcceptAnswer(ans); err != nil {
		t.Fatal(err)
	}
	if !a.Secure() || !b.Secure() {
		t.Fatal("not secure")
	}
	stop, err := a.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return b.Stats().PacketsIn >= 3 }, "b to accept a's SRTP music")
	if b.Stats().SRTPDropped != 0 {
		t.Fatalf("b dropped %d packets", b.Stats().SRTPDropped)
	}
}

func firstM(sdp []byte) string {
	for _, l := range strings.Split(string(sdp), "\r\n") {
		if strings.HasPrefix(l, "m=") {
			return l
		}
	}
	return ""
}

func TestParseCryptoBounds(t *testing.T) {
	for _, line := range []string{
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:short",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("A", 200),
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4",
		"a=crypto:1 F8_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz UNENCRYPTED_SRTP",
	} {
		s, err := ParseSDP(offerAt(netip.MustParseAddrPort("127.0.0.1:4000"), "0", line))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := chooseCrypto(&s.Media[0]); ok {
			t.Errorf("accepted %q", line)
		}
	}
	s, _ := ParseSDP(offerAt(netip.MustParseAddrPort("127.0.0.1:4000"), "0",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20"))
	if _, ok := chooseCrypto(&s.Media[0]); !ok {
		t.Error("refused a key with a lifetime")
	}
}

// srtpBridge is an SRTP agent leg bridged to a plain trunk leg, and the
// agent's encrypted packets ready to feed the agent leg's reader.
func srtpBridge(t testing.TB, e *Engine) (agent *srtpPeer, la, lb *Leg, trunk *peer) {
	agent = newSRTPPeer(t)
	la, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(la.Close)
	ans, err := la.AnswerOffer(agent.savpOffer("AES_CM_128_HMAC_SHA1_80"))
	if err != nil {
		t.Fatal(err)
	}
	agent.keyFrom(t, ans)
	trunk = newPeer(t)
	trunk.conn.SetReadBuffer(1 << 20)
	lb = answeredLeg(t, e, trunk, "8")
	disconnect, err := Connect(la, lb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(disconnect)
	return agent, la, lb, trunk
}

// TestSRTPHotPathsDoNotAllocate: decrypting and relaying an SRTP packet,
// and encrypting a relayed or generated one, allocate nothing.
func TestSRTPHotPathsDoNotAllocate(t *testing.T) {
	e := newEngine(t, Config{})
	agent, la, lb, trunk := srtpBridge(t, e)
	from := agent.addr()
	tn := tone()
	// Pre-seal enough packets: sealing in the loop would count the test
	// peer's own allocations.
	const n = 1100
	sealed := make([][]byte, n)
	for i := range sealed {
		sealed[i] = agent.sealed(t, tn)
	}
	var h rtpHeader
	i := 0
	in := testing.AllocsPerRun(1000, func() {
		readAs(la, sealed[i], from, &h)
		i++
	})
	if in != 0 {
		t.Errorf("SRTP packet decrypted and relayed: %v allocs", in)
	}
	if la.Stats().SRTPDropped != 0 || lb.Stats().PacketsOut == 0 {
		t.Fatalf("relay failed: dropped %d, out %d", la.Stats().SRTPDropped, lb.Stats().PacketsOut)
	}
	plain := make([]byte, 12+160)
	putRTPHeader(plain, false, 8, 1, 160, 99)
	tFrom := trunk.addr()
	seq := uint16(1)
	out := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(plain[2:], seq)
		readAs(lb, plain, tFrom, &h)
	})
	if out != 0 {
		t.Errorf("plain packet relayed and encrypted: %v allocs", out)
	}
	music, _ := e.Sound(mohPath)
	src := &source{kind: "music"}
	la.out.push(src)
	k := 0
	gen := testing.AllocsPerRun(1000, func() {
		u, al := music.frames(k % music.Frames())
		la.out.sendFrame(src, u, al, frameSamples, false)
		k++
	})
	if gen != 0 {
		t.Errorf("generated SRTP packet: %v allocs", gen)
	}
}

// BenchmarkRelayPacketSRTP: BenchmarkRelayPacket with the receiving leg on
// SRTP: decrypt, relay, transcode, send plain.
func BenchmarkRelayPacketSRTP(b *testing.B) {
	e := newEngine(b, Config{})
	agent, la, _, _ := srtpBridge(b, e)
	from := agent.addr()
	tn := tone()
	sealed := make([][]byte, 1<<16)
	for i := range sealed {
		sealed[i] = agent.sealed(b, tn)
	}
	var h rtpHeader
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(sealed) {
			b.StopTimer()
			// The sequence wrapped: a new SSRC starts a fresh replay window.
			agent.ssrc++
			for j := range sealed {
				sealed[j] = agent.sealed(b, tn)
			}
			i = 0
			b.StartTimer()
		}
		readAs(la, sealed[i], from, &h)
	}
}

// BenchmarkEncryptPacketSRTP: a plain packet relayed onto an SRTP leg.
func BenchmarkEncryptPacketSRTP(b *testing.B) {
	e := newEngine(b, Config{})
	_, _, lb, trunk := srtpBridge(b, e)
	plain := make([]byte, 12+160)
	putRTPHeader(plain, false, 8, 1, 160, 99)
	from := trunk.addr()
	var h rtpHeader
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(plain[2:], uint16(i))
		binary.BigEndian.PutUint32(plain[4:], uint32(i)*160)
		readAs(lb, plain, from, &h)
	}
}

// BenchmarkSRTPCrypto: the cipher work alone on a 20 ms PCMU packet
// (AES-CM + HMAC-SHA1-80), what an SRTP leg adds to each packet it
// receives (decrypt) or sends (encrypt), without the socket.
func BenchmarkSRTPCrypto(b *testing.B) {
	var lk, rk [sdesKeyLen]byte
	lk[0], rk[0] = 1, 2
	tx, err := newSRTPSession(0, &lk, &rk)
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, rtpHeaderLen+160)
	b.Run("encrypt", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			putRTPHeader(pkt, false, 0, uint16(i), uint32(i)*160, 7)
			if _, err := tx.encrypt(pkt); err != nil {
				b.Fatal(err)
			}
		}
	})
	sealed := make([][]byte, 1<<15)
	for i := range sealed {
		putRTPHeader(pkt, false, 0, uint16(i), uint32(i)*160, 8)
		out, err := tx.encrypt(pkt)
		if err != nil {
			b.Fatal(err)
		}
		sealed[i] = append([]byte(nil), out...)
	}
	b.Run("decrypt", func(b *testing.B) {
		rx, _ := newSRTPSession(0, &rk, &lk)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i == len(sealed) {
				b.StopTimer()
				rx, _ = newSRTPSession(0, &rk, &lk) // a fresh replay window for the same packets
				i = 0
				b.StartTimer()
			}
			if _, ok := rx.decrypt(sealed[i]); !ok {
				b.Fatal("decrypt failed")
			}
		}
	})
}
