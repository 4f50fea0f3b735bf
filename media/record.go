package media

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zaf/g711"
)

// Recording a leg: what the leg receives (the caller, left channel) and what
// it is sent (the bridged agent, music, prompts: right channel) go to a
// 16-bit 8 kHz WAV file, stereo or mixed to mono.
//
// The packet paths only copy: the reader (received audio) and the sender
// (outbound audio) hand each payload to the recording through a fixed ring
// of frames (two channels of pointers, no allocation, never blocking; a full
// ring drops the frame and counts it). One writer goroutine per recording
// decodes G.711, places each frame on a sample timeline and writes the file.
//
// The timeline starts when the recording does. A frame continues its
// stream at the position its RTP timestamp says (so jitter does not move it
// and a gap inside a talkspurt stays a gap); a new stream (SSRC), a timestamp
// jump or a drift of more than recResync from the arrival time puts it at
// its arrival time instead. Whatever no frame covers is silence, so a side
// that sends nothing still yields a file as long as the recording.

const (
	recFrameMax  = 320  // payload bytes per ring frame (40 ms); longer payloads take several
	recRing      = 128  // frames per recording: about 1.3 s of both directions at 20 ms, 13 writer ticks
	recWindow    = 8000 // samples per channel held before writing: 1 s
	recHoldback  = 1920 // samples (240 ms) kept back from the file for late frames
	recResync    = 4000 // samples (500 ms) of disagreement between timestamp and arrival
	recTick      = 100 * time.Millisecond
	recCommit    = 4000 // samples (500 ms) gathered before a write: two writes a second per file
	recSyncEvery = 10   // header sync every recSyncEvery ticks: a crash loses at most 1 s
)

// RecordOptions configures Leg.Record.
type RecordOptions struct {
	// Stereo writes two channels: left what the leg receives, right what
	// it is sent. Otherwise both are mixed into one.
	Stereo bool
	// OnStop, when set, is called once when the recording ends, from the
	// goroutine that ended it (Stop, Leg.Close, or the writer after a
	// failed write), with the final counters and nil or the write error.
	// A write error ends the recording; the call goes on.
	OnStop func(st RecordStats, err error)
}

// RecordStats counts what a recording took in and wrote.
type RecordStats struct {
	Frames  uint64 // payloads handed to the writer
	Dropped uint64 // payloads lost because the writer was behind (slow disk)
	Samples int64  // sample frames (per channel) in the file
}

// Recording is one file being recorded from a leg.
type Recording struct {
	leg    *Leg
	name   string // as requested
	file   string // the path opened
	stereo bool
	opts   RecordOptions

	free, full chan *recFrame
	stop       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
	endOnce    sync.Once

	frames, dropped atomic.Uint64
	samples         atomic.Int64
	err             error // set by the writer before done closes
}

// recFrame is one payload on its way to the writer.
type recFrame struct {
	at    int64 // monoNow at arrival
	ssrc  uint32
	ts    uint32
	right bool
	alaw  bool
	n     int
	data  [recFrameMax]byte
}

// recTaps is the immutable set of recordings a leg feeds; replaced whole.
type recTaps struct{ recs []*Recording }

// ErrNotRecording is returned by StopRecording for a path that is not
// being recorded.
var ErrNotRecording = errors.New("media: not recording that file")

// Record starts recording the leg to path, a name inside the engine's
// RecordingsDir (relative, or absolute below it; ".." is refused with an
// error wrapping guard.ErrOutside). Missing folders are created and an
// existing file is replaced. Stop it with Stop or StopRecording; closing
// the leg stops it too.
func (l *Leg) Record(path string, opts RecordOptions) (*Recording, error) {
	file, f, err := l.e.createRecording(path)
	if err != nil {
		return nil, err
	}
	r, err := l.startRecording(path, file, f, opts)
	if err != nil {
		os.Remove(file) // nothing was recorded into it
	}
	return r, err
}

// recFile is what a recording writes to: an *os.File, or a fault in tests.
type recFile interface {
	io.WriterAt
	Close() error
}

func (l *Leg) startRecording(path, file string, f recFile, opts RecordOptions) (*Recording, error) {
	channels := 1
	if opts.Stereo {
		channels = 2
	}
	ww, err := newWAVWriter(f, channels)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("media: record %s: %w", file, err)
	}
	r := &Recording{
		leg:    l,
		name:   path,
		file:   file,
		stereo: opts.Stereo,
		opts:   opts,
		free:   make(chan *recFrame, recRing),
		full:   make(chan *recFrame, recRing),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	pool := make([]recFrame, recRing)
	for i := range pool {
		r.free <- &pool[i]
	}
	// Sample 0 is now, before the taps can hand over a frame.
	w := &recWriter{r: r, f: f, wav: ww, t0: monoNow(), log: l.log.With("record_file", file)}
	l.mu.Lock()
	select {
	case <-l.closed:
		l.mu.Unlock()
		f.Close()
		return nil, fmt.Errorf("media: record: %w", ErrClosed)
	default:
	}
	l.recordings = append(l.recordings, r)
	l.publishTapsLocked()
	l.mu.Unlock()
	go w.run()
	return r, nil
}

