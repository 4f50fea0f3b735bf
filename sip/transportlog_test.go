package sip

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

const optionsMsg = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\n" +
	"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

// TestInputGuardDropsUnparsableDatagrams: a datagram that is not SIP is
// dropped before sipgo parses it, counted, and logged short at DEBUG only;
// SIP and keep-alives pass unchanged.
func TestInputGuardDropsUnparsableDatagrams(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		g := newInputGuard(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})).With("layer", "transport"), tcpLimits{})
		from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999}
		info := sipmsg.TransportReadProps{Transport: "UDP", RemoteAddr: from}
		for _, ok := range []string{optionsMsg, "\r\n\r\n", "\r\n"} {
			if got, err := g.filterUDP(info, []byte(ok)); err != nil || string(got) != ok {
				t.Fatalf("filter(%q) = %q, %v", ok, got, err)
			}
		}
		got, err := g.filterUDP(info, []byte(strings.Repeat("G", 5000)))
		if err != nil || got != nil {
			t.Fatalf("garbage passed: %d bytes, %v", len(got), err)
		}
		if g.dropped.Load() != 1 {
			t.Fatalf("dropped = %d", g.dropped.Load())
		}
		out := buf.String()
		if level == slog.LevelInfo && out != "" {
			t.Fatalf("at INFO a garbage datagram was logged: %q", out)
		}
		if level == slog.LevelDebug && (!strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "layer=transport") ||
			!strings.Contains(out, "source=127.0.0.1:5999") || len(out) > 500) {
			t.Fatalf("at DEBUG: %q", out)
		}
	}
}

// TestInputGuardClosesBrokenStream: a TCP connection passes SIP (also split
// across reads, and keep-alives between messages) and is closed, without
// handing the bytes on, at the first chunk that breaks the framing.
func TestInputGuardClosesBrokenStream(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g := newInputGuard(slog.New(slog.NewTextHandler(io.Discard, nil)), tcpLimits{})
	gl := g.listener(ln, "tcp")
	peer, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	conn, err := gl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	for _, chunk := range []string{optionsMsg[:40], optionsMsg[40:], "\r\n\r\n", optionsMsg} {
		if _, err := peer.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadAtLeast(conn, buf, len(chunk))
		if err != nil || string(buf[:n]) != chunk {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, chunk)
		}
	}
	if _, err := peer.Write([]byte("HELLO\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("broken stream read %q, %v; want EOF", buf[:n], err)
	}
	if g.dropped.Load() != 1 {
		t.Fatalf("dropped = %d", g.dropped.Load())
	}
}

// BenchmarkInputGuardUDP is what the guard adds to every datagram: one
// more parse of a typical request.
func BenchmarkInputGuardUDP(b *testing.B) {
	g := newInputGuard(slog.New(slog.NewTextHandler(io.Discard, nil)), tcpLimits{})
	info := sipmsg.TransportReadProps{Transport: "UDP", RemoteAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999}}
	data := []byte(optionsMsg)
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := g.filterUDP(info, data); out == nil {
			b.Fatal("dropped")
		}
	}
}

// TestInputGuardTimesOutSlowAndPartialMessages: a message that is not
// complete the message timeout after its first byte closes the connection
// however its bytes trickle in (a slowloris, a Content-Length that never
// arrives), and a silent connection is closed after the idle timeout.
func TestInputGuardTimesOutSlowAndPartialMessages(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	g := newInputGuard(slog.New(slog.NewTextHandler(io.Discard, nil)), tcpLimits{message: 300 * time.Millisecond, idle: 600 * time.Millisecond})
	gl := g.listener(ln, "tcp")
	partial := strings.Replace(optionsMsg, "Content-Length: 0", "Content-Length: 65000", 1) + strings.Repeat("x", 100)
	for _, tc := range []struct {
		name string
		send func(peer net.Conn, stop <-chan struct{})
	}{
		{"partial body", func(peer net.Conn, _ <-chan struct{}) { peer.Write([]byte(partial)) }},
		{"slowloris", func(peer net.Conn, stop <-chan struct{}) {
			// One byte per 50 ms: each read returns, none completes.
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := peer.Write([]byte{optionsMsg[i%20]}); err != nil {
					return
				}
			}
		}},
		{"silent", func(net.Conn, <-chan struct{}) {}},
		{"idle after a message", func(peer net.Conn, _ <-chan struct{}) { peer.Write([]byte(optionsMsg)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			conn, err := gl.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { defer close(done); tc.send(peer, stop) }()
			defer func() { close(stop); <-done }()
			before := g.timedOut.Load()
			buf := make([]byte, 4096)
			for {
				_, err := conn.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("read: %v", err)
				}
			}
			if g.timedOut.Load() != before+1 {
				t.Fatalf("connection ended without a timeout")
			}
		})
	}
	if n := gl.Open(); n != 0 {
		t.Fatalf("%d connections still counted open", n)
	}
}

