package media

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// TestHotPathsDoNotAllocate: receiving, relaying (with transcoding) and
// generating a packet allocate nothing.
func TestHotPathsDoNotAllocate(t *testing.T) {
	e := newEngine(t, Config{})
	pA, pB := newPeer(t), newPeer(t)
	a := answeredLeg(t, e, pA, "0 101", "a=rtpmap:101 telephone-event/8000")
	b := answeredLeg(t, e, pB, "8 96", "a=rtpmap:96 telephone-event/8000")
	disconnect, err := Connect(a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect()
	pkt := make([]byte, 12+160)
	putRTPHeader(pkt, false, 0, 1, 160, 99)
	from := netip.AddrPortFrom(loopback, uint16(pA.port()))
	var h rtpHeader
	seq := uint16(1)
	relay := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		readAs(a, pkt, from, &h)
	})
	if relay != 0 {
		t.Errorf("relayed packet: %v allocs", relay)
	}
	if a.Stats().PacketsIn == 0 || b.Stats().PacketsOut == 0 {
		t.Fatal("nothing was relayed")
	}
	// The same through the sockets: peer -> a's reader goroutine -> b ->
	// peer. AllocsPerRun counts the allocations of every goroutine.
	pB.drain()
	pB.conn.SetReadDeadline(time.Time{})
	toA := netip.AddrPortFrom(loopback, uint16(a.LocalPort()))
	rbuf := make([]byte, 1500)
	wire := testing.AllocsPerRun(200, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		if _, err := pA.conn.WriteToUDPAddrPort(pkt, toA); err != nil {
			t.Fatal(err)
		}
		if _, err := pB.conn.Read(rbuf); err != nil {
			t.Fatal(err)
		}
	})
	if wire != 0 {
		t.Errorf("packet relayed through the sockets: %v allocs", wire)
	}
	dtmf := make([]byte, 12+4)
	putRTPHeader(dtmf, false, 101, 1, 160, 99)
	digits := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(dtmf[2:], seq)
		binary.BigEndian.PutUint32(dtmf[4:], uint32(seq)) // a new event each time
		readAs(a, dtmf, from, &h)
	})
	if digits != 0 {
		t.Errorf("DTMF packet: %v allocs", digits)
	}
	// RTCP through the socket: peer -> a's RTCP port -> the poller.
	rtcp := []byte{0x81, 200, 0, 6, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	toRTCP := netip.AddrPortFrom(loopback, uint16(a.LocalPort()+1))
	rtcpAllocs := testing.AllocsPerRun(200, func() {
		n := a.stats.rtcp.Load()
		if _, err := pA.conn.WriteToUDPAddrPort(rtcp, toRTCP); err != nil {
			t.Fatal(err)
		}
		for a.stats.rtcp.Load() == n {
			runtime.Gosched()
		}
	})
	if rtcpAllocs != 0 {
		t.Errorf("RTCP packet through the socket: %v allocs", rtcpAllocs)
	}

	music, _ := e.Sound(mohPath)
	src := &source{kind: "music"}
	c := answeredLeg(t, e, newPeer(t), "0")
	c.out.push(src)
	i := 0
	gen := testing.AllocsPerRun(1000, func() {
		u, al := music.frames(i % music.Frames())
		c.out.sendFrame(src, u, al, frameSamples, false)
		i++
	})
	if gen != 0 {
		t.Errorf("generated packet: %v allocs", gen)
	}
	if c.Stats().PacketsOut == 0 {
		t.Fatal("nothing was generated")
	}
}

// BenchmarkRelayPacket: one received packet through the bridge to the other
// leg's socket (PCMU -> PCMA), without the receive syscall.
func BenchmarkRelayPacket(b *testing.B) { relayPacket(b, false) }

