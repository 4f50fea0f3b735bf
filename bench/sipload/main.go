// Command sipload offers ccpbx a fixed rate of SIP work over UDP on
// 127.0.0.1, as many independent clients would, and reports what
// completed: REGISTERs with digest authentication (401, then the
// credentials, then 200) or trunk calls (INVITE, 200, ACK, a hold, BYE).
// Clients behave like real ones under load: they retransmit on RFC 3261's
// timers (T1 500 ms doubling to 4 s, giving up at 32 s) and take a 503 as
// a refusal. Figures: BENCHMARKS.md "Overload"; driver: bench/overload.sh.
//
// It is a measuring tool, not part of ccpbx.
package main

import (
	"crypto/md5"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type gen struct {
	target   *net.UDPAddr
	regAt    *net.UDPAddr // -agents: where agents register (the internal profile)
	socks    []*net.UDPConn
	pending  sync.Map // Call-ID → chan response
	password string
	users    int
	dest     string
	hold     time.Duration
	rtpPort  int
	callers  *rtpSide // -media: the callers' RTP sockets
	agents   *agentSide

	started, ok, shed, failed, timedOut, rtx atomic.Int64
	// shedBare counts 503s without Retry-After (ccpbx sends it with every
	// overload 503).
	shedBare atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration
}

type response struct {
	code    int
	cseq    string
	toTag   string
	auth    string
	retryAt bool
}

func main() {
	mode := flag.String("mode", "register", "register or invite")
	target := flag.String("target", "127.0.0.1:5060", "ccpbx profile address")
	rate := flag.Int("rate", 100, "new transactions (registrations or calls) per second")
	dur := flag.Duration("duration", 10*time.Second, "how long new work is started")
	users := flag.Int("users", 1000, "register: users u1000… in the directory")
	password := flag.String("password", "1234", "register: the users' password")
	dest := flag.String("dest", "3000", "invite: destination number")
	hold := flag.Duration("hold", time.Second, "invite: how long a call stays up")
	nsock := flag.Int("sockets", 64, "client sockets (source ports)")
	media := flag.Bool("media", false, "invite: callers echo RTP (recvmmsg) and measure its spacing per stream")
	rtpSocks := flag.Int("rtp-sockets", 16, "media: RTP sockets per side")
	nAgents := flag.Int("agents", 0, "invite: register agents 2001… (digest, password -password) first and answer their calls with a 20 ms RTP stream")
	settle := flag.Duration("settle", 3*time.Second, "media: the spacing window opens this long after the last call was started")
	measure := flag.Duration("measure", 20*time.Second, "media: how long the spacing window stays open")
	pid := flag.Int("pid", 0, "media: ccpbx's pid: its CPU over the window is reported")
	maxCalls := flag.Int("calls", 0, "at most this many transactions (0: rate × duration, as many as fit)")
	regTarget := flag.String("register-target", "", "agents: the profile they register with (default -target)")
	flag.Parse()

	addr, err := net.ResolveUDPAddr("udp4", *target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	g := &gen{target: addr, regAt: addr, password: *password, users: *users, dest: *dest, hold: *hold}
	if *regTarget != "" {
		if g.regAt, err = net.ResolveUDPAddr("udp4", *regTarget); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	for range *nsock {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		c.SetReadBuffer(4 << 20)
		g.socks = append(g.socks, c)
		go g.read(c)
	}
	rtp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	g.rtpPort = rtp.LocalAddr().(*net.UDPAddr).Port
	var measuring atomic.Bool
	if *media {
		if g.callers, err = newRTPSide("callers", *rtpSocks, true, &measuring); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if *nAgents > 0 {
		if g.agents, err = newAgentSide(g, *nAgents, *rtpSocks, &measuring); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	var rtpPackets atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := rtp.ReadFrom(buf); err != nil {
				return
			}
			rtpPackets.Add(1)
		}
	}()

	var wg sync.WaitGroup
	if g.agents != nil {
		g.agents.registerAll(*rate)
	}
	var window chan windowResult
	if *media {
		window = make(chan windowResult, 1)
		go func() {
			time.Sleep(*dur + *settle)
			var sent *atomic.Int64
			if g.agents != nil {
				sent = &g.agents.pacer.sent
			}
			window <- measureWindow(&measuring, *measure, *pid, sent)
		}()
	}
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	for i := 0; time.Since(start) < *dur && (*maxCalls == 0 || i < *maxCalls); i++ {
		// Absolute schedule: a late tick does not lower the rate.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		g.started.Add(1)
		go func() {
			defer wg.Done()
			sock := g.socks[i%len(g.socks)]
			if *mode == "invite" {
				g.call(sock, i)
			} else {
				g.register(sock, i)
			}
		}()
	}
	offered := time.Since(start)
	wg.Wait()
	g.mu.Lock()
	slices.Sort(g.lat)
	q := func(p float64) time.Duration {
		if len(g.lat) == 0 {
			return 0
		}
		return g.lat[int(float64(len(g.lat)-1)*p)].Round(100 * time.Microsecond)
	}
	fmt.Printf("mode=%s rate=%d offered=%.1fs started=%d ok=%d (%.1f%%) shed503=%d (without Retry-After %d) failed=%d timeout=%d retransmissions=%d latency_p50=%v p90=%v p99=%v rtp_packets=%d\n",
		*mode, *rate, offered.Seconds(), g.started.Load(), g.ok.Load(), 100*float64(g.ok.Load())/float64(g.started.Load()),
		g.shed.Load(), g.shedBare.Load(), g.failed.Load(), g.timedOut.Load(), g.rtx.Load(), q(0.5), q(0.9), q(0.99), rtpPackets.Load())
	g.mu.Unlock()
	if window != nil {
		w := <-window
		g.callers.close()
		sides := []*rtpSide{g.callers}
		if g.agents != nil {
			g.agents.stop()
			sides = append(sides, g.agents.rtp)
			fmt.Printf("agents: registered=%d answered=%d rtp_sent=%d\n", g.agents.registered.Load(), g.agents.answered.Load(), g.agents.pacer.sent.Load())
		}
		w.print(sides)
	}
}

func (g *gen) read(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "SIP/2.0 ") {
			if g.agents != nil {
				g.agents.request(c, msg, from)
			}
			continue // a request from ccpbx (BYE on shutdown): ignored
		}
		r := response{}
		r.code, _ = strconv.Atoi(msg[8:11])
		var callID string
		head, _, _ := strings.Cut(msg, "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n")[1:] {
			name, val, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			val = strings.TrimSpace(val)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "call-id", "i":
				callID = val
			case "cseq":
				r.cseq = val
			case "to", "t":
				if _, tag, ok := strings.Cut(val, "tag="); ok {
					r.toTag, _, _ = strings.Cut(tag, ";")
				}
			case "www-authenticate":
				if r.auth == "" {
					r.auth = val
				}
			case "retry-after":
				r.retryAt = true
			}
		}
		if ch, ok := g.pending.Load(callID); ok {
			select {
			case ch.(chan response) <- r:
			default:
			}
		}
	}
}

