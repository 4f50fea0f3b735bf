package media

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// poller reads the RTP and RTCP sockets of many legs from one goroutine:
// the sockets sit in a level-triggered epoll set of its own, and that set's
// descriptor sits in Go's network poller, so the goroutine sleeps until any
// of its sockets has a datagram and then reads one datagram per ready
// socket per round (level-triggered: a socket with more queued is reported
// again). A packet costs one recvfrom and a share of one epoll_wait, instead
// of a goroutine wake-up, a read, an empty read and a park per leg reader;
// and a leg costs no goroutine of its own. The engine runs one poller per
// CPU (GOMAXPROCS at its start, at most maxPollers) and spreads legs over
// them.
//
// Handlers run on the poller goroutine with p.mu held, so remove can
// promise that none runs after it returns; a handler must not block (the
// relay's forward is one sendto) and must not call remove. p.mu is taken
// per datagram, not per round: a round of up to len(events) datagrams,
// each a recvfrom and a sendto, would otherwise keep add and remove (a
// call being set up or torn down: the INVITE's handler, the agent's
// originate) waiting for the whole round (issue 15: that wait was on the
// dispatch path under load).
type poller struct {
	epfd int
	file *os.File // epfd, registered with Go's network poller
	rc   syscall.RawConn

	mu    sync.Mutex
	slots []pollSlot // by slot index; epoll data names slot and generation
	free  []uint32

	// The poller goroutine's own scratch, so a packet allocates nothing.
	events [128]syscall.EpollEvent
	buf    [1500]byte
	rx     sockaddr
	h      rtpHeader
	waitFn func(fd uintptr) bool
	read   int // events the last round served
	done   chan struct{}

	legs int // legs counted on this poller; under the engine's mu
}

type pollSlot struct {
	leg *Leg
	gen int32
}

const maxPollers = 8

func newPoller() (*poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	p := &poller{epfd: fd, file: os.NewFile(uintptr(fd), "media-epoll"), done: make(chan struct{})}
	if p.rc, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, fmt.Errorf("media: epoll: %w", err)
	}
	p.waitFn = p.round
	go p.run()
	return p, nil
}

// pollPause is how long a poller sleeps after a round that read
// something, so that the next round finds a batch: a datagram waits at
// most that long (RTP's jitter buffers absorb far more).
const pollPause = time.Millisecond

// run sleeps in Go's network poller until the epoll set is readable, and
// then serves rounds until it is empty; it ends when close closes the set.
//
// After each round that read something it sleeps pollPause, which frees
// its P until then. Under load the set is readable again at once: a poller
// that went straight into the next round would keep its CPU until the
// scheduler preempts it, and one that only yielded (runtime.Gosched, as
// it once did) stayed runnable all the time, so the Ps never ran out of
// work and Go's scheduler, which polls the network only when they do (or
// from sysmon, every 10 ms), left the SIP listeners' datagrams unread for
// milliseconds while every woken goroutine queued behind the pollers
// (issue 15: the trace of a 160 cps load showed the pollers runnable
// 70 % of the time and never parked, the SIP readers waiting for a P
// 55 % of it). A round that filled the whole event buffer has a backlog
// behind it: then it only yields.
func (p *poller) run() {
	defer close(p.done)
	for {
		if err := p.rc.Read(p.waitFn); err != nil {
			return
		}
		if p.read >= len(p.events) {
			runtime.Gosched()
		} else {
			time.Sleep(pollPause)
		}
	}
}

// round is one epoll_wait without waiting and one read per ready socket.
// It returns false when nothing was ready, which parks run until the set
// becomes readable again.
func (p *poller) round(fd uintptr) bool {
	// epoll_pwait with no signal mask is epoll_wait, and exists on every
	// Linux architecture (arm64 has no epoll_wait).
	n, _, e := syscall.Syscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0, 0, 0)
	if e != 0 || n == 0 {
		return e != 0 && e != syscall.EINTR && e != syscall.EAGAIN
	}
	for i := range int(n) {
		p.serve(&p.events[i])
	}
	p.read = int(n)
	return true
}

// serve reads one datagram of the socket ev names and hands it to its
// leg's handler, under p.mu.
func (p *poller) serve(ev *syscall.EpollEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slot, rtcp := uint32(ev.Fd)>>1, ev.Fd&1 == 1
	if int(slot) >= len(p.slots) || p.slots[slot].gen != ev.Pad || p.slots[slot].leg == nil {
		return // removed while this round was collected
	}
	l := p.slots[slot].leg
	sock := l.rtpSock
	if rtcp {
		sock = l.rtcpSock
	}
	n, from, err := sock.recvFrom(p.buf[:], &p.rx)
	if err != nil {
		return // nothing after all, or an ICMP error surfacing: skipped
	}
	if rtcp {
		l.handleRTCP(p.buf[:n], from)
	} else {
		l.handleRTP(p.buf[:n], from, &p.h)
	}
}

// add puts l's sockets in the set.
func (p *poller) add(l *Leg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var slot uint32
	if n := len(p.free); n > 0 {
		slot, p.free = p.free[n-1], p.free[:n-1]
	} else {
		slot = uint32(len(p.slots))
		p.slots = append(p.slots, pollSlot{})
	}
	s := &p.slots[slot]
	s.gen++
	s.leg = l
	l.pollSlot, l.pollGen = slot, s.gen
	err := p.ctl(syscall.EPOLL_CTL_ADD, l.rtpSock.fd, int32(slot<<1), s.gen)
	if err == nil {
		if err = p.ctl(syscall.EPOLL_CTL_ADD, l.rtcpSock.fd, int32(slot<<1|1), s.gen); err != nil {
			p.ctl(syscall.EPOLL_CTL_DEL, l.rtpSock.fd, 0, 0)
		}
	}
	if err != nil {
		s.leg = nil
		p.free = append(p.free, slot)
		return fmt.Errorf("media: epoll add: %w", err)
	}
	return nil
}

// remove takes l's sockets out of the set; no handler of l runs once it
// returns, so the sockets may be closed.
func (p *poller) remove(l *Leg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.slots[l.pollSlot]
	if s.leg != l || s.gen != l.pollGen {
		return
	}
	p.ctl(syscall.EPOLL_CTL_DEL, l.rtpSock.fd, 0, 0)
	p.ctl(syscall.EPOLL_CTL_DEL, l.rtcpSock.fd, 0, 0)
	s.leg = nil
	p.free = append(p.free, l.pollSlot)
}

// ctl runs epoll_ctl while the set's descriptor is held open.
func (p *poller) ctl(op, fd int, data, gen int32) error {
	var err error
	cerr := p.rc.Control(func(epfd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: data, Pad: gen}
		err = syscall.EpollCtl(int(epfd), op, fd, &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// close stops the goroutine; the legs must have been removed.
func (p *poller) close() {
	p.file.Close()
	<-p.done
}
