package pbxtest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
)

// loopback is where every test socket binds: tests never listen on a
// routable address.
var loopback = net.IPv4(127, 0, 0, 1)

// ListenUDP returns a UDP socket on 127.0.0.1 and a port the kernel chose,
// closed when the test ends. Hand the socket itself to the code under test
// where it accepts one; its port is conn.LocalAddr().(*net.UDPAddr).Port.
func ListenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: loopback})
	if err != nil {
		t.Fatalf("pbxtest: listen udp 127.0.0.1:0: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ListenTCP returns a TCP listener on 127.0.0.1 and a port the kernel chose,
// closed when the test ends.
func ListenTCP(t testing.TB) *net.TCPListener {
	t.Helper()
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: loopback})
	if err != nil {
		t.Fatalf("pbxtest: listen tcp 127.0.0.1:0: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// PortFor returns a port number on 127.0.0.1 for a subprocess (or a
// component that takes a number, not a socket) to bind itself, on every
// network given ("udp", "tcp"; a SIP profile listens on both). The kernel
// picks it by binding port 0; it is released before PortFor returns, so
// something else may take it before the subprocess binds: start the
// subprocess inside [RetryAddrInUse] with a fresh PortFor per attempt. Where
// the code under test accepts a socket, use [ListenUDP] or [ListenTCP]
// instead.
func PortFor(t testing.TB, networks ...string) int {
	t.Helper()
	if len(networks) == 0 {
		t.Fatal("pbxtest.PortFor: no network given")
	}
	var lastErr error
	for range 50 {
		first, err := bind(networks[0], 0)
		if err != nil {
			t.Fatalf("pbxtest: %v", err)
		}
		port := localPort(first)
		held := []interface{ Close() error }{first}
		for _, n := range networks[1:] {
			c, err := bind(n, port)
			if err != nil {
				if !IsAddrInUse(err) {
					t.Fatalf("pbxtest: %v", err)
				}
				lastErr = err
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == len(networks) {
			return port
		}
	}
	t.Fatalf("pbxtest: no port free on all of %v after 50 tries: %v", networks, lastErr)
	return 0
}

// UDPPortRange returns the first port of n consecutive UDP ports on
// 127.0.0.1, starting at an even port, that were all free together: for an
// RTP port range that a component allocates from by itself. Like [PortFor]
// the ports are released before it returns; use it inside [RetryAddrInUse].
func UDPPortRange(t testing.TB, n int) int {
	t.Helper()
	var lastErr error
	for range 50 {
		probe, err := bind("udp", 0)
		if err != nil {
			t.Fatalf("pbxtest: %v", err)
		}
		first := localPort(probe) &^ 1
		probe.Close()
		if first+n-1 > 65535 {
			continue
		}
		var held []interface{ Close() error }
		for p := first; p < first+n; p++ {
			c, err := bind("udp", p)
			if err != nil {
				lastErr = err
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == n {
			return first
		}
	}
	t.Fatalf("pbxtest: no %d consecutive free UDP ports after 50 tries: %v", n, lastErr)
	return 0
}

// RetryAddrInUse runs attempt up to attempts times while it fails because a
// port it was given was taken meanwhile (see [IsAddrInUse]); each attempt
// must choose fresh ports. Any other error, or the last address-in-use
// error, fails the test: a taken port never skips a test silently.
func RetryAddrInUse(t testing.TB, attempts int, attempt func() error) {
	t.Helper()
	var err error
	for i := range attempts {
		if err = attempt(); err == nil {
			return
		}
		if !IsAddrInUse(err) {
			t.Fatalf("pbxtest: attempt %d: %v", i+1, err)
			return
		}
		t.Logf("pbxtest: attempt %d lost its port to someone else, retrying: %v", i+1, err)
	}
	t.Fatalf("pbxtest: %d attempts all lost their ports: %v", attempts, err)
}

// IsAddrInUse reports whether err says a port was already bound: EADDRINUSE
// in the chain, or, for errors that carry a subprocess's output or were
// formatted with %v, the kernel's message for it.
func IsAddrInUse(err error) bool {
	return err != nil && (errors.Is(err, syscall.EADDRINUSE) ||
		strings.Contains(strings.ToLower(err.Error()), "address already in use"))
}

func bind(network string, port int) (interface{ Close() error }, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	switch network {
	case "udp", "udp4":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		return c, nil
	case "tcp", "tcp4":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return nil, fmt.Errorf("listen tcp %s: %w", addr, err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("pbxtest: network %q is neither udp nor tcp", network)
}

func localPort(c interface{ Close() error }) int {
	switch c := c.(type) {
	case net.PacketConn:
		return c.LocalAddr().(*net.UDPAddr).Port
	case net.Listener:
		return c.Addr().(*net.TCPAddr).Port
	}
	panic("pbxtest: not a socket")
}
