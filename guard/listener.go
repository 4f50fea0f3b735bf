package guard

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// ConnLimits caps the connections a Listener hands out: Max in all, PerIP
// from one source address. Zero means no cap.
type ConnLimits struct {
	Max   int
	PerIP int
}

// Accept back-off after a temporary error: it starts short so that a
// momentary shortage costs little, and stops growing at a second so the
// listener notices quickly when descriptors are free again.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Listener is a net.Listener that keeps serving through trouble a hostile
// peer can cause:
//   - Accept does not return on errors that pass (out of file descriptors,
//     EMFILE/ENFILE; out of buffers; an aborted handshake): it waits, with
//     a growing back-off, and tries again, so a flood that exhausts the
//     process's descriptors does not stop the listener for good. The
//     connections stay in the kernel's backlog meanwhile.
//   - A connection over ConnLimits is closed at once and Accept goes on to
//     the next: the caller never sees it.
//
// Connections it hands out release their slot when closed.
type Listener struct {
	net.Listener
	lim ConnLimits
	// onTrouble is told of the first temporary error of a run and of the
	// refused connections; it may be nil.
	onTrouble func(msg string, err error, remote string)

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

// NewListener wraps l. onTrouble, when not nil, is told (for logging) of
// the first error of each run of temporary accept errors and of every
// connection refused by the caps.
func NewListener(l net.Listener, lim ConnLimits, onTrouble func(msg string, err error, remote string)) *Listener {
	return &Listener{Listener: l, lim: lim, onTrouble: onTrouble, perIP: make(map[netip.Addr]int)}
}

// Accept returns the next connection within the caps. It returns an error
// only when the listener is closed or fails for good.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !TemporaryAcceptError(err) {
				return nil, err
			}
			if delay == 0 {
				delay = acceptBackoffMin
				l.trouble("accept failed; retrying with back-off", err, "")
			} else {
				delay = min(2*delay, acceptBackoffMax)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		ip := remoteAddr(c)
		if !l.take(ip) {
			l.trouble("connection refused: too many connections", nil, c.RemoteAddr().String())
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

// Open returns how many handed-out connections are open.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *Listener) trouble(msg string, err error, remote string) {
	if l.onTrouble != nil {
		l.onTrouble(msg, err, remote)
	}
}

func (l *Listener) take(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Max > 0 && l.total >= l.lim.Max || l.lim.PerIP > 0 && l.perIP[ip] >= l.lim.PerIP {
		return false
	}
	l.total++
	l.perIP[ip]++
	return true
}

func (l *Listener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
}

// TemporaryAcceptError reports an accept error that passes by itself:
// the process or system is out of descriptors or memory for a moment, or a
// peer gave up during the handshake. A closed listener is not one.
func TemporaryAcceptError(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return canon(ip)
		}
	}
	return netip.Addr{}
}

// limitedConn gives its slot back on the first Close.
type limitedConn struct {
	net.Conn
	l    *Listener
	ip   netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