// transact sends msg and retransmits it on RFC 3261's timers until a
// final response with this CSeq arrives (a provisional stops the
// retransmissions of an INVITE) or 32 s pass.
func (g *gen) transact(sock *net.UDPConn, ch chan response, msg, cseq string, invite bool) (response, bool) {
	return g.transactTo(g.target, sock, ch, msg, cseq, invite)
}

func (g *gen) transactTo(to *net.UDPAddr, sock *net.UDPConn, ch chan response, msg, cseq string, invite bool) (response, bool) {
	sock.WriteToUDP([]byte(msg), to)
	t1 := 500 * time.Millisecond
	timer := time.NewTimer(t1)
	defer timer.Stop()
	giveUp := time.After(32 * time.Second)
	retransmit := true
	for {
		select {
		case r := <-ch:
			if r.cseq != cseq {
				continue
			}
			if r.code < 200 {
				if invite {
					retransmit = false
				}
				continue
			}
			return r, true
		case <-timer.C:
			if retransmit {
				sock.WriteToUDP([]byte(msg), to)
				g.rtx.Add(1)
			}
			t1 = min(2*t1, 4*time.Second)
			timer.Reset(t1)
		case <-giveUp:
			return response{}, false
		}
	}
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func param(h, name string) string {
	for _, p := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimPrefix(k, "Digest "), name) {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func (g *gen) done(r response, ok bool, began time.Time) {
	switch {
	case !ok:
		g.timedOut.Add(1)
	case r.code == 200:
		g.ok.Add(1)
		g.mu.Lock()
		g.lat = append(g.lat, time.Since(began))
		g.mu.Unlock()
	case r.code == 503:
		g.shed.Add(1)
		if !r.retryAt {
			g.shedBare.Add(1)
		}
	default:
		g.failed.Add(1)
	}
}

func (g *gen) register(sock *net.UDPConn, i int) {
	g.registerUser(sock, i, "u"+strconv.Itoa(1000+i%g.users))
}

func (g *gen) registerUser(sock *net.UDPConn, i int, user string) bool {
	began := time.Now()
	local := sock.LocalAddr().String()
	callID := fmt.Sprintf("reg-%d-%d@sipload", i, rand.Uint64())
	ch := make(chan response, 8)
	g.pending.Store(callID, ch)
	defer g.pending.Delete(callID)
	host := g.regAt.String()
	build := func(seq int, auth string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%x\r\n", host, local, rand.Uint64())
		fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%x\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n", user, host, i, user, host, callID, seq)
		fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\nMax-Forwards: 70\r\nExpires: 3600\r\n%sContent-Length: 0\r\n\r\n", user, local, auth)
		return b.String()
	}
	r, ok := g.transactTo(g.regAt, sock, ch, build(1, ""), "1 REGISTER", false)
	if !ok || r.code != 401 {
		g.done(r, ok, began)
		return false
	}
	realm, nonce, opaque := param(r.auth, "realm"), param(r.auth, "nonce"), param(r.auth, "opaque")
	uri := "sip:" + host
	ha1, ha2 := md5hex(user+":"+realm+":"+g.password), md5hex("REGISTER:"+uri)
	cnonce := strconv.FormatUint(rand.Uint64(), 16)
	resp := md5hex(ha1 + ":" + nonce + ":00000001:" + cnonce + ":auth:" + ha2)
	auth := fmt.Sprintf("Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"%s\"",
		user, realm, nonce, uri, resp, cnonce)
	if opaque != "" {
		auth += fmt.Sprintf(", opaque=\"%s\"", opaque)
	}
	r, ok = g.transactTo(g.regAt, sock, ch, build(2, auth+"\r\n"), "2 REGISTER", false)
	g.done(r, ok, began)
	return ok && r.code == 200
}

func (g *gen) call(sock *net.UDPConn, i int) {
	began := time.Now()
	local := sock.LocalAddr().String()
	callID := fmt.Sprintf("call-%d-%d@sipload", i, rand.Uint64())
	ch := make(chan response, 16)
	g.pending.Store(callID, ch)
	defer g.pending.Delete(callID)
	host := g.target.String()
	sdp := fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", i, g.callerRTPPort(i))
	branch := fmt.Sprintf("z9hG4bK-%x", rand.Uint64())
	from := fmt.Sprintf("<sip:555%07d@127.0.0.1>;tag=%x", i%10000000, i)
	to := fmt.Sprintf("<sip:%s@%s>", g.dest, host)
	inv := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@%s>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		g.dest, host, local, branch, from, to, callID, local, len(sdp), sdp)
	r, ok := g.transact(sock, ch, inv, "1 INVITE", true)
	if !ok {
		g.done(r, ok, began)
		return
	}
	toHdr := to + ";tag=" + r.toTag
	if r.code != 200 {
		// ACK for a failure: same branch as the INVITE.
		ack := fmt.Sprintf("ACK sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=%s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			g.dest, host, local, branch, from, toHdr, callID)
		sock.WriteToUDP([]byte(ack), g.target)
		g.done(r, ok, began)
		return
	}
	ack := fmt.Sprintf("ACK sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%x\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		g.dest, host, local, rand.Uint64(), from, toHdr, callID)
	sock.WriteToUDP([]byte(ack), g.target)
	setup := time.Since(began)
	time.Sleep(g.hold)
	bye := fmt.Sprintf("BYE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%x\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		g.dest, host, local, rand.Uint64(), from, toHdr, callID)
	r, ok = g.transact(sock, ch, bye, "2 BYE", false)
	if ok && r.code == 200 {
		// Latency is the call setup's (INVITE to 200), not the hold.
		g.ok.Add(1)
		g.mu.Lock()
		g.lat = append(g.lat, setup)
		g.mu.Unlock()
		return
	}
	g.done(r, ok, began)
}
