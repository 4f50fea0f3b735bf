package cluster

import (
	"net"
	"sync"
	"testing"

	"ccpbx/internal/pbxtest"
)

// pgProxy stands between nodes and PostgreSQL so a test can cut a node
// off: paused, it accepts and holds connections but forwards nothing in
// either direction (a network partition, or a database that stopped
// answering), and resume lets the bytes flow again.
type pgProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln := pbxtest.ListenTCP(t)
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *pgProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *pgProxy) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

func (p *pgProxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// gate waits while paused; false once the proxy closed.
func (p *pgProxy) gate() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.paused && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

func (p *pgProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *pgProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			if !p.gate() {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			if !p.track(up) {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { p.pipe(up, c); done <- struct{}{} }()
			go func() { p.pipe(c, up); done <- struct{}{} }()
			<-done
			c.Close()
			up.Close()
			<-done
		}()
	}
}

// pipe copies src to dst, holding each chunk while paused.
func (p *pgProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *pgProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}
