package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The media side of the invite modes (-media): the callers' (and agents')
// RTP sockets. Every datagram is read with recvmmsg and its kernel receive
// time (SO_TIMESTAMPNS), so the spacing measured is when ccpbx's packets
// reached the socket, not when this process got round to reading them.
// Spacing error is |arrival − previous arrival of the same stream − 20 ms|,
// streams told apart by ccpbx's source port; only packets that arrive while
// the measuring window is open count. Caller sockets echo every packet back
// to where it came from (sipp's -rtp_echo); agent sockets send their own
// 20 ms stream (pacer) and only measure.

const (
	sysRecvmmsg   = unix.SYS_RECVMMSG // this architecture's numbers, not amd64's
	sysSendmmsg   = unix.SYS_SENDMMSG
	soTimestampNS = unix.SO_TIMESTAMPNS
	batch         = 64
	frame         = 20 * time.Millisecond
	bucketUs      = 10      // histogram resolution
	buckets       = 100_000 // up to 1 s
)

type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// spacing is one reader's histogram of spacing errors.
type spacing struct {
	counts   []uint64
	n, gaps  uint64 // gaps: deltas over 30 ms (a frame late or lost)
	maxErrUs int64
	seqLost  uint64 // sequence numbers skipped: lost between sender and this reader (socket buffers)
	tsSkips  uint64 // consecutive sequence numbers whose timestamps differ by more than one frame: the sender skipped
}

func newSpacing() *spacing { return &spacing{counts: make([]uint64, buckets)} }

func (s *spacing) add(errUs int64, deltaUs int64) {
	if errUs < 0 {
		errUs = -errUs
	}
	b := errUs / bucketUs
	if b >= buckets {
		b = buckets - 1
	}
	s.counts[b]++
	s.n++
	if deltaUs > 30_000 {
		s.gaps++
	}
	s.maxErrUs = max(s.maxErrUs, errUs)
}

func (s *spacing) merge(o *spacing) {
	for i, c := range o.counts {
		s.counts[i] += c
	}
	s.n += o.n
	s.gaps += o.gaps
	s.seqLost += o.seqLost
	s.tsSkips += o.tsSkips
	s.maxErrUs = max(s.maxErrUs, o.maxErrUs)
}

// pct is the p-quantile of the spacing error, in ms.
func (s *spacing) pct(p float64) float64 {
	if s.n == 0 {
		return 0
	}
	want := uint64(float64(s.n-1)*p) + 1
	var acc uint64
	for i, c := range s.counts {
		acc += c
		if acc >= want {
			return float64(i*bucketUs+bucketUs/2) / 1000
		}
	}
	return float64(s.maxErrUs) / 1000
}

// rtpSide owns the RTP sockets of one role (callers or agents).
type rtpSide struct {
	name      string
	echo      bool
	socks     []*net.UDPConn
	measuring *atomic.Bool
	packets   atomic.Int64
	mu        sync.Mutex
	sp        *spacing
	wg        sync.WaitGroup
	last      []int64 // per source port: kernel arrival time (ns) of the last packet, 0 = none
	lastSeq   []uint16
	lastTS    []uint32
}

func newRTPSide(name string, n int, echo bool, measuring *atomic.Bool) (*rtpSide, error) {
	s := &rtpSide{name: name, echo: echo, measuring: measuring, sp: newSpacing(), last: make([]int64, 65536), lastSeq: make([]uint16, 65536), lastTS: make([]uint32, 65536)}
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		c.SetReadBuffer(8 << 20)
		c.SetWriteBuffer(8 << 20)
		rc, err := c.SyscallConn()
		if err != nil {
			return nil, err
		}
		var serr error
		rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soTimestampNS, 1)
		})
		if serr != nil {
			return nil, serr
		}
		s.socks = append(s.socks, c)
		s.wg.Add(1)
		go s.read(c, rc)
	}
	return s, nil
}

