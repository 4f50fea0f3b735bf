package media

import (
	"time"
	"weak"
)

// The media timeout (FreeSWITCH's rtp-timeout-sec and rtp-hold-timeout-sec):
// a leg that hears neither RTP nor RTCP from its peer for
// Config.MediaTimeout, or for Config.HoldTimeout while the call is on hold
// (anything but sendrecv), times out once: Timeout() is closed and the
// OnMediaTimeout function runs. On hold only the hold timeout applies; a
// zero timeout never fires in its state. Every new SDP restarts the count.
// The watch starts at Confirm, so calls that never got an SDP answer time
// out too; under ConsentNone it also starts at the first SDP, as it did
// before Confirm existed.

// TimeoutKind says which timeout ended a leg.
type TimeoutKind int

const (
	NoTimeout    TimeoutKind = iota
	MediaTimeout             // no RTP or RTCP for Config.MediaTimeout
	HoldTimeout              // on hold, no RTP or RTCP for Config.HoldTimeout
)

func (k TimeoutKind) String() string {
	switch k {
	case MediaTimeout:
		return "media"
	case HoldTimeout:
		return "hold"
	}
	return "none"
}

// OnMediaTimeout sets fn to run once, on the timer's goroutine, when the leg
// times out. A function set after the leg timed out does not run; Timeout
// does not miss it.
func (l *Leg) OnMediaTimeout(fn func()) {
	l.mu.Lock()
	l.timeoutFn = fn
	l.mu.Unlock()
}

// Timeout is closed when the leg times out (see TimedOut for which timeout).
func (l *Leg) Timeout() <-chan struct{} { return l.timeoutCh }

// TimedOut says which timeout ended the leg, NoTimeout while none has.
func (l *Leg) TimedOut() TimeoutKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.timedOut
}

// timeoutFor is the timeout that applies under st.
func (l *Leg) timeoutFor(st *mediaState) (time.Duration, TimeoutKind) {
	if st != nil && st.hold {
		return l.e.cfg.HoldTimeout, HoldTimeout
	}
	return l.e.cfg.MediaTimeout, MediaTimeout
}

// armLocked (re)starts the timer for the current state; l.mu is held.
func (l *Leg) armLocked() {
	if !l.watching || l.timedOut != NoTimeout {
		return
	}
	select {
	case <-l.closed:
		return
	default:
	}
	to, _ := l.timeoutFor(l.out.state.Load())
	if to <= 0 {
		if l.timer != nil {
			l.timer.Stop()
		}
		return
	}
	if l.timer == nil {
		// The timer reaches the leg through a weak pointer. Close stops
		// it, but the runtime keeps a stopped timer, and its function,
		// in its heap until the time it was due (up to the media timeout,
		// 60 s by default) unless other timers' churn sweeps it out
		// first. A function holding the leg kept the leg's callbacks, and
		// through them the ended call's channel, SIP leg and dialog, for
		// 0.5-32 s after the hangup in more than half of the queue calls
		// TestQueueCallReleasesResources placed (issue 15).
		w := weak.Make(l)
		l.timer = time.AfterFunc(to, func() {
			if l := w.Value(); l != nil {
				l.checkTimeout()
			}
		})
	} else {
		l.timer.Reset(to)
	}
}

// checkTimeout runs on the timer: it fires the timeout or sleeps until the
// earliest moment it could.
func (l *Leg) checkTimeout() {
	select {
	case <-l.closed:
		return
	default:
	}
	now := monoNow()
	l.mu.Lock()
	if !l.watching || l.timer == nil || l.timedOut != NoTimeout {
		l.mu.Unlock()
		return
	}
	to, kind := l.timeoutFor(l.out.state.Load())
	if to <= 0 {
		l.mu.Unlock() // off in this state; the next SDP re-arms
		return
	}
	idle := time.Duration(now - l.lastRx.Load())
	if idle < to {
		l.timer.Reset(to - idle)
		l.mu.Unlock()
		return
	}
	l.timedOut = kind
	close(l.timeoutCh)
	fn := l.timeoutFn
	l.mu.Unlock()
	l.log.Info("media timeout", "kind", kind.String(), "idle", idle.Round(time.Millisecond))
	if fn != nil {
		fn()
	}
}
