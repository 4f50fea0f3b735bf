package sip

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/media"
)

// legState is where a leg's INVITE dialog is.
type legState int

const (
	stateEarly    legState = iota // INVITE sent or received, no final response
	stateAnswered                 // 2xx sent or received
	stateEnded                    // final error, CANCEL, BYE
)

// leg is what UAS and UAC legs share: one SIP call leg is the
// call.Signalling of its channel, its legMedia the call.Media, and it owns
// one dialog. uasLeg (uas.go) answers an INVITE we received, uacLeg
// (uac.go) runs one we sent; each adds only what its role needs.
type leg struct {
	s   *Stack
	p   *profile
	ml  *media.Leg
	lm  *legMedia
	log *slog.Logger

	mu    sync.Mutex
	ch    *call.Channel
	dlg   *dialog
	state legState
	// byeReceived: the peer ended the dialog (no BYE of ours needed).
	byeReceived bool
	// lateOffer: a re-INVITE had no SDP, so our offer went in the 200 and
	// the answer comes in the ACK.
	lateOffer bool
	// session is the RFC 4028 session timer of a call we answered (nil:
	// none); set before the dialog is in the table.
	session *sessionTimer

	// holdMu serialises our hold re-INVITEs (hold.go): one re-offer of
	// ours at a time; reoffering is set while one is in flight.
	holdMu     sync.Mutex
	reoffering atomic.Bool

	// byes counts our BYEs in flight; the dialog stays in the table until
	// they are done.
	byes sync.WaitGroup

	// released is set once the channel has ended; releases are what runs
	// then (onRelease).
	released bool
	releases []func()
}

// role is the part of in-dialog handling that differs between a UAS and a
// UAC leg.
type role interface {
	// acked sees the ACK of a 2xx we sent.
	acked()
	// byeWhileEarly runs when the peer's BYE ends a dialog still early.
	byeWhileEarly()
}

// dialogLeg is the leg a dialog belongs to.
type dialogLeg interface {
	handleInDialog(d *dialog, req *sipmsg.Request, tx sipmsg.ServerTransaction)
}