// TestTopViaHasCookie: the guard hands a datagram to sipgo unparsed only
// when its top Via plainly carries an RFC 3261 branch; anything it is not
// sure of is parsed first, as before (false is "not sure", never "no").
func TestTopViaHasCookie(t *testing.T) {
	req := func(headers string) []byte {
		return []byte("REGISTER sip:127.0.0.1 SIP/2.0\r\n" + headers + "Call-ID: c\r\nContent-Length: 0\r\n\r\n")
	}
	for _, c := range []struct {
		msg  []byte
		want bool
	}{
		{[]byte(optionsMsg), true},
		{req("Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bK-1\r\n"), true},
		{req("v: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n"), true},
		{req("Max-Forwards: 70\r\nVIA : SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx, SIP/2.0/UDP 10.0.0.1;branch=1\r\n"), true},
		// The top value is RFC 2543's; the cookie is in the second.
		{req("Via: SIP/2.0/UDP 127.0.0.1;branch=1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"), false},
		{req("Via: SIP/2.0/UDP 127.0.0.1\r\n"), false},
		{req("Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx;BRANCH=y\r\n"), false},
		{req("Via: SIP/2.0/UDP 127.0.0.1 ; branch = z9hG4bKx\r\n"), false},
		{req("Via: SIP/2.0/UDP 127.0.0.1;x=\";branch=z9hG4bKx\";branch=1\r\n"), false},
		{req("Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n ;branch=2\r\n"), false},
		{req("From: <sip:a@b>;tag=1\r\n"), false},
		{[]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx"), false},
		{[]byte(strings.Repeat("G", 100)), false},
		{nil, false},
	} {
		if got := topViaHasCookie(c.msg); got != c.want {
			t.Errorf("topViaHasCookie(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}

// TestInputGuardQuietensSipgoParseFailures: a datagram that passes the
// guard unparsed but that sipgo cannot parse is dropped as quietly as the
// guard's own drops: sipgo's ERROR becomes a count and a short DEBUG line
// with the source; sipgo's other records pass.
func TestInputGuardQuietensSipgoParseFailures(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})).With("layer", "transport")
		g := newInputGuard(log, tcpLimits{})
		sipgoLog := slog.New(g.sipgoLog(log.Handler()))
		bad := "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nCSeq: x\r\n" + strings.Repeat("J", 3000) + "\r\n\r\n"
		from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999}
		got, err := g.filterUDP(sipmsg.TransportReadProps{Transport: "UDP", RemoteAddr: from}, []byte(bad))
		if err != nil || string(got) != bad {
			t.Fatalf("a plain datagram was not handed over as it came: %v", err)
		}
		// What sipgo's UDP transport logs when its parse fails.
		sipgoLog.Error("failed to parse", "data", bad, "error", errors.New("bad cseq"))
		if g.dropped.Load() != 1 {
			t.Fatalf("dropped = %d", g.dropped.Load())
		}
		out := buf.String()
		if level == slog.LevelInfo && out != "" {
			t.Fatalf("at INFO sipgo's parse failure was logged: %q", out)
		}
		if level == slog.LevelDebug && (!strings.Contains(out, "level=DEBUG") || strings.Contains(out, "level=ERROR") ||
			!strings.Contains(out, "source=127.0.0.1:5999") || len(out) > 600) {
			t.Fatalf("at DEBUG: %q", out)
		}
		buf.Reset()
		sipgoLog.Error("something else", "n", 1)
		if !strings.Contains(buf.String(), "level=ERROR") {
			t.Fatalf("sipgo's other errors are lost: %q", buf.String())
		}
	}
}