// createRecording resolves name inside RecordingsDir and creates the file.
func (e *Engine) createRecording(name string) (string, *os.File, error) {
	if e.recordings == nil {
		return "", nil, fmt.Errorf("media: record %s: no recordings_dir configured", name)
	}
	dir, rel, err := e.recordings.Resolve(name)
	if err != nil {
		return "", nil, fmt.Errorf("media: record refused: %w: recordings must be inside recordings_dir", err)
	}
	file := filepath.Join(dir, filepath.FromSlash(rel))
	if rel == "." {
		return "", nil, fmt.Errorf("media: record %s: names the recordings folder, not a file", name)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("media: record %s: %w", file, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", nil, fmt.Errorf("media: record %s: %w", file, err)
	}
	defer root.Close()
	if sub := filepath.Dir(filepath.FromSlash(rel)); sub != "." {
		if err := root.MkdirAll(sub, 0o750); err != nil {
			return "", nil, fmt.Errorf("media: record %s: %w", file, err)
		}
	}
	f, err := root.OpenFile(filepath.FromSlash(rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return "", nil, fmt.Errorf("media: record %s: %w", file, err)
	}
	return file, f, nil
}

// publishTapsLocked republishes the taps the packet paths read; l.mu is held.
func (l *Leg) publishTapsLocked() {
	if len(l.recordings) == 0 {
		l.out.taps.Store(nil)
		return
	}
	l.out.taps.Store(&recTaps{recs: append([]*Recording(nil), l.recordings...)})
}

// detach takes r off its leg's taps.
func (r *Recording) detach() {
	l := r.leg
	l.mu.Lock()
	for i, x := range l.recordings {
		if x == r {
			l.recordings = append(l.recordings[:i:i], l.recordings[i+1:]...)
			break
		}
	}
	l.publishTapsLocked()
	l.mu.Unlock()
}

// StopRecording stops the recordings of path ("all": every recording of
// the leg) and waits until their files are complete.
func (l *Leg) StopRecording(path string) error {
	l.mu.Lock()
	var stop []*Recording
	for _, r := range l.recordings {
		if path == "all" || r.name == path || r.file == path {
			stop = append(stop, r)
		}
	}
	l.mu.Unlock()
	if len(stop) == 0 {
		return ErrNotRecording
	}
	for _, r := range stop {
		r.Stop()
	}
	return nil
}

// Recordings returns the paths being recorded, as requested.
func (l *Leg) Recordings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.recordings))
	for i, r := range l.recordings {
		out[i] = r.name
	}
	return out
}

// stopRecordings ends every recording of a closing leg.
func (l *Leg) stopRecordings() {
	l.mu.Lock()
	recs := l.recordings
	l.mu.Unlock()
	for _, r := range recs {
		r.Stop()
	}
}

// RecordStereo is the engine's default for recordings whose owner does not
// choose (Config.RecordStereo).
func (l *Leg) RecordStereo() bool { return l.e.cfg.RecordStereo }

// File is the path of the file being written.
func (r *Recording) File() string { return r.file }

// Done is closed when the file is complete (stopped or failed).
func (r *Recording) Done() <-chan struct{} { return r.done }

// Stop ends the recording, completes the file (header sizes) and returns
// the write error that ended it early, if any. Safe to call more than once
// and from several goroutines.
func (r *Recording) Stop() error {
	r.detach()
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	r.end()
	return r.err
}

// end calls OnStop once.
func (r *Recording) end() {
	r.endOnce.Do(func() {
		if r.opts.OnStop != nil {
			r.opts.OnStop(r.Stats(), r.err)
		}
	})
}

// Stats returns the recording's counters.
func (r *Recording) Stats() RecordStats {
	return RecordStats{Frames: r.frames.Load(), Dropped: r.dropped.Load(), Samples: r.samples.Load()}
}

// tap hands one audio payload to every recording of a leg. It runs on the
// packet paths: it copies and never blocks or allocates.
func (t *recTaps) tap(right bool, ssrc, ts uint32, payload []byte, alaw bool) {
	for _, r := range t.recs {
		r.push(right, ssrc, ts, payload, alaw)
	}
}

func (r *Recording) push(right bool, ssrc, ts uint32, payload []byte, alaw bool) {
	at := monoNow()
	for len(payload) > 0 {
		var f *recFrame
		select {
		case f = <-r.free:
		default:
			r.dropped.Add(1)
			return
		}
		f.at, f.ssrc, f.ts, f.right, f.alaw = at, ssrc, ts, right, alaw
		f.n = copy(f.data[:], payload)
		payload = payload[f.n:]
		ts += uint32(f.n)
		r.frames.Add(1)
		r.full <- f // never blocks: the ring holds every frame there is
	}
}

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
		if cont := s.pos + int64(int32(f.ts-s.ts)); cont >= arrival-recResync && cont <= arrival+recResync {
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