func (l *leg) channel() *call.Channel {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

func (l *leg) channelDone() <-chan struct{} {
	if ch := l.channel(); ch != nil {
		return ch.Done()
	}
	return nil
}

// watch releases the leg's resources once its channel has hung up.
func (l *leg) watch(ch *call.Channel) {
	l.s.track(l)
	// Run at hangup rather than by a goroutine waiting for it: one parked
	// goroutine per leg was a visible share of a queued caller's memory.
	// The channel's context ends just before Done closes.
	context.AfterFunc(ch.Context(), func() {
		<-ch.Done()
		l.mu.Lock()
		l.state = stateEnded
		d := l.dlg
		l.released = true
		releases := l.releases
		l.releases = nil
		l.mu.Unlock()
		for _, f := range releases {
			f()
		}
		l.ml.Close()
		// A BYE of ours may still wait for the peer's ACK, which must find
		// the dialog: keep it until that BYE is done.
		l.byes.Wait()
		if d != nil {
			l.s.dialogs.remove(d)
		}
		l.s.untrack(l)
	})
}

// onRelease runs f once the leg's channel has ended (at once if it has).
func (l *leg) onRelease(f func()) {
	l.mu.Lock()
	if !l.released {
		l.releases = append(l.releases, f)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	f()
}

// txRef is how a callback registered on a sipgo transaction reaches its
// leg or dialog. sipgo keeps an INVITE transaction that saw a 2xx, and the
// callbacks on it, until its Timer L (server) or M (client), 64*T1 = 32 s
// after the 2xx, even once terminated: its delete does not stop those two
// timers. A callback holding the leg kept the ended call's leg, dialog,
// channel (variables, events) and media leg live for those 32 s: at 160
// calls/s of 3.5 s some 5,000 ended calls, most of the heap (issue 15). A
// txRef is cleared when the leg's channel ends, so only the transaction's
// own messages wait for its timer.
type txRef[T any] struct{ p atomic.Pointer[T] }

// newTxRef refers to v until l's channel ends.
func newTxRef[T any](l *leg, v *T) *txRef[T] {
	r := &txRef[T]{}
	r.p.Store(v)
	l.onRelease(func() { r.p.Store(nil) })
	return r
}

// get is the referent, nil once the channel has ended.
func (r *txRef[T]) get() *T { return r.p.Load() }

// claimEnd marks the leg ended for a Hangup: it returns the state the leg
// was in, and false when it had already ended.
func (l *leg) claimEnd() (legState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state
	if st == stateEnded {
		return st, false
	}
	l.state = stateEnded
	return st, true
}

// bye ends an answered dialog with BYE carrying reason, in the
// background: Hangup must not block the dialplan on the peer. A UAS must
// not send BYE before the ACK (RFC 3261 §15), so it passes a channel that
// closes once the ACK arrived or Timer H gave up on it (and the wait is
// bounded by Timer H in any case); a UAC passes nil.
func (l *leg) bye(reason string, ack <-chan struct{}) {
	l.s.pending.add()
	l.byes.Add(1)
	go func() {
		defer l.s.pending.done()
		defer l.byes.Done()
		if ack != nil {
			t := time.NewTimer(l.p.timerH())
			select {
			case <-ack:
			case <-t.C:
			}
			t.Stop()
		}
		if err := l.dlg.bye(reason); err != nil {
			l.log.Debug("BYE failed", "err", err)
		}
	}()
}

// serveInDialog serves a request that matched this leg's dialog.
func (l *leg) serveInDialog(r role, d *dialog, req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	s := l.s
	if !d.checkRemoteSeq(req) {
		s.respond(tx, req, 500, "Server Internal Error - CSeq out of order")
		return
	}
	switch req.Method {
	case sipmsg.ACK:
		l.mu.Lock()
		late := l.lateOffer
		l.lateOffer = false
		l.mu.Unlock()
		if late {
			if body := req.Body(); len(body) > 0 {
				if err := l.ml.AcceptAnswer(body); err != nil {
					l.log.Warn("answer in ACK rejected", "err", err)
				}
			}
		}
		r.acked()
	case sipmsg.BYE:
		s.respond(tx, req, 200, "OK")
		l.mu.Lock()
		wasEarly := l.state == stateEarly
		l.state = stateEnded
		l.byeReceived = true
		ch := l.ch
		l.mu.Unlock()
		if wasEarly {
			r.byeWhileEarly()
		}
		if ch != nil {
			cause := call.NormalClearing
			if c, ok := causeFromReason(req); ok {
				cause = c
			}
			ch.Terminated(cause)
		}
	case sipmsg.INVITE, sipmsg.UPDATE:
		l.mu.Lock()
		early := l.state == stateEarly
		l.mu.Unlock()
		if req.IsInvite() && early {
			// A second INVITE before our final response to the first
			// (RFC 3261 §14.2); UPDATE is the way to re-offer early.
			s.respond(tx, req, 500, "Server Internal Error", sipmsg.NewHeader("Retry-After", "1"))
			return
		}
		if l.reoffering.Load() {
			// Glare with our own re-INVITE (RFC 3261 §14.2).
			s.respond(tx, req, 491, "Request Pending")
			return
		}
		l.handleReoffer(req, tx)
	case sipmsg.INFO:
		if d, ok := parseDTMFInfo(req); ok {
			l.lm.fireDigit(d)
		}
		s.respond(tx, req, 200, "OK")
	case sipmsg.OPTIONS:
		s.respond(tx, req, 200, "OK")
	case sipmsg.CANCEL:
		// A CANCEL reaching the dialog matched no INVITE transaction: it
		// is too late to cancel anything.
		s.respond(tx, req, 200, "OK")
	default:
		s.respond(tx, req, 501, "Not Implemented")
	}
}

// handleReoffer answers a re-INVITE or UPDATE: hold, resume or a codec or
// address change all come as a new offer for the same media leg.
func (l *leg) handleReoffer(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	var body []byte
	if offer := req.Body(); len(offer) > 0 {
		ans, err := l.ml.AnswerOffer(offer)
		if err != nil {
			if !errors.Is(err, media.ErrNoCommonCodec) {
				l.log.Warn("re-offer rejected", "err", err)
			}
			l.s.respond(tx, req, 488, "Not Acceptable Here")
			return
		}
		body = ans
		l.channel().MarkHeld(l.ml.Direction() == media.RecvOnly || l.ml.Direction() == media.Inactive) // CHANNEL_HOLD/UNHOLD (esl)
	} else if req.IsInvite() {
		// Offer-less re-INVITE: we offer, the answer comes in the ACK.
		body = l.ml.Offer()
		l.mu.Lock()
		l.lateOffer = true
		l.mu.Unlock()
	}
	// (An UPDATE without SDP, a session refresh, gets a 200 without SDP:
	// UPDATE has no ACK to carry an answer.)
	r := response{code: 200, reason: "OK", body: body, contact: l.p.contact(req.Transport())}
	if l.session != nil {
		l.session.refreshed(req)
		r.headers = append(r.headers, l.session.headers()...)
	}
	if _, err := l.s.reply(tx, req, r); err != nil {
		l.log.Debug("re-INVITE response failed", "err", err)
	}
}

// causeFromReason reads "Reason: Q.850;cause=17" from a BYE or CANCEL.
func causeFromReason(req *sipmsg.Request) (call.Cause, bool) {
	h := req.GetHeader("Reason")
	if h == nil {
		return call.CauseNone, false
	}
	v := h.Value()
	if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(v)), "Q.850") {
		return call.CauseNone, false
	}
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(k, "cause") {
			return call.ParseCause(val)
		}
	}
	return call.CauseNone, false
}

// parseDTMFInfo reads a digit from an INFO with application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5").
func parseDTMFInfo(req *sipmsg.Request) (rune, bool) {
	ct := req.ContentType()
	if ct == nil {
		return 0, false
	}
	return parseDTMFBody(strings.ToLower(ct.Value()), req.Body())
}

func parseDTMFBody(contentType string, body []byte) (rune, bool) {
	text := string(body)
	switch {
	case strings.HasPrefix(contentType, "application/dtmf-relay"):
		for _, line := range strings.Split(text, "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "signal") {
				return dtmfDigit(strings.TrimSpace(v))
			}
		}
	case strings.HasPrefix(contentType, "application/dtmf"):
		return dtmfDigit(strings.TrimSpace(text))
	}
	return 0, false
}

func dtmfDigit(v string) (rune, bool) {
	if len(v) != 1 && v != "10" && v != "11" {
		return 0, false
	}
	switch v {
	case "10":
		return '*', true
	case "11":
		return '#', true
	}
	c := rune(v[0])
	switch {
	case c >= '0' && c <= '9', c == '*', c == '#':
		return c, true
	case c >= 'A' && c <= 'D':
		return c, true
	case c >= 'a' && c <= 'd':
		return c - 'a' + 'A', true
	}
	return 0, false
}
