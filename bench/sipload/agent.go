package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// agentSide is -agents N: users 2001… registered from a few SIP sockets,
// answering every INVITE ccpbx sends them (the queue's offers) with 200 and
// an SDP naming one of its RTP sockets, then sending a 20 ms PCMU stream to
// the address in ccpbx's SDP until the BYE. What the agents receive (the
// callers' echo, relayed) is measured like the callers' side.
type agentSide struct {
	g     *gen
	n     int
	sip   []*net.UDPConn
	rtp   *rtpSide
	pacer *pacer
	halt  chan struct{}

	registered, answered atomic.Int64
	mu                   sync.Mutex
	calls                map[string]int // Call-ID → stream index
}

func newAgentSide(g *gen, n, rtpSocks int, measuring *atomic.Bool) (*agentSide, error) {
	a := &agentSide{g: g, n: n, pacer: newPacer(), halt: make(chan struct{}), calls: make(map[string]int)}
	var err error
	if a.rtp, err = newRTPSide("agents", rtpSocks, false, measuring); err != nil {
		return nil, err
	}
	for range 8 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		c.SetReadBuffer(4 << 20)
		a.sip = append(a.sip, c)
		go g.read(c)
	}
	go a.pacer.run(a.halt)
	return a, nil
}

// registerAll registers the agents at rate per second and returns when all
// are done; it exits the program when any failed.
func (a *agentSide) registerAll(rate int) {
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range a.n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.g.registerUser(a.sip[i%len(a.sip)], i, strconv.Itoa(2001+i)) {
				a.registered.Add(1)
			}
		}()
	}
	wg.Wait()
	if int(a.registered.Load()) != a.n {
		fmt.Fprintf(os.Stderr, "agents: %d of %d registered\n", a.registered.Load(), a.n)
		os.Exit(1)
	}
	// The registrations are not calls: reset the counters the calls report.
	a.g.ok.Store(0)
	a.g.mu.Lock()
	a.g.lat = a.g.lat[:0]
	a.g.mu.Unlock()
	fmt.Printf("agents: %d registered in %.1fs\n", a.n, time.Since(start).Seconds())
}

func (a *agentSide) stop() {
	close(a.halt)
	a.rtp.close()
}

// request answers one request ccpbx sent an agent.
func (a *agentSide) request(c *net.UDPConn, msg string, from netip.AddrPort) {
	head, body, _ := strings.Cut(msg, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	method, _, _ := strings.Cut(lines[0], " ")
	var vias []string
	var fromH, to, callID, cseq string
	for _, line := range lines[1:] {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v":
			vias = append(vias, val)
		case "from", "f":
			fromH = val
		case "to", "t":
			to = val
		case "call-id", "i":
			callID = val
		case "cseq":
			cseq = val
		}
	}
	if method == "ACK" {
		return
	}
	if !strings.Contains(to, "tag=") {
		to += ";tag=ag" + strconv.FormatUint(uint64(len(callID))*7919+uint64(from.Port()), 16)
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", fromH, to, callID, cseq)
	switch method {
	case "INVITE":
		remote, ok := sdpAddr(body)
		if !ok {
			return
		}
		a.mu.Lock()
		idx, seen := a.calls[callID]
		if !seen {
			idx = len(a.calls)
			a.calls[callID] = idx
		}
		a.mu.Unlock()
		sock := a.rtp.socks[idx%len(a.rtp.socks)]
		port := sock.LocalAddr().(*net.UDPAddr).Port
		sdp := fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", idx, port)
		fmt.Fprintf(&b, "Contact: <sip:agent@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", c.LocalAddr(), len(sdp), sdp)
		c.WriteToUDPAddrPort([]byte(b.String()), from)
		if !seen {
			a.answered.Add(1)
			a.pacer.add(callID, sock, remote, idx)
		}
	case "BYE", "CANCEL":
		a.pacer.remove(callID)
		b.WriteString("Content-Length: 0\r\n\r\n")
		c.WriteToUDPAddrPort([]byte(b.String()), from)
	default:
		b.WriteString("Content-Length: 0\r\n\r\n")
		c.WriteToUDPAddrPort([]byte(b.String()), from)
	}
}

// sdpAddr is the c= address and m=audio port of an SDP body.
func sdpAddr(body string) (netip.AddrPort, bool) {
	var ip netip.Addr
	var port uint64
	for _, l := range strings.Split(body, "\r\n") {
		if a, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			ip, _ = netip.ParseAddr(strings.TrimSpace(a))
		}
		if m, ok := strings.CutPrefix(l, "m=audio "); ok {
			p, _, _ := strings.Cut(m, " ")
			port, _ = strconv.ParseUint(p, 10, 16)
		}
	}
	return netip.AddrPortFrom(ip, uint16(port)), ip.IsValid() && port != 0
}

