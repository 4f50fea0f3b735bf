package media

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zaf/g711"

	"ccpbx/guard"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

const (
	callerHz = 450.0  // multiples of 50 Hz: an exact Goertzel bin for 160 samples
	agentHz  = 1250.0 // the agent's tone
)

// toneFrames counts the 20 ms frames of s dominated by freq.
func toneFrames(s []int16, freq float64) int { return testphone.ToneFrames(s, freq) }

func nonZero(s []int16) int {
	n := 0
	for _, v := range s {
		if v != 0 {
			n++
		}
	}
	return n
}

func readRecording(t *testing.T, path string) [][]int16 {
	t.Helper()
	ch, err := testphone.ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// sendTone sends n 20 ms packets of a tone at freq from p to l, paced as a
// phone paces them, with a continuous phase across packets.
func sendTone(p *peer, l *Leg, alaw bool, freq float64, n int) {
	pt := uint8(0)
	if alaw {
		pt = 8
	}
	payload := make([]byte, frameSamples)
	tick := time.NewTicker(frameDuration)
	defer tick.Stop()
	for k := range n {
		for i := range payload {
			v := int16(10000 * math.Sin(2*math.Pi*freq*float64(k*frameSamples+i)/sampleRate))
			if alaw {
				payload[i] = g711.EncodeAlawFrame(v)
			} else {
				payload[i] = g711.EncodeUlawFrame(v)
			}
		}
		p.send(l, pt, k == 0, payload)
		<-tick.C
	}
}

// bridged is a caller leg (PCMU) bridged to an agent leg (PCMA) on an
// engine that records into a temporary folder.
func bridged(t *testing.T) (e *Engine, dir string, caller, agent *peer, a, b *Leg) {
	t.Helper()
	dir = t.TempDir()
	e = newEngine(t, Config{RecordingsDir: dir})
	caller, agent = newPeer(t), newPeer(t)
	a = answeredLeg(t, e, caller, "0")
	b = answeredLeg(t, e, agent, "8")
	disconnect, err := Connect(a, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(disconnect)
	return e, dir, caller, agent, a, b
}

func TestRecordBridgedCallStereo(t *testing.T) {
	_, dir, caller, agent, a, b := bridged(t)
	stopped := make(chan error, 1)
	start := time.Now()
	r, err := a.Record("queue/3000/call.wav", RecordOptions{Stereo: true, OnStop: func(_ RecordStats, err error) { stopped <- err }})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sendTone(caller, a, false, callerHz, n) }()
	go func() { defer wg.Done(); sendTone(agent, b, true, agentHz, n) }()
	wg.Wait()
	// Both directions reach the writer: what a received and what it sent.
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return r.Stats().Frames >= 2*n }, "recording frames: %+v", r.Stats)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := <-stopped; err != nil {
		t.Fatalf("OnStop: %v", err)
	}
	if got := a.Recordings(); len(got) != 0 {
		t.Errorf("recordings after Stop: %v", got)
	}
	ch := readRecording(t, filepath.Join(dir, "queue", "3000", "call.wav"))
	if len(ch) != 2 {
		t.Fatalf("%d channels, want 2", len(ch))
	}
	left, right := ch[0], ch[1]
	t.Logf("%d samples; left: %d caller frames, %d agent frames; right: %d caller, %d agent; %+v",
		len(left), toneFrames(left, callerHz), toneFrames(left, agentHz), toneFrames(right, callerHz), toneFrames(right, agentHz), r.Stats())
	// Length: at least the audio that was sent, at most the time that passed.
	if min, max := n*frameSamples, int(elapsed.Seconds()*sampleRate)+frameSamples; len(left) < min || len(left) > max {
		t.Errorf("%d samples, want %d..%d", len(left), min, max)
	}
	// Each side's tone, on its own side, once: no frame lost or doubled.
	if got := toneFrames(left, callerHz); got < n-2 {
		t.Errorf("left: %d frames of the caller's tone, want >= %d", got, n-2)
	}
	if got := toneFrames(right, agentHz); got < n-2 {
		t.Errorf("right: %d frames of the agent's tone, want >= %d", got, n-2)
	}
	if toneFrames(left, agentHz) != 0 || toneFrames(right, callerHz) != 0 {
		t.Error("a tone leaked into the other channel")
	}
	for side, s := range ch {
		if nz := nonZero(s); nz > n*frameSamples || nz < n*frameSamples*9/10 {
			t.Errorf("channel %d: %d samples of sound, want about %d", side, nz, n*frameSamples)
		}
	}
	if st := r.Stats(); st.Samples != int64(len(left)) || st.Dropped != 0 {
		t.Errorf("stats %+v, file %d samples", st, len(left))
	}
}

