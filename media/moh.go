package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// mohShardSize is how many subscribers one clock goroutine serves before the
// broadcaster starts another: one goroutine serialises its sends, and at a
// few hundred streams the spread inside one 20 ms tick starts to show.
const mohShardSize = 250

const frameNs = int64(frameDuration)

// broadcaster plays one sound as music on hold to every leg subscribed to
// it, the way FreeSWITCH's local_stream does: one absolute-time clock (frame
// n is due at t0 + n·20 ms), the same pre-encoded frame to every subscriber,
// each through its own outbound stream (own SSRC, sequence, timestamp, law).
// The music runs on its clock whether or not anyone listens, so a new
// listener joins it where it is.
type broadcaster struct {
	e   *Engine
	snd *Sound
	t0  int64

	mu     sync.Mutex
	shards []*mohShard

	lost  atomic.Uint64 // frames skipped because a clock woke more than a frame late
	ticks atomic.Uint64

	// onSend, when set before the first subscriber (benchmarks only), is
	// called by the clock goroutine after each frame sent to a subscriber.
	onSend func(s *mohSub, at int64)
}

// mohShard is one clock goroutine's share of the subscribers. All shards of
// a broadcaster count frames from the same t0, so they send the same frame,
// but each ticks at its own phase inside the 20 ms period: shards then take
// turns on the CPUs instead of all waking at once and queueing behind each
// other, which would move every stream's send time around from tick to tick.
type mohShard struct {
	b       *broadcaster
	phase   int64                     // ns after t0 + n·20 ms at which this shard sends frame n
	subs    atomic.Pointer[[]*mohSub] // copy on write; the clock reads it lock-free
	n       int                       // guarded by b.mu
	running bool                      // guarded by b.mu
}

// mohSub is one leg listening to a broadcaster.
type mohSub struct {
	b      *broadcaster
	sh     *mohShard
	leg    *Leg
	src    *source
	lastN  int64 // frame index last sent to this leg; clock goroutine only
	sentAt int64 // monotonic time of the last send, for onSend measurements
	once   sync.Once
}

func newBroadcaster(e *Engine, snd *Sound) *broadcaster {
	return &broadcaster{e: e, snd: snd, t0: monoNow()}
}

// subscribe puts the music on top of leg's sources.
func (b *broadcaster) subscribe(leg *Leg) *mohSub {
	sub := &mohSub{b: b, leg: leg, src: &source{kind: "music"}}
	leg.out.push(sub.src)
	b.mu.Lock()
	var sh *mohShard
	for _, s := range b.shards {
		if s.n < mohShardSize && (sh == nil || s.n < sh.n) {
			sh = s
		}
	}
	if sh == nil {
		sh = &mohShard{b: b, phase: shardPhase(len(b.shards))}
		empty := []*mohSub{}
		sh.subs.Store(&empty)
		b.shards = append(b.shards, sh)
	}
	sub.sh = sh
	old := *sh.subs.Load()
	list := make([]*mohSub, len(old), len(old)+1)
	copy(list, old)
	list = append(list, sub)
	sh.subs.Store(&list)
	sh.n++
	if !sh.running {
		sh.running = true
		go sh.run()
	}
	b.mu.Unlock()
	return sub
}

// shardPhase spreads shard i's tick over the frame period by bit reversal
// (0, 1/2, 1/4, 3/4, 1/8 ...), so any number of shards is evenly spaced.
func shardPhase(i int) int64 {
	var frac, step float64 = 0, 0.5
	for ; i > 0; i >>= 1 {
		if i&1 == 1 {
			frac += step
		}
		step /= 2
	}
	return int64(frac * float64(frameNs))
}

// unsubscribe stops sending to sub's leg and takes the music off its stream.
func (b *broadcaster) unsubscribe(sub *mohSub) {
	sub.once.Do(func() {
		b.mu.Lock()
		sh := sub.sh
		old := *sh.subs.Load()
		list := make([]*mohSub, 0, len(old))
		for _, s := range old {
			if s != sub {
				list = append(list, s)
			}
		}
		sh.subs.Store(&list)
		sh.n--
		b.mu.Unlock()
		sub.leg.out.remove(sub.src)
	})
}

// run is a shard's clock. It sleeps until the absolute due time of the next
// frame; if it wakes more than a frame late it skips the missed frames
// (counted as lost) and each stream's timestamp jumps over them, instead of
// bursting stale audio.
func (sh *mohShard) run() {
	b := sh.b
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	frames := int64(b.snd.Frames())
	t0 := b.t0 + sh.phase
	n := (monoNow()-t0)/frameNs + 1
	for {
		if wait := t0 + n*frameNs - monoNow(); wait > 0 {
			timer.Reset(time.Duration(wait))
			select {
			case <-timer.C:
			case <-b.e.done:
				return
			}
		} else {
			select {
			case <-b.e.done:
				return
			default:
			}
		}
		if cur := (monoNow() - t0) / frameNs; cur > n {
			b.lost.Add(uint64(cur - n))
			n = cur
		}
		subs := *sh.subs.Load()
		if len(subs) == 0 {
			b.mu.Lock()
			if sh.n == 0 {
				sh.running = false
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			continue
		}
		ulaw, alaw := b.snd.frames(int(n % frames))
		for _, s := range subs {
			adv := uint32(frameSamples)
			if s.lastN > 0 && n > s.lastN {
				adv = uint32(n-s.lastN) * frameSamples
			}
			s.lastN = n
			s.leg.out.sendFrame(s.src, ulaw, alaw, adv, false)
			if b.onSend != nil {
				b.onSend(s, monoNow())
			}
		}
		b.ticks.Add(1)
		n++
	}
}

// Music subscribes this leg's outbound stream to the shared music-on-hold
// broadcaster for path; the music loops until stop, and is suspended while a
// prompt plays or a bridge is connected. A second Music call replaces the
// first.
func (l *Leg) Music(path string) (stop func(), err error) {
	snd, err := l.e.Sound(path)
	if err != nil {
		return nil, err
	}
	b, err := l.e.broadcaster(snd)
	if err != nil {
		return nil, err
	}
	sub := b.subscribe(l)
	l.mu.Lock()
	select {
	case <-l.closed:
		l.mu.Unlock()
		b.unsubscribe(sub)
		return nil, ErrClosed
	default:
	}
	prev := l.music
	l.music = sub
	l.mu.Unlock()
	if prev != nil {
		prev.b.unsubscribe(prev)
	}
	return func() {
		l.mu.Lock()
		if l.music == sub {
			l.music = nil
		}
		l.mu.Unlock()
		b.unsubscribe(sub)
	}, nil
}