func (s *rtpSide) port(i int) int { return s.socks[i%len(s.socks)].LocalAddr().(*net.UDPAddr).Port }

func (s *rtpSide) close() {
	for _, c := range s.socks {
		c.Close()
	}
	s.wg.Wait()
}

// read is one socket's reader: a batch at a time, echo, measure.
func (s *rtpSide) read(c *net.UDPConn, rc syscall.RawConn) {
	defer s.wg.Done()
	var (
		msgs  [batch]mmsghdr
		iovs  [batch]syscall.Iovec
		bufs  [batch][1500]byte
		names [batch]syscall.RawSockaddrInet4
		oobs  [batch][64]byte
		out   [batch]mmsghdr // the echo of a batch: bufs back to names
		oiovs [batch]syscall.Iovec
	)
	for i := range msgs {
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(len(bufs[i]))
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.Iovlen = 1
		oiovs[i].Base = &bufs[i][0]
		out[i].hdr.Iov = &oiovs[i]
		out[i].hdr.Iovlen = 1
		out[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		out[i].hdr.Namelen = syscall.SizeofSockaddrInet4
	}
	local := newSpacing()
	defer func() {
		s.mu.Lock()
		s.sp.merge(local)
		s.mu.Unlock()
	}()
	for {
		var got int
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			for i := range msgs {
				msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
				msgs[i].hdr.Namelen = syscall.SizeofSockaddrInet4
				msgs[i].hdr.Control = &oobs[i][0]
				msgs[i].hdr.SetControllen(len(oobs[i]))
				msgs[i].hdr.Flags = 0
			}
			r, _, e := syscall.Syscall6(sysRecvmmsg, fd, uintptr(unsafe.Pointer(&msgs[0])), batch, syscall.MSG_DONTWAIT, 0, 0)
			if e == syscall.EAGAIN {
				return false
			}
			got, errno = int(r), e
			return true
		})
		if err != nil {
			return
		}
		if errno != 0 || got <= 0 {
			continue
		}
		s.packets.Add(int64(got))
		if s.echo {
			// One sendmmsg for the whole batch, so the echo costs the
			// generator one system call per batch and not per packet.
			for i := 0; i < got; i++ {
				oiovs[i].SetLen(int(msgs[i].n))
			}
			sendmmsg(rc, out[:got])
		}
		measure := s.measuring.Load()
		for i := 0; i < got; i++ {
			pkt := bufs[i][:msgs[i].n]
			port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&names[i].Port))[:])
			if !measure {
				s.last[port] = 0
				continue
			}
			at := kernelTime(oobs[i][:msgs[i].hdr.Controllen])
			if at == 0 {
				continue
			}
			var seq uint16
			var ts uint32
			if len(pkt) >= 12 {
				seq, ts = binary.BigEndian.Uint16(pkt[2:]), binary.BigEndian.Uint32(pkt[4:])
			}
			if prev := s.last[port]; prev != 0 {
				d := (at - prev) / 1000
				local.add(d-int64(frame/time.Microsecond), d)
				if gap := seq - s.lastSeq[port]; gap > 1 && gap < 1000 {
					local.seqLost += uint64(gap - 1)
				} else if gap == 1 && ts-s.lastTS[port] > 160 && ts-s.lastTS[port] < 80000 {
					local.tsSkips++
				}
			}
			s.last[port], s.lastSeq[port], s.lastTS[port] = at, seq, ts
		}
	}
}

// sendmmsg sends msgs on rc's socket, waiting while its send buffer is
// full; a datagram the kernel refuses is skipped (counted as lost by the
// receiver).
func sendmmsg(rc syscall.RawConn, msgs []mmsghdr) {
	for len(msgs) > 0 {
		var sent int
		err := rc.Write(func(fd uintptr) bool {
			r, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), syscall.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				sent = int(r)
			case syscall.EAGAIN:
				return false
			default:
				sent = 1 // the first message failed: skip it
			}
			return true
		})
		if err != nil {
			return
		}
		msgs = msgs[max(sent, 1):]
	}
}

