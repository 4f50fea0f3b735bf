package media

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"
)

// udpSock is a leg's non-blocking UDP socket, kept outside Go's network
// poller: the engine's pollers (poller_linux.go) learn when it is readable,
// and sends are one sendto each, made by whoever holds the leg's outbound
// stream lock. A net.UDPConn would cost every received packet a goroutine
// wake-up, a park and a second, empty read, and every send the poller's
// bookkeeping around the same sendto.
//
// The owner guarantees that no send or receive runs once close has begun:
// the leg leaves its poller first, then closes under the stream lock.
type udpSock struct {
	fd     int
	family int // syscall.AF_INET or AF_INET6
	port   int
}

// listenUDPSock binds a non-blocking datagram socket on ap: AF_INET for an
// IPv4 address (0.0.0.0 included), AF_INET6 for IPv6, dual-stack for "::".
func listenUDPSock(ap netip.AddrPort) (*udpSock, error) {
	a := ap.Addr().Unmap()
	family := syscall.AF_INET
	if a.Is6() {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// Best effort: a kernel that refuses keeps its default (ports.go).
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, legRcvBuf)
	var sa syscall.Sockaddr
	if family == syscall.AF_INET {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		if a.IsUnspecified() {
			_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0)
		}
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, &bindError{ap: ap, err: err}
	}
	return &udpSock{fd: fd, family: family, port: int(ap.Port())}, nil
}

// bindError keeps the errno reachable for errors.Is (EADDRINUSE,
// EADDRNOTAVAIL) and prints like net's.
type bindError struct {
	ap  netip.AddrPort
	err error
}

func (e *bindError) Error() string { return "listen udp " + e.ap.String() + ": bind: " + e.err.Error() }
func (e *bindError) Unwrap() error { return e.err }

func (s *udpSock) close() { syscall.Close(s.fd) }

// sockaddr is a destination in the kernel's form, built once per remote
// address change so a send converts nothing.
type sockaddr struct {
	raw syscall.RawSockaddrInet6 // large enough for either family
	len uint32
}

// setSockaddr fills sa with ap in the form s's family takes (an IPv4
// destination of an AF_INET6 socket as a v4-mapped address); false when the
// socket cannot reach it.
func (s *udpSock) setSockaddr(sa *sockaddr, ap netip.AddrPort) bool {
	*sa = sockaddr{}
	if !ap.IsValid() {
		return false
	}
	a := ap.Addr().Unmap()
	port := ap.Port()
	if s.family == syscall.AF_INET {
		if !a.Is4() {
			return false
		}
		r := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		r.Family = syscall.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		r.Addr = a.As4()
		sa.len = syscall.SizeofSockaddrInet4
		return true
	}
	sa.raw.Family = syscall.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&sa.raw.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	sa.raw.Addr = a.As16() // As16 of an IPv4 address is v4-mapped
	sa.len = syscall.SizeofSockaddrInet6
	return true
}

// sendTo sends one datagram; it never blocks (a full send buffer is an
// error, as a dropped packet). Syscall6, not RawSyscall6: if the kernel
// deschedules the thread inside the call (a busy machine), the runtime can
// hand its P to another thread, so music clocks and other legs keep running.
func (s *udpSock) sendTo(b []byte, sa *sockaddr) error {
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			0, uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// errWouldBlock: nothing to read.
var errWouldBlock = errors.New("media: no datagram queued")

// recvFrom reads one datagram into b; rx is the caller's scratch for the
// source address (kept off the stack of the hot path).
func (s *udpSock) recvFrom(b []byte, rx *sockaddr) (int, netip.AddrPort, error) {
	for {
		rx.len = syscall.SizeofSockaddrInet6
		n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			0, uintptr(unsafe.Pointer(&rx.raw)), uintptr(unsafe.Pointer(&rx.len)))
		switch e {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, netip.AddrPort{}, errWouldBlock
		default:
			return 0, netip.AddrPort{}, e
		}
		return int(n), rx.addrPort(), nil
	}
}

func (sa *sockaddr) addrPort() netip.AddrPort {
	p := (*[2]byte)(unsafe.Pointer(&sa.raw.Port)) // same offset in both families
	port := uint16(p[0])<<8 | uint16(p[1])
	switch sa.raw.Family {
	case syscall.AF_INET:
		r := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		return netip.AddrPortFrom(netip.AddrFrom4(r.Addr), port)
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.raw.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// localAddrPort is the address the socket is bound to (getsockname).
func (s *udpSock) localAddrPort() netip.AddrPort {
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