// relayPacket relays packets from one leg to the other; with record, both
// legs are recorded (record_bench_test.go), so each packet is tapped twice.
func relayPacket(b *testing.B, record bool) {
	e := newEngine(b, Config{RecordingsDir: b.TempDir()})
	pA, pB := newPeer(b), newPeer(b)
	pB.conn.SetReadBuffer(1 << 20)
	la := answeredLeg(b, e, pA, "0")
	lb := answeredLeg(b, e, pB, "8")
	disconnect, err := Connect(la, lb)
	if err != nil {
		b.Fatal(err)
	}
	defer disconnect()
	if record {
		for i, l := range []*Leg{la, lb} {
			r, err := l.Record(fmt.Sprintf("bench%d.wav", i), RecordOptions{Stereo: true})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Stop()
		}
	}
	pkt := make([]byte, 12+160)
	putRTPHeader(pkt, false, 0, 1, 160, 99)
	from := netip.AddrPortFrom(loopback, uint16(pA.port()))
	var h rtpHeader
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i)*160)
		readAs(la, pkt, from, &h)
	}
}

// BenchmarkGeneratedPacket: one pre-encoded frame onto a leg's socket.
func BenchmarkGeneratedPacket(b *testing.B) {
	e := newEngine(b, Config{})
	l := answeredLeg(b, e, newPeer(b), "0")
	music, _ := e.Sound(mohPath)
	src := &source{kind: "music"}
	l.out.push(src)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		u, a := music.frames(i % music.Frames())
		l.out.sendFrame(src, u, a, frameSamples, false)
	}
}

