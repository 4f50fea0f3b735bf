package media

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"ccpbx/guard"
)

// Config configures an Engine.
type Config struct {
	RTPStart, RTPEnd int           // even ports, default 16384-32767
	MediaTimeout     time.Duration // no RTP or RTCP for this long times a leg out (timeout.go); 0 = off
	// HoldTimeout replaces MediaTimeout while a call is on hold (not
	// sendrecv); 0 = a call on hold never times out.
	HoldTimeout time.Duration
	// Probation is how many consecutive packets a source that is neither
	// the SDP address nor the signalling source must send before a leg
	// learns it (source.go); default DefaultProbation.
	Probation int
	// Consent says when a leg may start sending (source.go). The zero
	// value, ConsentNone, is the behaviour before issue 10 for owners that
	// do not call Confirm; ConsentConfirmOrRTP is the one to run.
	Consent  ConsentPolicy
	SoundsFS fs.FS // embedded sounds, paths like "ivr/common/music-on-hold.wav"
	// SoundsDir is where sounds are looked up on disk first, e.g. "sounds"
	// or "/usr/share/ccpbx/sounds". A path under it that is not on disk is
	// looked up in SoundsFS with the SoundsDir prefix stripped.
	SoundsDir string
	// AllowedRoots are further folders sounds may be read from, by absolute
	// path. Nothing outside SoundsDir (the working directory when empty) and
	// these is read: ".." and other absolute paths are refused.
	AllowedRoots   []string
	PortQuarantine time.Duration // how long a released port rests; default 5 s
	// RecordingsDir is where Leg.Record writes: relative names go inside
	// it, absolute ones must be below it. Empty: recording is refused.
	RecordingsDir string
	// RecordStereo is the default of recordings whose owner does not
	// choose: caller left, agent right; otherwise mixed to mono.
	RecordStereo bool
}

// Engine owns the RTP port pool, the sound cache and the music-on-hold
// broadcasters (one per sound, shared by all legs).
type Engine struct {
	cfg   Config
	log   *slog.Logger
	ports *portPool
	files *guard.Folders // where sounds may be read from
	// recordings confines recording files to RecordingsDir (nil: none).
	recordings *guard.Folders

	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	sounds   map[string]*Sound // by requested path
	embedded map[string]*Sound // by path inside SoundsFS, pre-encoded at start
	mohs     map[*Sound]*broadcaster
	legs     map[*Leg]struct{}
	pollers  []*poller // running pollers, each with at least one leg (poller_linux.go)

	rtp rtpStripes // packet counters over all legs (rtpstats.go)
}

// NewEngine checks cfg, sets defaults and pre-encodes every WAV in SoundsFS.
func NewEngine(cfg Config, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.RTPStart == 0 && cfg.RTPEnd == 0 {
		cfg.RTPStart, cfg.RTPEnd = 16384, 32767
	}
	if cfg.PortQuarantine == 0 {
		cfg.PortQuarantine = 5 * time.Second
	}
	if cfg.Probation <= 0 {
		cfg.Probation = DefaultProbation
	}
	if cfg.Consent < ConsentNone || cfg.Consent > ConsentRTP {
		return nil, fmt.Errorf("media: unknown consent policy %d", int(cfg.Consent))
	}
	ports, err := newPortPool(cfg.RTPStart, cfg.RTPEnd, cfg.PortQuarantine)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:      cfg,
		log:      log.With("component", "media"),
		ports:    ports,
		files:    guard.NewFolders(cfg.SoundsDir, cfg.AllowedRoots...),
		done:     make(chan struct{}),
		sounds:   make(map[string]*Sound),
		embedded: make(map[string]*Sound),
		mohs:     make(map[*Sound]*broadcaster),
		legs:     make(map[*Leg]struct{}),
	}
	if cfg.RecordingsDir != "" {
		e.recordings = guard.NewFolders(cfg.RecordingsDir)
	}
	if cfg.SoundsFS != nil {
		err := fs.WalkDir(cfg.SoundsFS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.EqualFold(path.Ext(p), ".wav") {
				return nil
			}
			b, err := fs.ReadFile(cfg.SoundsFS, p)
			if err != nil {
				return err
			}
			s, err := DecodeWAV(p, b)
			if err != nil {
				return err
			}
			e.embedded[p] = s
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("media: embedded sounds: %w", err)
		}
	}
	return e, nil
}