// A side that sends nothing is silence of the right length; mono mixes.
func TestRecordSilentSideAndMono(t *testing.T) {
	_, dir, _, agent, a, b := bridged(t)
	stereo, err := a.Record("stereo.wav", RecordOptions{Stereo: true})
	if err != nil {
		t.Fatal(err)
	}
	mono, err := a.Record("mono.wav", RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	sendTone(agent, b, true, agentHz, n)
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return mono.Stats().Frames >= n && stereo.Stats().Frames >= n }, "frames")
	if err := a.StopRecording("all"); err != nil {
		t.Fatal(err)
	}
	if err := a.StopRecording("all"); !errors.Is(err, ErrNotRecording) {
		t.Errorf("second stop: %v, want ErrNotRecording", err)
	}
	ch := readRecording(t, filepath.Join(dir, "stereo.wav"))
	if len(ch[0]) < n*frameSamples {
		t.Errorf("%d samples, want >= %d", len(ch[0]), n*frameSamples)
	}
	if nonZero(ch[0]) != 0 {
		t.Errorf("left (the silent caller) has %d samples of sound", nonZero(ch[0]))
	}
	if got := toneFrames(ch[1], agentHz); got < n-2 {
		t.Errorf("right: %d agent frames, want >= %d", got, n-2)
	}
	m := readRecording(t, filepath.Join(dir, "mono.wav"))
	if len(m) != 1 || len(m[0]) < n*frameSamples || toneFrames(m[0], agentHz) < n-2 {
		t.Errorf("mono: %d channels, %d samples, %d agent frames", len(m), len(m[0]), toneFrames(m[0], agentHz))
	}
	// The mono file is what the sound loader reads.
	b2, _ := os.ReadFile(filepath.Join(dir, "mono.wav"))
	if _, err := DecodeWAV("mono.wav", b2); err != nil {
		t.Errorf("DecodeWAV: %v", err)
	}
}

// While recording, the header is kept current, so a crash leaves a file
// that reads up to the last sync.
func TestRecordHeaderSyncedWhileRecording(t *testing.T) {
	_, dir, caller, _, a, _ := bridged(t)
	r, err := a.Record("live.wav", RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	sendTone(caller, a, false, callerHz, 10)
	path := filepath.Join(dir, "live.wav")
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || len(b) < wavHeaderLen {
			return false
		}
		size := int(binary.LittleEndian.Uint32(b[40:]))
		return size > 0 && size <= len(b)-wavHeaderLen
	}, "the header of %s to cover written audio", path)
}

func TestRecordRefusedPaths(t *testing.T) {
	_, dir, _, _, a, _ := bridged(t)
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"../escape.wav", "/etc/ccpbx.wav", "a/../../b.wav", "file/x.wav", ".", ""} {
		if r, err := a.Record(p, RecordOptions{}); err == nil {
			r.Stop()
			t.Errorf("Record(%q) succeeded", p)
		} else if p == "../escape.wav" && !errors.Is(err, guard.ErrOutside) {
			t.Errorf("Record(%q): %v, want guard.ErrOutside", p, err)
		}
	}
	if got := a.Recordings(); len(got) != 0 {
		t.Errorf("recordings: %v", got)
	}
	// Absolute inside the folder is fine.
	r, err := a.Record(filepath.Join(dir, "abs.wav"), RecordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.StopRecording(r.File()); err != nil {
		t.Fatal(err)
	}
}

