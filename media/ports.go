package media

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// legRcvBuf is the SO_RCVBUF asked for on every leg socket (RTP and RTCP);
// Linux doubles it for its bookkeeping, so a socket holds ~64 KB of
// datagrams by their kernel size (truesize): 78 RTP packets of 172 bytes
// from loopback (measured), ~1.6 s of one 20 ms stream, fewer from a NIC
// driver whose buffers are larger per packet. The kernel default
// (net.core.rmem_default, often 208 KB: 256 such packets, ~5 s) would let a
// leg queue seconds that the relay, which has no jitter buffer, would then
// forward in one late burst; and a leg costs at most this much kernel
// memory per socket.
//
// The trade-off: a process that is starved of CPU for longer than the
// buffer lasts shows drops (ccpbx's own socket drops, /proc/net/udp's drops
// column for its inodes; bench/sipload reports them) sooner than with the
// default. Raise it for very bursty peers; bench/media_load.sh shows what a
// change costs.
const legRcvBuf = 32 << 10

// portPool hands out even RTP ports (RTCP on port+1) from a range, each at
// a random place in it: a port seen in one call's SDP says nothing about the
// next call's, so nobody can spray the port a call is about to get (issue
// 10: "RTP bleed"), and a restart does not reuse the ports of calls that may
// still be sending. Released ports rest in quarantine so late packets of an
// ended call do not reach the next one.
type portPool struct {
	mu         sync.Mutex
	start, end int        // even start; end inclusive
	rng        *rand.Rand // ChaCha8 seeded from crypto/rand; under mu
	inUse      map[int]bool
	quarantine map[int]time.Time
	hold       time.Duration
}

func newPortPool(start, end int, hold time.Duration) (*portPool, error) {
	if start%2 == 1 {
		start++
	}
	if start <= 0 || end > 65535 || end < start+1 {
		return nil, fmt.Errorf("media: RTP port range %d-%d is empty or invalid", start, end)
	}
	var seed [32]byte
	crand.Read(seed[:]) // never fails (Go 1.24+)
	return &portPool{
		start:      start,
		end:        end,
		rng:        rand.New(rand.NewChaCha8(seed)),
		inUse:      make(map[int]bool),
		quarantine: make(map[int]time.Time),
		hold:       hold,
	}, nil
}

// PortsInUse is the number of RTP/RTCP port pairs bound by live legs (not
// counting those resting in quarantine).
func (e *Engine) PortsInUse() int {
	e.ports.mu.Lock()
	defer e.ports.mu.Unlock()
	return len(e.ports.inUse)
}

// size is the number of RTP/RTCP pairs in the range.
func (p *portPool) size() int { return (p.end - p.start + 1) / 2 }

// alloc binds a free even port, chosen at random, and port+1 on bind. It
// visits the pairs in the order of a random affine permutation (a random
// start and a random step coprime with the number of pairs), so it tries
// every pair once before giving up and a busy stretch of the range does not
// make the pair after it likelier.
func (p *portPool) alloc(bind netip.Addr) (rtpConn, rtcpConn *udpSock, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var lastErr error
	n := p.size()
	i, step := p.rng.IntN(n), 1
	if n > 1 {
		for step = 1 + p.rng.IntN(n-1); gcd(step, n) != 1; step = 1 + p.rng.IntN(n-1) {
		}
	}
	for k := range n {
		if k > 0 {
			i = (i + step) % n
		}
		port = p.start + 2*i
		if p.inUse[port] {
			continue
		}
		if until, ok := p.quarantine[port]; ok {
			if now.Before(until) {
				continue
			}
			delete(p.quarantine, port)
		}
		rtpConn, err = listenUDPSock(netip.AddrPortFrom(bind, uint16(port)))
		if err != nil {
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				// Not an address of this host: no port will do.
				return nil, nil, 0, fmt.Errorf("media: bind %s: %w", bind, err)
			}
			lastErr = err
			continue
		}
		rtcpConn, err = listenUDPSock(netip.AddrPortFrom(bind, uint16(port+1)))
		if err != nil {
			rtpConn.close()
			lastErr = err
			continue
		}
		p.inUse[port] = true
		return rtpConn, rtcpConn, port, nil
	}
	return nil, nil, 0, fmt.Errorf("media: no free RTP port in %d-%d (last error: %v)", p.start, p.end, lastErr)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// release returns port to the pool after the quarantine.
func (p *portPool) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, port)
	if p.hold > 0 {
		p.quarantine[port] = time.Now().Add(p.hold)
	}
	// Forget expired entries now and then so the map stays small.
	if len(p.quarantine) > 1024 {
		now := time.Now()
		for k, until := range p.quarantine {
			if now.After(until) {
				delete(p.quarantine, k)
			}
		}
	}
}
