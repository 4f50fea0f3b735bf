package media

import (
	"testing"
	"time"
)

// A stream that falls behind its timestamps by more than the holdback (a
// sender stalled for 300 ms, then paced again) is placed from its arrival
// on, not at continuations the file has already passed: before, every
// frame that landed behind the written part was lost, again after each
// commit, for as long as the stream stayed late.
func TestRecordWriterLateStreamResyncs(t *testing.T) {
	w := &recWriter{r: &Recording{stereo: true}}
	ms := func(d int64) int64 { return d * int64(time.Millisecond) }
	frame := func(at int64, ts uint32) *recFrame {
		f := &recFrame{at: at, ssrc: 7, ts: ts, n: frameSamples}
		for i := range f.n {
			f.data[i] = 0x10 // a loud µ-law sample
		}
		return f
	}
	// The first frame arrives at 20 ms: it fills samples 0..159.
	w.place(frame(ms(20), 0))
	// The file is written up to 125 ms (what commit leaves in base).
	w.base = 1000
	// The next frame (timestamp 160) arrives 300 ms late, at 340 ms: its
	// continuation (sample 160) is in the file, within recResync of its
	// arrival (sample 2560).
	at := ms(340)
	w.place(frame(at, 160))
	arrival := at*sampleRate/int64(time.Second) - frameSamples
	if got := w.side[0].pos; got != arrival {
		t.Fatalf("late frame at %d, want its arrival %d", got, arrival)
	}
	for i := range int64(frameSamples) {
		if w.win[0][arrival-w.base+i] == 0 {
			t.Fatalf("sample %d of the late frame is silence", i)
		}
	}
	// The frames after it continue from there.
	w.place(frame(at+ms(20), 320))
	if got := w.side[0].pos; got != arrival+frameSamples {
		t.Errorf("next frame at %d, want %d", got, arrival+frameSamples)
	}
	// A reordered old frame (2000 samples back, in the written part)
	// keeps its place and moves nothing: the frame after it continues
	// the stream where it was.
	back := uint32(2000)
	w.place(frame(at+ms(40), 320-back))
	w.place(frame(at+ms(40), 480))
	if got := w.side[0].pos; got != arrival+2*frameSamples {
		t.Errorf("frame after a reordered one at %d, want %d", got, arrival+2*frameSamples)
	}
}