// BenchmarkParseRTP: header validation of a received packet.
func BenchmarkParseRTP(b *testing.B) {
	pkt := make([]byte, 12+160)
	putRTPHeader(pkt, false, 0, 1, 160, 99)
	var h rtpHeader
	b.ReportAllocs()
	for b.Loop() {
		parseRTP(pkt, &h)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hist is a histogram of microseconds, 1 µs buckets up to 1 s.
type hist struct {
	mu     sync.Mutex
	counts []uint64
	n      uint64
	max    int64
}

func newHist() *hist { return &hist{counts: make([]uint64, 1_000_000)} }

func (h *hist) add(us int64) {
	if us < 0 {
		us = -us
	}
	h.mu.Lock()
	if us >= int64(len(h.counts)) {
		us = int64(len(h.counts) - 1)
	}
	h.counts[us]++
	h.n++
	h.max = max(h.max, us)
	h.mu.Unlock()
}

func (h *hist) pct(p float64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := uint64(p * float64(h.n))
	var c uint64
	for i, n := range h.counts {
		c += n
		if c > want {
			return int64(i)
		}
	}
	return h.max
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchSeconds() time.Duration {
	return time.Duration(benchEnvInt("MEDIA_BENCH_SECONDS", 5)) * time.Second
}

// sink is a UDP socket that receives many streams and runs fn per packet.
type sink struct {
	conn *net.UDPConn
	wg   sync.WaitGroup
}

func newSink(b *testing.B, fn func(pkt []byte, at int64)) *sink {
	c := pbxtest.ListenUDP(b)
	c.SetReadBuffer(4 << 20)
	c.SetWriteBuffer(4 << 20)
	s := &sink{conn: c}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			fn(buf[:n], monoNow())
		}
	}()
	return s
}

func (s *sink) close() { s.conn.Close(); s.wg.Wait() }

func (s *sink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

func offerTo(port int, formats string) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=b 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\n", port, formats))
}

// BenchmarkMusicOnHold subscribes many legs (MEDIA_BENCH_STREAMS, default
// 2000) to one music broadcaster and measures the send-interval jitter of
// every stream (|interval between two frames sent to the same stream - 20
// ms|), frames lost (clock skips, frames dropped on a busy leg, failed sends)
// and process CPU per stream. The streams go to sink sockets that are never
// read (the kernel drops the excess), so the CPU is the sender's.
// Run it with -benchtime=1x; it lasts MEDIA_BENCH_SECONDS (default 5).
func BenchmarkMusicOnHold(b *testing.B) {
	streams := benchEnvInt("MEDIA_BENCH_STREAMS", 2000)
	e := newEngine(b, Config{})
	music, err := e.Sound(mohPath)
	if err != nil {
		b.Fatal(err)
	}
	br, err := e.broadcaster(music)
	if err != nil {
		b.Fatal(err)
	}
	var measuring atomic.Bool
	jit := newHist()
	br.onSend = func(s *mohSub, at int64) {
		if s.sentAt != 0 && measuring.Load() {
			jit.add((at - s.sentAt - frameNs) / 1000)
		}
		s.sentAt = at
	}
	const nsinks = 4
	var sinks []*net.UDPConn
	for range nsinks {
		c := pbxtest.ListenUDP(b)
		c.SetReadBuffer(64 << 10)
		sinks = append(sinks, c)
	}
	legs := make([]*Leg, streams)
	for i := range legs {
		l, err := e.NewLeg(loopback)
		if err != nil {
			b.Fatalf("leg %d: %v", i, err)
		}
		port := sinks[i%nsinks].LocalAddr().(*net.UDPAddr).Port
		if _, err := l.AnswerOffer(offerTo(port, "0 8")); err != nil {
			b.Fatal(err)
		}
		legs[i] = l
	}
	runtime.GC()
	stops := make([]func(), streams)
	for i, l := range legs {
		stop, err := l.Music(mohPath)
		if err != nil {
			b.Fatal(err)
		}
		stops[i] = stop
	}
	// A warm-up second before measuring (not synchronisation): the counters
	// are read as differences, so only steady state is measured.
	time.Sleep(time.Second)
	sent := func() (n, dropped, failed uint64) {
		for _, l := range legs {
			s := l.Stats()
			n, dropped, failed = n+s.PacketsOut, dropped+s.Dropped, failed+s.SendErrors
		}
		return
	}
	ticks0, lost0 := e.MusicStats(mohPath)
	sent0, dropped0, failed0 := sent()
	measuring.Store(true)
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(benchSeconds())
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	measuring.Store(false)
	ticks, lost := e.MusicStats(mohPath)
	sent1, dropped1, failed1 := sent()
	for _, stop := range stops {
		stop()
	}
	for _, l := range legs {
		l.Close()
	}
	shards := uint64((streams + mohShardSize - 1) / mohShardSize)
	b.ReportMetric(float64(jit.pct(0.50)), "jitter-p50-µs")
	b.ReportMetric(float64(jit.pct(0.99)), "jitter-p99-µs")
	b.ReportMetric(float64(jit.max), "jitter-max-µs")
	b.ReportMetric(float64(lost-lost0), "clock-frames-lost")
	b.ReportMetric(float64(dropped1-dropped0), "busy-drops")
	b.ReportMetric(float64(failed1-failed0), "send-errors")
	b.ReportMetric(float64(sent1-sent0)/wall.Seconds(), "sent-pps")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
	b.ReportMetric(cpu.Seconds()/wall.Seconds()/float64(streams)*1e6, "cpu-µs/s-per-stream")
	b.Logf("%d streams on %d clock goroutines, %v: %d ticks per clock (%.0f expected)",
		streams, shards, wall.Round(time.Millisecond), (ticks-ticks0)/shards, wall.Seconds()*50)
}

// BenchmarkRelayBridges bridges MEDIA_BENCH_BRIDGES (default 500) pairs of
// legs. Generator sockets in the same process send 50 packets/s into both
// legs of every bridge, each stamped with its send time; the relayed packets
// come back to the generator sockets (the legs latch to them), which measure
// the added latency. Reports whole-process CPU (generator and sinks
// included) and latency p50/p99. Run with -benchtime=1x.
func BenchmarkRelayBridges(b *testing.B) { relayBridges(b, false) }

// relayBridges runs MEDIA_BENCH_BRIDGES bridges; with record, each bridge is
// recorded (stereo WAV) from its first leg.
func relayBridges(b *testing.B, record bool) {
	bridges := benchEnvInt("MEDIA_BENCH_BRIDGES", 500)
	cfg := Config{}
	if record {
		cfg.RecordingsDir = b.TempDir()
	}
	e := newEngine(b, cfg)
	lat := newHist()
	var received atomic.Uint64
	const nsocks = 8
	var socks []*sink
	for range nsocks {
		socks = append(socks, newSink(b, func(pkt []byte, at int64) {
			var h rtpHeader
			if !parseRTP(pkt, &h) || h.payloadEnd-h.payloadOff < 8 {
				return
			}
			sent := int64(binary.BigEndian.Uint64(pkt[h.payloadOff:]))
			received.Add(1)
			lat.add((at - sent) / 1000)
		}))
	}
	type target struct {
		sock *sink
		to   netip.AddrPort
		seq  uint16
		ts   uint32
	}
	var targets []*target
	var disconnects []func()
	var recs []*Recording
	for i := range bridges {
		var pair [2]*Leg
		for j := range pair {
			l, err := e.NewLeg(loopback)
			if err != nil {
				b.Fatalf("leg: %v", err)
			}
			s := socks[(2*i+j)%nsocks]
			if _, err := l.AnswerOffer(offerTo(s.port(), "0")); err != nil {
				b.Fatal(err)
			}
			pair[j] = l
			targets = append(targets, &target{sock: s, to: netip.AddrPortFrom(loopback, uint16(l.LocalPort()))})
		}
		d, err := Connect(pair[0], pair[1])
		if err != nil {
			b.Fatal(err)
		}
		disconnects = append(disconnects, d)
		if record {
			r, err := pair[0].Record(fmt.Sprintf("bench/%d.wav", i), RecordOptions{Stereo: true})
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	// Generators: a few goroutines, each sending one packet to each of its
	// targets every 20 ms on absolute deadlines, spread over the period.
	const ngen = 4
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range ngen {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*target
			for i := g; i < len(targets); i += ngen {
				mine = append(mine, targets[i])
			}
			pkt := make([]byte, 12+160)
			start := time.Now().Add(time.Duration(g) * frameDuration / ngen)
			for n := 0; ; n++ {
				time.Sleep(time.Until(start.Add(time.Duration(n) * frameDuration)))
				select {
				case <-stop:
					return
				default:
				}
				for _, t := range mine {
					t.seq++
					t.ts += frameSamples
					putRTPHeader(pkt, false, 0, t.seq, t.ts, 1234)
					binary.BigEndian.PutUint64(pkt[12:], uint64(monoNow()))
					t.sock.conn.WriteToUDPAddrPort(pkt, t.to)
				}
			}
		}()
	}
	time.Sleep(time.Second) // warm-up before measuring, as above
	lat = newHist()
	rx0 := received.Load()
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(benchSeconds())
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	rx := received.Load() - rx0
	close(stop)
	wg.Wait()
	for _, d := range disconnects {
		d()
	}
	for _, s := range socks {
		s.close()
	}
	expected := float64(2*bridges) * 50 * wall.Seconds()
	b.ReportMetric(float64(lat.pct(0.50)), "latency-p50-µs")
	b.ReportMetric(float64(lat.pct(0.99)), "latency-p99-µs")
	b.ReportMetric(float64(lat.max), "latency-max-µs")
	b.ReportMetric(float64(rx)/wall.Seconds(), "relayed-pps")
	b.ReportMetric(max(0, 100*(1-float64(rx)/expected)), "loss-%")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
	if record {
		var frames, dropped uint64
		for _, r := range recs {
			r.Stop()
			st := r.Stats()
			frames, dropped = frames+st.Frames, dropped+st.Dropped
		}
		b.ReportMetric(100*float64(dropped)/float64(max(frames+dropped, 1)), "rec-dropped-%")
	}
}