// Close closes every leg and stops the music clocks.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		close(e.done)
		e.mu.Lock()
		legs := make([]*Leg, 0, len(e.legs))
		for l := range e.legs {
			legs = append(legs, l)
		}
		e.mu.Unlock()
		for _, l := range legs {
			l.Close()
		}
		e.mu.Lock()
		pollers := e.pollers
		e.pollers = nil
		e.mu.Unlock()
		for _, p := range pollers {
			p.close()
		}
	})
}

// pollerFor is the poller a new leg joins: up to one per CPU, started on
// demand, the least loaded one once all run. The leg is counted at once;
// releasePoller uncounts it.
func (e *Engine) pollerFor() (*poller, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return nil, ErrClosed
	default:
	}
	var p *poller
	if len(e.pollers) < min(runtime.GOMAXPROCS(0), maxPollers) {
		var err error
		if p, err = newPoller(); err != nil {
			return nil, err
		}
		e.pollers = append(e.pollers, p)
	} else {
		p = e.pollers[0]
		for _, q := range e.pollers[1:] {
			if q.legs < p.legs {
				p = q
			}
		}
	}
	p.legs++
	return p, nil
}

// releasePoller uncounts a leg that left p (or never joined it); a poller
// without legs stops, so an idle engine runs no goroutine. It must not be
// called on p's own goroutine.
func (e *Engine) releasePoller(p *poller) {
	e.mu.Lock()
	p.legs--
	idle := p.legs == 0
	if idle {
		for i, q := range e.pollers {
			if q == p {
				e.pollers = append(e.pollers[:i:i], e.pollers[i+1:]...)
				break
			}
		}
	}
	e.mu.Unlock()
	if idle {
		p.close()
	}
}

func (e *Engine) track(l *Leg) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return false
	default:
	}
	e.legs[l] = struct{}{}
	return true
}

func (e *Engine) untrack(l *Leg) {
	e.mu.Lock()
	delete(e.legs, l)
	e.mu.Unlock()
}

// Sound resolves, loads and caches a sound: inside SoundsDir (a relative
// name, "sounds/…" spelled with a relative SoundsDir, or an absolute path
// below it) or an allowed root, on disk first, then in SoundsFS (the name
// inside SoundsDir). ".." and absolute paths elsewhere are refused with an
// error wrapping guard.ErrOutside. Files on disk are read once; restart to
// pick up changes.
func (e *Engine) Sound(p string) (*Sound, error) {
	e.mu.Lock()
	s := e.sounds[p]
	e.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := e.loadSound(p)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if old := e.sounds[p]; old != nil {
		s = old
	} else {
		e.sounds[p] = s
	}
	e.mu.Unlock()
	return s, nil
}

func (e *Engine) loadSound(p string) (*Sound, error) {
	if p == "" {
		return nil, fmt.Errorf("media: sound: empty path")
	}
	dir, rel, err := e.files.Resolve(p)
	if err != nil {
		return nil, fmt.Errorf("media: sound refused: %w: sounds must be inside sounds_dir or core.allowed_roots", err)
	}
	b, err := e.files.ReadFile(p)
	if err == nil {
		return DecodeWAV(filepath.Join(dir, filepath.FromSlash(rel)), b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("media: sound %s: %w", p, err)
	}
	// Not on disk: a name in SoundsDir may be one of the embedded sounds.
	if dir == e.files.Dirs()[0] {
		if s := e.embedded[rel]; s != nil {
			return s, nil
		}
		if e.cfg.SoundsFS != nil && fs.ValidPath(rel) {
			if b, err := fs.ReadFile(e.cfg.SoundsFS, rel); err == nil {
				return DecodeWAV(rel, b)
			}
		}
	}
	return nil, fmt.Errorf("media: sound %s: %w", p, fs.ErrNotExist)
}

// broadcaster returns the shared music broadcaster for snd.
func (e *Engine) broadcaster(snd *Sound) (*broadcaster, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return nil, ErrClosed
	default:
	}
	b := e.mohs[snd]
	if b == nil {
		b = newBroadcaster(e, snd)
		e.mohs[snd] = b
	}
	return b, nil
}

// MusicStats reports, for the broadcaster of path, how many clock ticks ran
// and how many frames were skipped because a clock woke too late.
func (e *Engine) MusicStats(p string) (ticks, lost uint64) {
	snd, err := e.Sound(p)
	if err != nil {
		return 0, 0
	}
	e.mu.Lock()
	b := e.mohs[snd]
	e.mu.Unlock()
	if b == nil {
		return 0, 0
	}
	return b.ticks.Load(), b.lost.Load()
}
