package media

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRelayBridgesRecording is BenchmarkRelayBridges with every bridge
// recorded to a stereo WAV file (BENCHMARKS.md compares the two).
func BenchmarkRelayBridgesRecording(b *testing.B) { relayBridges(b, true) }

// BenchmarkRelayPacketRecording is BenchmarkRelayPacket with the leg being
// recorded: the tap's cost on the packet path (both directions are copied
// into the ring: what the leg received and what it sent).
func BenchmarkRelayPacketRecording(b *testing.B) {
	for _, record := range []bool{false, true} {
		name := "off"
		if record {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
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
				// Record the receiving leg and the sending one: a packet
				// is tapped once on each side of the relay.
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
				la.handleRTP(pkt, from, &h)
			}
		})
	}
}

// BenchmarkRecordWriterSecond is the writer goroutine's work for one second
// of a recorded call (50 frames each way, G.711 decode, timeline, stereo
// WAV written to a file), without the goroutine: the CPU a recording adds
// per call-second besides the copy on the packet path.
func BenchmarkRecordWriterSecond(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "w.wav"))
	if err != nil {
		b.Fatal(err)
	}
	ww, err := newWAVWriter(f, 2)
	if err != nil {
		b.Fatal(err)
	}
	r := &Recording{stereo: true}
	w := &recWriter{r: r, f: f, wav: ww, log: quietLog()}
	var fr recFrame
	fr.n = frameSamples
	for i := range fr.data[:frameSamples] {
		fr.data[i] = byte(i)
	}
	const second = int64(time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i := int64(0); b.Loop(); i++ {
		for k := range int64(50) {
			for _, right := range []bool{false, true} {
				fr.right, fr.ssrc = right, 7
				fr.ts = uint32((i*50 + k) * frameSamples)
				fr.at = i*second + (k+1)*int64(frameDuration)
				w.place(&fr)
			}
			if k%5 == 4 { // the writer's 100 ms tick
				if to := (i*second+(k+1)*int64(frameDuration))*sampleRate/second - recHoldback; to-w.base >= recCommit {
					w.commit(to)
				}
			}
		}
	}
	b.StopTimer()
	w.finish()
	if w.failed {
		b.Fatal(r.err)
	}
}

// BenchmarkRecordPush is the packet path's share of a recording: one
// payload copied into the ring (the writer's side, taking it back out, is
// included so the ring never fills and nothing is dropped).
func BenchmarkRecordPush(b *testing.B) {
	r := &Recording{free: make(chan *recFrame, recRing), full: make(chan *recFrame, recRing)}
	pool := make([]recFrame, recRing)
	for i := range pool {
		r.free <- &pool[i]
	}
	payload := make([]byte, frameSamples)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.push(i%2 == 0, 7, uint32(i)*frameSamples, payload, false)
		r.free <- <-r.full
	}
	if r.dropped.Load() != 0 {
		b.Fatal("dropped")
	}
}
