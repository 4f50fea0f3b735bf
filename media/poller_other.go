//go:build !linux

package media

import (
	"errors"
	"net"
	"sync"
)

// poller outside Linux runs two reader goroutines per leg (RTP, RTCP), as
// every platform did before the epoll poller (poller_linux.go). Handlers run
// with p.mu held, like there, so remove's promise is the same.
type poller struct {
	mu   sync.Mutex
	legs int // under the engine's mu
	wg   map[*Leg]*sync.WaitGroup
}

const maxPollers = 8

func newPoller() (*poller, error) { return &poller{wg: make(map[*Leg]*sync.WaitGroup)}, nil }

func (p *poller) add(l *Leg) error {
	wg := new(sync.WaitGroup)
	p.mu.Lock()
	p.wg[l] = wg
	p.mu.Unlock()
	wg.Add(2)
	go p.read(l, l.rtpSock.conn, false, wg)
	go p.read(l, l.rtcpSock.conn, true, wg)
	return nil
}

func (p *poller) read(l *Leg, c *net.UDPConn, rtcp bool, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 1500)
	var h rtpHeader
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.wg[l] == nil {
			p.mu.Unlock()
			return
		}
		if rtcp {
			l.handleRTCP(buf[:n], from)
		} else {
			l.handleRTP(buf[:n], from, &h)
		}
		p.mu.Unlock()
	}
}

// remove stops l's readers; it closes l's sockets to wake them.
func (p *poller) remove(l *Leg) {
	p.mu.Lock()
	wg := p.wg[l]
	delete(p.wg, l)
	p.mu.Unlock()
	if wg == nil {
		return
	}
	l.rtpSock.conn.Close()
	l.rtcpSock.conn.Close()
	wg.Wait()
}

func (p *poller) close() {}
