package media

import (
	"syscall"
	"testing"
)

// TestLegReceiveBuffer: both sockets of a leg carry legRcvBuf (Linux
// reports twice what was asked: its bookkeeping share), not the kernel's
// default, which may be several times larger.
func TestLegReceiveBuffer(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for name, s := range map[string]*udpSock{"rtp": l.rtpSock, "rtcp": l.rtcpSock} {
		got, err := syscall.GetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		if err != nil {
			t.Fatal(err)
		}
		if got != 2*legRcvBuf {
			t.Errorf("%s socket SO_RCVBUF %d, want %d (2 × legRcvBuf)", name, got, 2*legRcvBuf)
		}
	}
}
