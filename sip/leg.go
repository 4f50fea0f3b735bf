package sip

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"

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

// sipLeg is one SIP call leg, inbound (we are UAS) or outbound (UAC). It is
// the call.Signalling of its channel; its legMedia is the call.Media.
type sipLeg struct {
	s   *Stack
	p   *profile
	dir call.Direction
	ml  *media.Leg
	lm  *legMedia
	log *slog.Logger

	mu    sync.Mutex
	ch    *call.Channel
	dlg   *dialog
	state legState
	// byeReceived: the peer ended the dialog (no BYE of ours needed).
	byeReceived bool
	// lateOffer: the (re-)INVITE had no SDP, so our offer went in the 200
	// and the answer comes in the ACK.
	lateOffer bool

	// Inbound only.
	inv       *sipmsg.Request
	tx        sipmsg.ServerTransaction
	localSDP  []byte
	cancelled bool // the caller's CANCEL reached the INVITE transaction
	finalOnce sync.Once
	finalSent chan struct{}
	ackOnce   sync.Once
	acked     chan struct{}

	// byes counts our BYEs in flight; the dialog stays in the table until
	// they are done.
	byes sync.WaitGroup

	// Outbound only: stops the dial loop (which then CANCELs) with a cause.
	cancelDial context.CancelCauseFunc
}

func (l *sipLeg) channel() *call.Channel {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ch
}

func (l *sipLeg) markFinal() { l.finalOnce.Do(func() { close(l.finalSent) }) }
func (l *sipLeg) markAcked() { l.ackOnce.Do(func() { close(l.acked) }) }

// watch releases the leg's resources once its channel has hung up.
func (l *sipLeg) watch(ch *call.Channel) {
	l.s.track(l)
	go func() {
		<-ch.Done()
		l.mu.Lock()
		l.state = stateEnded
		d := l.dlg
		l.mu.Unlock()
		l.ml.Close()
		// A BYE of ours may still wait for the caller's ACK, which must
		// find the dialog: keep it until that BYE is done.
		l.byes.Wait()
		if d != nil {
			l.s.dialogs.remove(d)
		}
		l.s.untrack(l)
	}()
}

// handleInDialog serves a request that matched this leg's dialog.
func (l *sipLeg) handleInDialog(d *dialog, req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if !d.checkRemoteSeq(req) {
		respond(tx, req, 500, "Server Internal Error - CSeq out of order", nil)
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
		l.markAcked()
	case sipmsg.BYE:
		respond(tx, req, 200, "OK", nil)
		l.mu.Lock()
		wasEarly := l.state == stateEarly
		l.state = stateEnded
		l.byeReceived = true
		ch := l.ch
		l.mu.Unlock()
		if wasEarly && l.dir == call.Inbound {
			// BYE on an early dialog: the INVITE still needs its final
			// response (RFC 3261 §15.1.2), or its transaction never ends.
			res := l.tagged(sipmsg.NewResponseFromRequest(l.inv, 487, "Request Terminated", nil))
			if src := l.inv.Source(); src != "" && !sipmsg.IsReliable(l.inv.Transport()) {
				res.SetDestination(src)
			}
			_ = l.tx.Respond(res)
			l.markFinal()
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
			respond(tx, req, 500, "Server Internal Error", []sipmsg.Header{sipmsg.NewHeader("Retry-After", "1")})
			return
		}
		l.handleReoffer(req, tx)
	case sipmsg.INFO:
		if d, ok := parseDTMFInfo(req); ok {
			l.lm.fireDigit(d)
		}
		respond(tx, req, 200, "OK", nil)
	case sipmsg.OPTIONS:
		respond(tx, req, 200, "OK", nil)
	case sipmsg.CANCEL:
		// A CANCEL reaching the dialog matched no INVITE transaction: it
		// is too late to cancel anything.
		respond(tx, req, 200, "OK", nil)
	default:
		respond(tx, req, 501, "Not Implemented", nil)
	}
}

// handleReoffer answers a re-INVITE or UPDATE: hold, resume or a codec or
// address change all come as a new offer for the same media leg.
func (l *sipLeg) handleReoffer(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	var body []byte
	if offer := req.Body(); len(offer) > 0 {
		ans, err := l.ml.AnswerOffer(offer)
		if err != nil {
			if !errors.Is(err, media.ErrNoCommonCodec) {
				l.log.Warn("re-offer rejected", "err", err)
			}
			respond(tx, req, 488, "Not Acceptable Here", nil)
			return
		}
		body = ans
	} else {
		// Offer-less re-INVITE: we offer, the answer comes in the ACK.
		body = l.ml.Offer()
		l.mu.Lock()
		l.lateOffer = true
		l.mu.Unlock()
	}
	res := newResponse(req, 200, "OK", body, l.p.contact(req.Transport()))
	if err := tx.Respond(res); err != nil {
		l.log.Debug("re-INVITE response failed", "err", err)
	}
}

// respond sends a simple response; failures are only logged by sipgo.
func respond(tx sipmsg.ServerTransaction, req *sipmsg.Request, code int, reason string, hdrs []sipmsg.Header) {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	// Answer where the packet came from (FreeSWITCH's NDLB-force-rport):
	// phones behind NAT often omit rport.
	if src := req.Source(); src != "" && !sipmsg.IsReliable(req.Transport()) {
		res.SetDestination(src)
	}
	_ = tx.Respond(res)
}

// newResponse builds a response carrying SDP (when body is set) and our
// Contact.
func newResponse(req *sipmsg.Request, code int, reason string, body []byte, contact *sipmsg.ContactHeader) *sipmsg.Response {
	res := sipmsg.NewResponseFromRequest(req, code, reason, nil)
	if contact != nil {
		res.AppendHeader(contact)
	}
	if len(body) > 0 {
		ct := sipmsg.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	res.SetBody(body)
	if src := req.Source(); src != "" && !sipmsg.IsReliable(req.Transport()) {
		res.SetDestination(src)
	}
	return res
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