func TestRecordNeedsRecordingsDir(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Record("x.wav", RecordOptions{}); err == nil {
		t.Error("recorded without a recordings_dir")
	}
}

// faultFile fails every write after the first limit bytes, like a disk
// that fills up.
type faultFile struct {
	limit   int64
	written atomic.Int64
	closed  atomic.Bool
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) > f.limit {
		return 0, syscall.ENOSPC
	}
	f.written.Add(int64(len(b)))
	return len(b), nil
}

func (f *faultFile) Close() error { f.closed.Store(true); return nil }

// A full disk ends the recording (OnStop reports it); the call goes on.
func TestRecordDiskFullKeepsTheCall(t *testing.T) {
	_, _, caller, agent, a, _ := bridged(t)
	f := &faultFile{limit: wavHeaderLen + 1000}
	stopped := make(chan error, 1)
	r, err := a.startRecording("full.wav", "full.wav", f, RecordOptions{OnStop: func(_ RecordStats, err error) { stopped <- err }})
	if err != nil {
		t.Fatal(err)
	}
	sendTone(caller, a, false, callerHz, 30) // 4800 samples: more than the disk takes
	var got error
	select {
	case got = <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("a failing disk did not end the recording")
	}
	if !errors.Is(got, syscall.ENOSPC) {
		t.Errorf("OnStop(%v), want ENOSPC", got)
	}
	<-r.Done()
	if !f.closed.Load() {
		t.Error("file not closed")
	}
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return len(a.Recordings()) == 0 }, "the failed recording to detach")
	// The relay still works.
	agent.drain()
	caller.send(a, 0, false, make([]byte, frameSamples))
	agent.recv()
	if err := r.Stop(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Stop: %v", err)
	}
}

// The tap adds no allocation to the relay, even when the ring is full.
func TestRecordTapDoesNotAllocate(t *testing.T) {
	_, _, caller, _, a, _ := bridged(t)
	r, err := a.Record("alloc.wav", RecordOptions{Stereo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	pkt := make([]byte, 12+160)
	from := netip.AddrPortFrom(loopback, uint16(caller.port()))
	var h rtpHeader
	seq := uint16(1)
	allocs := testing.AllocsPerRun(2000, func() {
		seq++
		putRTPHeader(pkt, false, 0, seq, uint32(seq)*160, 99)
		readAs(a, pkt, from, &h)
	})
	if allocs != 0 {
		t.Errorf("recorded packet: %v allocs", allocs)
	}
	if r.Stats().Frames == 0 {
		t.Fatal("nothing was recorded")
	}
}

// Hangup: closing the leg completes its recordings.
func TestRecordStopsWhenLegCloses(t *testing.T) {
	_, dir, caller, _, a, _ := bridged(t)
	stopped := make(chan error, 1)
	r, err := a.Record("hangup.wav", RecordOptions{OnStop: func(_ RecordStats, err error) { stopped <- err }})
	if err != nil {
		t.Fatal(err)
	}
	sendTone(caller, a, false, callerHz, 10)
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return r.Stats().Frames >= 10 }, "frames")
	a.Close()
	select {
	case <-r.Done():
	default:
		t.Fatal("Close returned before the recording was complete")
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if ch := readRecording(t, filepath.Join(dir, "hangup.wav")); toneFrames(ch[0], callerHz) < 8 {
		t.Errorf("%d caller frames in %d samples", toneFrames(ch[0], callerHz), len(ch[0]))
	}
	if _, err := a.Record("late.wav", RecordOptions{}); err == nil {
		t.Error("recorded a closed leg")
	}
	if _, err := os.Stat(filepath.Join(dir, "late.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused recording left a file: %v", err)
	}
}