// kernelTime is the SO_TIMESTAMPNS of a control message, in ns, or 0.
func kernelTime(oob []byte) int64 {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < syscall.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == soTimestampNS && int(h.Len) >= syscall.SizeofCmsghdr+16 {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[syscall.SizeofCmsghdr]))
			return ts.Nano()
		}
		oob = oob[(h.Len+7)&^7:]
	}
	return 0
}

// pacer sends the agents' audio: every stream a 20 ms PCMU frame on an
// absolute schedule, streams spread over 20 one-millisecond slots so the
// load does not arrive as one burst per frame. A slot's streams are kept
// in the order of their sockets, and each socket's share of a slot goes out
// in one sendmmsg.
type pacer struct {
	mu      sync.Mutex
	streams map[string]*agentStream // by Call-ID
	slot    [20][]*agentStream
	sent    atomic.Int64
}

type agentStream struct {
	rc   syscall.RawConn
	port int // the socket's local port: the sort key that groups a slot by socket
	name syscall.RawSockaddrInet4
	ssrc uint32
	seq  uint16
	ts   uint32
	slot int
	pkt  [12 + 160]byte
}

func newPacer() *pacer { return &pacer{streams: make(map[string]*agentStream)} }

func (p *pacer) add(callID string, sock *net.UDPConn, to netip.AddrPort, n int) {
	rc, err := sock.SyscallConn()
	if err != nil || !to.Addr().Is4() {
		return
	}
	st := &agentStream{rc: rc, port: sock.LocalAddr().(*net.UDPAddr).Port, ssrc: uint32(n)*2654435761 + 1, slot: n % 20}
	st.name.Family = syscall.AF_INET
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&st.name.Port))[:], to.Port())
	st.name.Addr = to.Addr().As4()
	for i := 12; i < len(st.pkt); i++ {
		st.pkt[i] = 0xFF ^ byte(i) // not silence: a real frame's worth of bytes
	}
	p.mu.Lock()
	if _, dup := p.streams[callID]; !dup {
		p.streams[callID] = st
		list := p.slot[st.slot]
		i, _ := slices.BinarySearchFunc(list, st.port, func(x *agentStream, port int) int { return x.port - port })
		p.slot[st.slot] = slices.Insert(list, i, st)
	}
	p.mu.Unlock()
}

func (p *pacer) remove(callID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.streams[callID]
	if st == nil {
		return
	}
	delete(p.streams, callID)
	list := p.slot[st.slot]
	for i, x := range list {
		if x == st {
			p.slot[st.slot] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
}

func (p *pacer) run(stop <-chan struct{}) {
	var (
		msgs [batch]mmsghdr
		iovs [batch]syscall.Iovec
	)
	for i := range msgs {
		msgs[i].hdr.Iov = &iovs[i]
		msgs[i].hdr.Iovlen = 1
		msgs[i].hdr.Namelen = syscall.SizeofSockaddrInet4
	}
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; ; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
		p.mu.Lock()
		list := p.slot[i%20]
		for len(list) > 0 {
			// The run of streams on one socket, at most a batch.
			n := 1
			for n < len(list) && n < batch && list[n].port == list[0].port {
				n++
			}
			for j, st := range list[:n] {
				st.seq++
				st.ts += 160
				st.pkt[0], st.pkt[1] = 0x80, 0
				binary.BigEndian.PutUint16(st.pkt[2:], st.seq)
				binary.BigEndian.PutUint32(st.pkt[4:], st.ts)
				binary.BigEndian.PutUint32(st.pkt[8:], st.ssrc)
				iovs[j].Base = &st.pkt[0]
				iovs[j].SetLen(len(st.pkt))
				msgs[j].hdr.Name = (*byte)(unsafe.Pointer(&st.name))
			}
			sendmmsg(list[0].rc, msgs[:n])
			p.sent.Add(int64(n))
			list = list[n:]
		}
		p.mu.Unlock()
	}
}
