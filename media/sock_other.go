//go:build !linux

package media

import (
	"errors"
	"net"
	"net/netip"
)

// udpSock outside Linux is a net.UDPConn read by goroutines of the poller
// (poller_other.go); the Linux version reads raw sockets from an epoll set.
type udpSock struct {
	conn *net.UDPConn
	port int
}

func listenUDPSock(ap netip.AddrPort) (*udpSock, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(legRcvBuf) // best effort (ports.go)
	return &udpSock{conn: c, port: int(ap.Port())}, nil
}

func (s *udpSock) close() { s.conn.Close() }

type sockaddr struct{ ap netip.AddrPort }

func (s *udpSock) setSockaddr(sa *sockaddr, ap netip.AddrPort) bool {
	sa.ap = ap
	return ap.IsValid()
}

func (s *udpSock) sendTo(b []byte, sa *sockaddr) error {
	_, err := s.conn.WriteToUDPAddrPort(b, sa.ap)
	return err
}

var errWouldBlock = errors.New("media: no datagram queued")

func (s *udpSock) localAddrPort() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}
