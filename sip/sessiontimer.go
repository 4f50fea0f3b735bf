package sip

import (
	"strconv"
	"strings"
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// RFC 4028 session timers for calls we answer, as an end, not a keepalive
// of ours: with the profile's session_timeout set, a caller that supports
// timers is granted an interval with itself as refresher (refresher=uac),
// every 2xx'd re-INVITE or UPDATE refreshes it, and a session not
// refreshed in time is ended with BYE shortly before it expires (RFC 4028
// §10: at interval - min(32 s, interval/3)). The BYE says what sofia-sip's
// says, Reason SIP;cause=408 "Session timeout", and the channel's cause is
// RECOVERY_ON_TIMER_EXPIRE, sofia's mapping of 408.
//
// ccpbx never refreshes a session itself: a caller that cannot refresh (no
// "timer" in Supported or Require) or asks us to (refresher=uas) gets no
// session timer, which RFC 4028 §9 lets a UAS decide; the media timeout
// still ends such calls when they go silent.

// minSessionExpires is RFC 4028's floor for a session interval (Min-SE).
// A variable so tests can run sessions of seconds.
var minSessionExpires = 90 * time.Second

// sessionTimeoutReason is what sofia-sip puts on the BYE of a session that
// was not refreshed.
const sessionTimeoutReason = `SIP;cause=408;text="Session timeout"`

// sessionAsk is what a request says about session timers.
type sessionAsk struct {
	expires   time.Duration // Session-Expires, 0 when absent
	refresher string        // "uac", "uas" or ""
	minSE     time.Duration // Min-SE, 0 when absent
	supported bool          // "timer" in Supported or Require
}

// readSessionAsk reads Session-Expires (or its compact form x), Min-SE,
// Supported and Require. Values past a day are capped: they only bound
// our timer.
func readSessionAsk(req *sipmsg.Request) sessionAsk {
	var a sessionAsk
	h := req.GetHeader("Session-Expires")
	if h == nil {
		h = req.GetHeader("x")
	}
	if h != nil {
		v, params, _ := strings.Cut(h.Value(), ";")
		a.expires = seconds(v)
		for _, p := range strings.Split(params, ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "refresher") {
				a.refresher = strings.ToLower(strings.TrimSpace(val))
			}
		}
	}
	if h := req.GetHeader("Min-SE"); h != nil {
		v, _, _ := strings.Cut(h.Value(), ";")
		a.minSE = seconds(v)
	}
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range req.GetHeaders(name) {
			for _, t := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(t), "timer") {
					a.supported = true
				}
			}
		}
	}
	return a
}

// seconds parses delta-seconds, 0 when it is not one; at most a day.
func seconds(v string) time.Duration {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if err != nil {
		return 0
	}
	return time.Duration(min(n, 86400)) * time.Second
}

// grant decides the interval for a caller's ask under our session_timeout
// (ours): 0 for no session timer, or tooSmall when the caller's
// Session-Expires is below Min-SE (answer 422 with Min-SE).
func grant(ours time.Duration, a sessionAsk) (interval time.Duration, tooSmall bool) {
	if ours <= 0 {
		return 0, false
	}
	if a.expires > 0 && a.expires < minSessionExpires {
		return 0, true
	}
	if !a.supported || a.refresher == "uas" {
		return 0, false
	}
	interval = ours
	if a.expires > 0 && a.expires < interval {
		interval = a.expires
	}
	return max(interval, a.minSE, minSessionExpires), false
}

// sessionTimer is one answered call's session timer.
type sessionTimer struct {
	ours    time.Duration
	refresh chan struct{}

	mu       sync.Mutex
	interval time.Duration
	expired  bool
}

func newSessionTimer(ours, interval time.Duration) *sessionTimer {
	return &sessionTimer{ours: ours, interval: interval, refresh: make(chan struct{}, 1)}
}

// headers go on every 2xx that grants or refreshes the session: the caller
// is the refresher, so the 2xx requires timer support (RFC 4028 §9).
func (st *sessionTimer) headers() []sipmsg.Header {
	st.mu.Lock()
	secs := int(st.interval / time.Second)
	st.mu.Unlock()
	return []sipmsg.Header{
		sipmsg.NewHeader("Session-Expires", strconv.Itoa(secs)+";refresher=uac"),
		sipmsg.NewHeader("Require", "timer"),
	}
}

// refreshed takes a re-INVITE or UPDATE we answer 2xx as a refresh: a new
// Session-Expires (not below Min-SE, not above ours) replaces the
// interval, and the count starts over.
func (st *sessionTimer) refreshed(req *sipmsg.Request) {
	a := readSessionAsk(req)
	st.mu.Lock()
	if a.expires >= minSessionExpires {
		st.interval = max(min(a.expires, st.ours), minSessionExpires)
	}
	st.mu.Unlock()
	select {
	case st.refresh <- struct{}{}:
	default:
	}
}

// byeAt is how long after a refresh the BYE goes (RFC 4028 §10).
func (st *sessionTimer) byeAt() time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.interval - min(32*time.Second, st.interval/3)
}

func (st *sessionTimer) markExpired() {
	st.mu.Lock()
	st.expired = true
	st.mu.Unlock()
}

func (st *sessionTimer) isExpired() bool {
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.expired
}

// run counts down until the call ends (done), restarting at every
// refresh; expire runs when the session was not refreshed in time.
func (st *sessionTimer) run(done <-chan struct{}, expire func()) {
	t := time.NewTimer(st.byeAt())
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-st.refresh:
			t.Reset(st.byeAt())
		case <-t.C:
			st.markExpired()
			expire()
			return
		}
	}
}
