package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// portPool hands out even RTP ports (RTCP on port+1) from a range. It starts
// at a random port so restarts do not reuse the ports of calls that may still
// be sending, and quarantines released ports so late packets of an ended call
// do not reach the next one.
type portPool struct {
	mu         sync.Mutex
	start, end int // even start; end inclusive
	next       int
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
	n := (end - start + 1) / 2
	return &portPool{
		start:      start,
		end:        end,
		next:       start + 2*rand.IntN(n),
		inUse:      make(map[int]bool),
		quarantine: make(map[int]time.Time),
		hold:       hold,
	}, nil
}

// size is the number of RTP/RTCP pairs in the range.
func (p *portPool) size() int { return (p.end - p.start + 1) / 2 }

// alloc binds the next free even port and port+1 on bind.
func (p *portPool) alloc(bind netip.Addr) (rtpConn, rtcpConn *net.UDPConn, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var lastErr error
	for range p.size() {
		port = p.next
		p.next += 2
		if p.next+1 > p.end {
			p.next = p.start
		}
		if p.inUse[port] {
			continue
		}
		if until, ok := p.quarantine[port]; ok {
			if now.Before(until) {
				continue
			}
			delete(p.quarantine, port)
		}
		rtpConn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind, uint16(port))))
		if err != nil {
			if errors.Is(err, syscall.EADDRNOTAVAIL) {
				// Not an address of this host: no port will do.
				return nil, nil, 0, fmt.Errorf("media: bind %s: %w", bind, err)
			}
			lastErr = err
			continue
		}
		rtcpConn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(bind, uint16(port+1))))
		if err != nil {
			rtpConn.Close()
			lastErr = err
			continue
		}
		p.inUse[port] = true
		return rtpConn, rtcpConn, port, nil
	}
	return nil, nil, 0, fmt.Errorf("media: no free RTP port in %d-%d (last error: %v)", p.start, p.end, lastErr)
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
