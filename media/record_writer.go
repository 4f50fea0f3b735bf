package media

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/zaf/g711"
)

// The writer of a recording (record.go): one goroutine per recording that
// takes the frames out of the ring, decodes them onto a sample timeline and
// writes the WAV file.
//
// The timeline starts when the recording does. A frame continues its
// stream at the position its RTP timestamp says (so jitter does not move it
// and a gap inside a talkspurt stays a gap); a new stream (SSRC), a timestamp
// jump, a drift of more than recResync from the arrival time, or a position
// already written to the file (a stream that fell behind by more than
// recHoldback) puts it at its arrival time instead. Whatever no frame covers is silence, so a side
// that sends nothing still yields a file as long as the recording.
//
// The window holds what may still change: recCommit samples gathered for
// the next write, recHoldback for late frames and a tick of arrivals must
// fit in recWindow.

const _ = uint(recWindow - recCommit - recHoldback - int64(recTick*sampleRate/time.Second)) // negative: no build

// recWriter is the writer goroutine's state.
type recWriter struct {
	r   *Recording
	f   recFile
	wav *wavWriter
	log *slog.Logger
	t0  int64 // monoNow at the start: sample 0

	base   int64 // timeline position of win[0]: everything before it is in the file
	hi     int64 // one past the last sample any frame filled
	side   [2]recSide
	win    [2][recWindow]int16
	out    [4 * recCommit]byte // one commit of stereo samples: one write
	failed bool
}

// recSide is where one direction's stream stands on the timeline.
type recSide struct {
	started bool
	ssrc    uint32
	ts      uint32 // of the last frame
	pos     int64  // timeline position of the last frame's first sample
}

func (w *recWriter) run() {
	r := w.r
	defer close(r.done)
	tick := time.NewTicker(recTick)
	defer tick.Stop()
	ticks := 0
	for {
		// The writer wakes on its tick only and takes what the ring holds:
		// a packet never wakes a goroutine, which at hundreds of calls
		// would cost more than the recording itself.
		select {
		case <-tick.C:
			w.drain()
			if to := w.nowPos() - recHoldback; to-w.base >= recCommit {
				w.commit(to)
			}
			if ticks++; ticks%recSyncEvery == 0 && !w.failed {
				if err := w.wav.syncHeader(); err != nil {
					w.fail(err)
				}
			}
			if w.failed {
				w.finish()
				go r.Stop() // detach and report from outside this goroutine
				return
			}
		case <-r.stop:
			w.drain()
			w.commit(max(w.nowPos(), w.hi))
			w.finish()
			return
		}
	}
}

// drain places every frame waiting in the ring and frees it.
func (w *recWriter) drain() {
	for {
		select {
		case f := <-w.r.full:
			w.place(f)
			w.r.free <- f
		default:
			return
		}
	}
}

func (w *recWriter) nowPos() int64 {
	return (monoNow() - w.t0) * sampleRate / int64(time.Second)
}

// place decodes f onto the timeline window.
func (w *recWriter) place(f *recFrame) {
	k := 0
	if f.right {
		k = 1
	}
	s := &w.side[k]
	n := int64(f.n)
	arrival := max((f.at-w.t0)*sampleRate/int64(time.Second)-n, 0)
	pos := arrival
	if s.started && s.ssrc == f.ssrc {
		// A next frame whose continuation the file has already passed
		// would be lost, and so would every frame after it while the
		// stream stays that late: it starts again at its arrival too. An
		// older frame (reordered) keeps its place, written or not.
		d := int64(int32(f.ts - s.ts))
		if cont := s.pos + d; cont >= arrival-recResync && cont <= arrival+recResync && (cont >= w.base || d <= 0) {
			pos = cont
		}
	}
	s.started, s.ssrc, s.ts, s.pos = true, f.ssrc, f.ts, pos
	if end := pos + n; end > w.base+recWindow {
		w.commit(end - recWindow)
	}
	win := &w.win[k]
	for i := range f.n {
		p := pos + int64(i) - w.base
		if p < 0 {
			continue // too late: that part of the file is written
		}
		if f.alaw {
			win[p] = g711.DecodeAlawFrame(f.data[i])
		} else {
			win[p] = g711.DecodeUlawFrame(f.data[i])
		}
	}
	w.hi = max(w.hi, pos+n)
}

// commit writes the timeline up to position to (exclusive) and moves the
// window on; samples no frame filled are silence.
func (w *recWriter) commit(to int64) {
	for to > w.base {
		n := min(to-w.base, recWindow)
		w.write(int(n))
		// Only [0, filled) can hold sound; beyond it the window is zero.
		filled := min(max(w.hi-w.base, 0), recWindow)
		for k := range w.win {
			if filled > n {
				copy(w.win[k][:filled-n], w.win[k][n:filled])
				clear(w.win[k][filled-n : filled])
			} else {
				clear(w.win[k][:filled])
			}
		}
		w.base += n
	}
}

// write writes the first n samples of the window.
func (w *recWriter) write(n int) {
	per := 2
	if w.r.stereo {
		per = 4
	}
	j := 0
	for i := range n {
		l, r := w.win[0][i], w.win[1][i]
		if w.r.stereo {
			putSample(w.out[j:], l)
			putSample(w.out[j+2:], r)
		} else {
			putSample(w.out[j:], int16(min(max(int32(l)+int32(r), -32768), 32767)))
		}
		j += per
		if j == len(w.out) || i == n-1 {
			if !w.failed {
				if err := w.wav.write(w.out[:j]); err != nil {
					w.fail(err)
				}
			}
			j = 0
		}
	}
	w.r.samples.Store(w.wav.frames())
}

func putSample(b []byte, v int16) { b[0], b[1] = byte(v), byte(uint16(v)>>8) }

func (w *recWriter) fail(err error) {
	w.failed = true
	w.r.err = fmt.Errorf("media: record %s: %w", w.r.file, err)
	// The owner reports it (OnStop): call logs the ERROR line with the
	// channel and fires RECORD_STOP.
	w.log.Debug("recording failed", "err", err)
}

// finish completes the header and closes the file.
func (w *recWriter) finish() {
	if err := w.wav.syncHeader(); err != nil && !w.failed {
		w.fail(err)
	}
	if err := w.f.Close(); err != nil && !w.failed {
		w.fail(err)
	}
}
