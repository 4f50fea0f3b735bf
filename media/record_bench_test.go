package media

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRelayBridgesRecording is BenchmarkRelayBridges with every bridge
// recorded to a stereo WAV file (BENCHMARKS.md compares the two).
func BenchmarkRelayBridgesRecording(b *testing.B) { relayBridges(b, true) }

// BenchmarkRelayPacketRecording is BenchmarkRelayPacket with both legs
// recorded: the tap's cost on the packet path (each packet is copied into
// the ring of the leg that received it and of the leg that sends it).
func BenchmarkRelayPacketRecording(b *testing.B) { relayPacket(b, true) }

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
