package media

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"

	"ccpbx/internal/pbxtest"
	"ccpbx/sounds"
)

const (
	mohPath      = "ivr/common/music-on-hold.wav"
	loggedInPath = "ivr/common/ivr-you_are_now_logged_in.wav"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// TestMain fails the package if any test leaves a goroutine running.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEngine builds an engine with the shipped sounds and checks at cleanup
// that closing it ends every goroutine it started.
func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.SoundsFS == nil {
		cfg.SoundsFS = sounds.FS
	}
	if cfg.PortQuarantine == 0 {
		cfg.PortQuarantine = 50 * time.Millisecond
	}
	e, err := NewEngine(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		pbxtest.WaitFor(t, 10*time.Second, func() bool { return mediaGoroutines() == "" },
			"the goroutines of package media to end after Engine.Close; still running:\n%s", mediaStacks{})
	})
	return e
}

// mediaStacks prints the stacks of goroutines running code of this
// package's types (readers, clocks, digit delivery). WaitFor formats it only
// when it fails, so the stacks are those at the moment it gave up.
type mediaStacks struct{}

func (mediaStacks) String() string { return mediaGoroutines() }

// mediaGoroutines returns the stacks of goroutines running code of this
// package's types.
func mediaGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ccpbx/media.(*") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// peer is a fake phone: a UDP socket on 127.0.0.1 that speaks RTP.
type peer struct {
	t    testing.TB
	conn *net.UDPConn
	seq  uint16
	ts   uint32
	ssrc uint32
}

func newPeer(t testing.TB) *peer { return newPeerOn(t, "127.0.0.1") }

// newPeerOn is a peer whose socket is bound to ip, another loopback address
// such as 127.0.0.2 (Linux routes all of 127/8 to lo).
func newPeerOn(t testing.TB, ip string) *peer {
	t.Helper()
	if ip == "127.0.0.1" {
		return &peer{t: t, conn: pbxtest.ListenUDP(t), seq: 1000, ts: 50000, ssrc: 0xabcdef}
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{t: t, conn: c, seq: 1000, ts: 50000, ssrc: 0xabcdef}
}

func (p *peer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// offer is an SDP offer from this peer with the given m= formats and extra
// attribute lines.
func (p *peer) offer(formats string, attrs ...string) []byte {
	return offerAt(p.addr(), formats, attrs...)
}

// offerAt is an SDP offer whose c= and m= name at.
func offerAt(at netip.AddrPort, formats string, attrs ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=peer 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", at.Addr(), at.Addr())
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\n", at.Port(), formats)
	for _, a := range attrs {
		b.WriteString(a + "\r\n")
	}
	return []byte(b.String())
}

// send sends one RTP packet to leg l.
func (p *peer) send(l *Leg, pt uint8, marker bool, payload []byte) {
	p.t.Helper()
	p.seq++
	p.ts += 160
	p.sendRaw(l, pt, marker, p.seq, p.ts, payload)
}

func (p *peer) sendRaw(l *Leg, pt uint8, marker bool, seq uint16, ts uint32, payload []byte) {
	p.t.Helper()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: p.ssrc}, Payload: payload}
	b, err := pkt.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendBytes(l, b)
}

func (p *peer) sendBytes(l *Leg, b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(loopback, uint16(l.LocalPort()))); err != nil {
		p.t.Fatal(err)
	}
}

type rxPacket struct {
	rtp.Packet
	at time.Time
}

// recv reads one RTP packet, failing the test after a generous wait.
func (p *peer) recv() rxPacket {
	p.t.Helper()
	pkt, ok := p.tryRecv(5 * time.Second)
	if !ok {
		p.t.Fatal("no RTP packet arrived")
	}
	return pkt
}

func (p *peer) tryRecv(wait time.Duration) (rxPacket, bool) {
	p.t.Helper()
	buf := make([]byte, 1500)
	p.conn.SetReadDeadline(time.Now().Add(wait))
	n, err := p.conn.Read(buf)
	if err != nil {
		return rxPacket{}, false
	}
	var r rxPacket
	r.at = time.Now()
	if err := r.Unmarshal(buf[:n]); err != nil {
		p.t.Fatalf("leg sent malformed RTP: %v", err)
	}
	return r, true
}

// drain discards whatever is queued.
func (p *peer) drain() {
	for {
		if _, ok := p.tryRecv(30 * time.Millisecond); !ok {
			return
		}
	}
}

// answeredLeg is a leg that answered p's offer.
func answeredLeg(t testing.TB, e *Engine, p *peer, formats string, attrs ...string) *Leg {
	t.Helper()
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	if _, err := l.AnswerOffer(p.offer(formats, attrs...)); err != nil {
		t.Fatal(err)
	}
	return l
}

// readAs hands pkt to l's packet handler as l's reader does: under its
// poller's lock, so a test calling it directly and the poller reading l's
// socket never run the handler at once.
func readAs(l *Leg, pkt []byte, from netip.AddrPort, h *rtpHeader) {
	l.poller.mu.Lock()
	l.handleRTP(pkt, from, h)
	l.poller.mu.Unlock()
}