// windowResult is what the measuring window saw.
type windowResult struct {
	secs           float64
	pbxCPU, ownCPU float64 // cores
	load           string
	rcvbuf         int64 // machine-wide UDP RcvbufErrors over the window
	// Datagrams dropped by full receive buffers over the window, by the
	// sockets of ccpbx and of sipload (drops.go), and how many sockets.
	pbxDrops, ownDrops dropCount
	agentsSent         int64 // RTP packets the agents' pacer sent in the window
}

func measureWindow(measuring *atomic.Bool, d time.Duration, pid int, agentsSent *atomic.Int64) windowResult {
	ticks := func(path string) float64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseFloat(f[11], 64)
		k, _ := strconv.ParseFloat(f[12], 64)
		return (u + k) / 100 // CLK_TCK is 100 on Linux
	}
	pbx := "/proc/" + strconv.Itoa(pid) + "/stat"
	var s0 int64
	if agentsSent != nil {
		s0 = agentsSent.Load()
	}
	p0, o0, t0, r0, d0 := ticks(pbx), ticks("/proc/self/stat"), time.Now(), rcvbufErrors(), readSockDrops()
	measuring.Store(true)
	time.Sleep(d)
	measuring.Store(false)
	p1, o1, el := ticks(pbx), ticks("/proc/self/stat"), time.Since(t0).Seconds()
	load, _ := os.ReadFile("/proc/loadavg")
	r1, d1 := rcvbufErrors(), readSockDrops()
	var s1 int64
	if agentsSent != nil {
		s1 = agentsSent.Load()
	}
	w := windowResult{secs: el, pbxCPU: (p1 - p0) / el, ownCPU: (o1 - o0) / el, load: strings.Join(strings.Fields(string(load))[:3], " "), rcvbuf: r1 - r0, agentsSent: s1 - s0}
	if pid > 0 {
		w.pbxDrops = dropsOf(socketInodes(strconv.Itoa(pid)), d0, d1)
	}
	w.ownDrops = dropsOf(socketInodes("self"), d0, d1)
	return w
}

func (w windowResult) print(sides []*rtpSide) {
	fmt.Printf("window=%.1fs ccpbx_cpu=%.3f cores sipload_cpu=%.3f cores loadavg=%s udp_rcvbuf_errors=%d (machine)\n", w.secs, w.pbxCPU, w.ownCPU, w.load, w.rcvbuf)
	fmt.Printf("socket drops in the window: ccpbx=%d (%d sockets; %d on odd ports) sipload=%d (%d sockets)\n",
		w.pbxDrops.drops, w.pbxDrops.socks, w.pbxDrops.oddPort, w.ownDrops.drops, w.ownDrops.socks)
	if w.agentsSent > 0 {
		fmt.Printf("agents: sent %d RTP packets in the window (%.0f/s)\n", w.agentsSent, float64(w.agentsSent)/w.secs)
	}
	for _, s := range sides {
		sp := s.sp
		fmt.Printf("%s: spacing samples=%d (%.0f/s) error p50=%.2fms p99=%.2fms p99.9=%.2fms max=%.1fms gaps>30ms=%d (%.3f%%) seq_lost=%d ts_skips=%d\n",
			s.name, sp.n, float64(sp.n)/w.secs, sp.pct(0.5), sp.pct(0.99), sp.pct(0.999), float64(sp.maxErrUs)/1000, sp.gaps, 100*float64(sp.gaps)/max(1, float64(sp.n)), sp.seqLost, sp.tsSkips)
	}
}

func (g *gen) callerRTPPort(i int) int {
	if g.callers == nil {
		return g.rtpPort
	}
	return g.callers.port(i)
}

func rcvbufErrors() int64 {
	b, _ := os.ReadFile("/proc/net/snmp")
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Udp: ") {
			if n++; n == 2 {
				v, _ := strconv.ParseInt(strings.Fields(l)[5], 10, 64)
				return v
			}
		}
	}
	return 0
}
