package interop

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"

	"ccpbx/internal/pbxtest"
)

// rtpPeer is the audio device of a sipp phone: sipp does the SIP, its SDP
// names this socket, and the test records and analyses what the PBX sends
// and answers with a tone (sipp itself can neither record nor analyse).
// It sends back to where the PBX's RTP comes from (symmetric RTP, what every
// phone behind NAT relies on) once the first packet arrived.
type rtpPeer struct {
	name string
	conn *net.UDPConn
	tone float64

	mu     sync.Mutex
	pkts   []rxPacket
	remote *net.UDPAddr
	sent   int
	bad    int // datagrams that were not RTP

	stop chan struct{}
	wg   sync.WaitGroup
}

type rxPacket struct {
	at      time.Time
	seq     uint16
	ts      uint32
	pt      uint8
	samples []int16
}

// newRTPPeer listens on 127.0.0.1:0 and sends tone (Hz, 0 = nothing) once
// it knows where the PBX's media comes from.
func newRTPPeer(t testing.TB, name string, tone float64) *rtpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("%s: rtp listen: %v", name, err)
	}
	p := &rtpPeer{name: name, conn: c, tone: tone, stop: make(chan struct{})}
	p.wg.Add(2)
	go p.readLoop()
	go p.sendLoop()
	t.Cleanup(p.close)
	return p
}

func (p *rtpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *rtpPeer) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.conn.Close()
	p.wg.Wait()
}

func (p *rtpPeer) readLoop() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil || pkt.Version != 2 {
			p.mu.Lock()
			p.bad++
			p.mu.Unlock()
			continue
		}
		var lin []byte
		switch pkt.PayloadType {
		case 0:
			lin = g711.DecodeUlaw(pkt.Payload)
		case 8:
			lin = g711.DecodeAlaw(pkt.Payload)
		}
		samples := make([]int16, len(lin)/2)
		for i := range samples {
			samples[i] = int16(uint16(lin[2*i]) | uint16(lin[2*i+1])<<8)
		}
		p.mu.Lock()
		p.pkts = append(p.pkts, rxPacket{at: time.Now(), seq: pkt.SequenceNumber, ts: pkt.Timestamp, pt: pkt.PayloadType, samples: samples})
		if p.remote == nil {
			p.remote = from
		}
		p.mu.Unlock()
	}
}

func (p *rtpPeer) sendLoop() {
	defer p.wg.Done()
	if p.tone == 0 {
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	seq := uint16(rand.IntN(65536))
	ts := rand.Uint32()
	ssrc := rand.Uint32()
	off := 0
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		to := p.remote
		p.mu.Unlock()
		if to == nil {
			continue
		}
		s := sine(p.tone, off, frameLen)
		off += frameLen
		lin := make([]byte, 2*len(s))
		for i, v := range s {
			lin[2*i], lin[2*i+1] = byte(v), byte(uint16(v)>>8)
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}, Payload: g711.EncodeUlaw(lin)}
		seq++
		ts += frameLen
		b, err := pkt.Marshal()
		if err != nil {
			continue
		}
		if _, err := p.conn.WriteToUDP(b, to); err == nil {
			p.mu.Lock()
			p.sent++
			p.mu.Unlock()
		}
	}
}

// count is the number of RTP packets received so far.
func (p *rtpPeer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pkts)
}

// waitPackets waits until n packets arrived after index from.
func (p *rtpPeer) waitPackets(from, n int, timeout time.Duration) error {
	if pbxtest.Until(timeout, func() bool { return p.count()-from >= n }) {
		return nil
	}
	return fmt.Errorf("%s: %d RTP packets arrived in %s, want at least %d (sent %d)", p.name, p.count()-from, timeout, n, p.sentCount())
}

func (p *rtpPeer) sentCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent
}

// packets returns the packets received in [from, to) (to < 0: all).
func (p *rtpPeer) packets(from, to int) []rxPacket {
	p.mu.Lock()
	defer p.mu.Unlock()
	if to < 0 || to > len(p.pkts) {
		to = len(p.pkts)
	}
	if from > to {
		return nil
	}
	return append([]rxPacket(nil), p.pkts[from:to]...)
}

// samplesOf concatenates the decoded audio of pkts.
func samplesOf(pkts []rxPacket) []int16 {
	var out []int16
	for _, k := range pkts {
		out = append(out, k.samples...)
	}
	return out
}

// gapFree returns the longest stretch of pkts whose RTP clock advances one
// frame per packet, i.e. audio the sender produced without skipping.
func gapFree(pkts []rxPacket) []rxPacket {
	best, start := pkts[:0], 0
	for i := 1; i <= len(pkts); i++ {
		if i == len(pkts) || pkts[i].ts-pkts[i-1].ts != frameLen {
			if i-start > len(best) {
				best = pkts[start:i]
			}
			start = i
		}
	}
	return best
}

// streamCheck verifies what RFC 3551 and the article's 20 ms ptime imply
// for a G.711 stream: 160-sample payloads, sequence +1 per packet, the RTP
// clock advancing 160 per packet (a multiple of 160 across a gap the sender
// skipped), and packets arriving every 20 ms, i.e. 50 packets/s. The rate
// is the median inter-arrival time, so a stall of the loaded CI machine
// (the test shares two cores with everything else) does not count as a
// wrong rate; gaps are reported in the log line instead.
func streamCheck(pkts []rxPacket) (rate float64, gaps int, err error) {
	if len(pkts) < 50 {
		return 0, 0, fmt.Errorf("only %d packets to measure, want at least 50 (1 s)", len(pkts))
	}
	var errs []error
	intervals := make([]time.Duration, 0, len(pkts))
	for i, k := range pkts {
		if k.pt != 0 && k.pt != 8 {
			errs = append(errs, fmt.Errorf("packet %d has payload type %d, want 0 (PCMU) or 8 (PCMA)", i, k.pt))
			break
		}
		if len(k.samples) != frameLen {
			errs = append(errs, fmt.Errorf("packet %d carries %d samples, want %d (20 ms)", i, len(k.samples), frameLen))
			break
		}
		if i == 0 {
			continue
		}
		prev := pkts[i-1]
		intervals = append(intervals, k.at.Sub(prev.at))
		if k.seq != prev.seq+1 {
			errs = append(errs, fmt.Errorf("packet %d: sequence %d follows %d", i, k.seq, prev.seq))
			break
		}
		step := k.ts - prev.ts
		if step == 0 || step%frameLen != 0 || step > 50*frameLen {
			errs = append(errs, fmt.Errorf("packet %d: timestamp step %d, want %d", i, step, frameLen))
			break
		}
		if step != frameLen {
			gaps++
		}
	}
	slices.Sort(intervals)
	median := intervals[len(intervals)/2]
	if median > 0 {
		rate = float64(time.Second) / float64(median)
	}
	if rate < 45 || rate > 55 {
		errs = append(errs, fmt.Errorf("packets every %s (median), i.e. %.1f packets/s, want 20 ms (50/s)", median, rate))
	}
	return rate, gaps, errors.Join(errs...)
}
