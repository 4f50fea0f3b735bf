package media

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
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
// The writer and its timeline are in record_writer.go.

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
