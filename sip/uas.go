package sip

import (
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
)

// uasLeg is a leg we answer: an INVITE we received (onInvite). Until the
// final response it owns the INVITE's server transaction; it hangs up an
// unanswered call with a final error response and sends BYE only after the
// caller's ACK.
type uasLeg struct {
	leg

	inv      *sipmsg.Request
	tx       sipmsg.ServerTransaction
	localSDP []byte
	// cancelled: the caller's CANCEL reached the INVITE transaction.
	cancelled bool
	finalOnce sync.Once
	// finalSent closes once the INVITE has its final response, which is
	// what onInvite waits for.
	finalSent chan struct{}
	ackOnce   sync.Once
	// ackCh closes when the ACK of our 2xx arrives.
	ackCh chan struct{}
}

func (l *uasLeg) markFinal() { l.finalOnce.Do(func() { close(l.finalSent) }) }

func (l *uasLeg) handleInDialog(d *dialog, req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	l.serveInDialog(l, d, req, tx)
}

// acked: the ACK of a 2xx; the first one completes our answer.
func (l *uasLeg) acked() { l.ackOnce.Do(func() { close(l.ackCh) }) }

// byeWhileEarly: the INVITE still needs its final response (RFC 3261
// §15.1.2), or its transaction never ends.
func (l *uasLeg) byeWhileEarly() {
	_, _ = l.answerInvite(response{code: 487, reason: "Request Terminated"})
	l.markFinal()
}

// answerInvite sends a response to the INVITE, with our dialog's To tag.
func (l *uasLeg) answerInvite(r response) (*sipmsg.Response, error) {
	r.toTag = l.dlg.localTag
	return l.s.reply(l.tx, l.inv, r)
}

// onCancel runs when the caller's CANCEL hit the INVITE transaction;
// sipgo has answered it and sends the 487.
func (l *uasLeg) onCancel() {
	l.mu.Lock()
	l.cancelled = true
	if l.state != stateEarly {
		l.mu.Unlock()
		return
	}
	l.state = stateEnded
	ch := l.ch
	l.mu.Unlock()
	l.markFinal()
	if ch != nil {
		ch.Terminated(call.OriginatorCancel)
	}
}

// Ring sends 180 Ringing, or 183 Session Progress with our SDP (early
// media).
func (l *uasLeg) Ring(early bool) error {
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	if st != stateEarly {
		return nil
	}
	r := response{code: 180, reason: "Ringing", contact: l.p.contact(l.dlg.transport)}
	if early {
		r.code, r.reason, r.body = 183, "Session Progress", l.localSDP
	}
	// Never hold l.mu across Respond: a CANCEL holds the transaction's
	// lock while it calls onCancel, which takes l.mu.
	_, err := l.answerInvite(r)
	return err
}

// Answer sends 200 OK with our SDP and keeps retransmitting it over UDP
// until the ACK arrives (RFC 3261 §13.3.1.4).
func (l *uasLeg) Answer() error {
	l.mu.Lock()
	if l.state != stateEarly || l.cancelled {
		st := l.state
		l.mu.Unlock()
		if st == stateAnswered {
			return nil
		}
		return call.OriginatorCancel
	}
	l.state = stateAnswered
	l.mu.Unlock()
	res, err := l.answerInvite(response{code: 200, reason: "OK", body: l.localSDP,
		contact: l.p.contact(l.dlg.transport), headers: []sipmsg.Header{sipmsg.NewHeader("Allow", allowMethods)}})
	// The transaction serialises our 200 and the caller's CANCEL: if the
	// CANCEL won, onCancel ran and the caller got 487, not our 200.
	l.mu.Lock()
	cancelled := l.cancelled
	if cancelled {
		l.state = stateEnded
	}
	l.mu.Unlock()
	l.markFinal()
	if cancelled {
		if ch := l.channel(); ch != nil {
			ch.Terminated(call.OriginatorCancel)
		}
		return call.OriginatorCancel
	}
	if err != nil {
		return err
	}
	if !sipmsg.IsReliable(l.inv.Transport()) {
		l.s.pending.add()
		go l.retransmit200(res)
	}
	return nil
}

func (l *uasLeg) retransmit200(res *sipmsg.Response) {
	defer l.s.pending.done()
	interval := sipmsg.T1
	deadline := time.NewTimer(64 * sipmsg.T1)
	defer deadline.Stop()
	for {
		t := time.NewTimer(interval)
		select {
		case <-l.ackCh:
			t.Stop()
			return
		case <-deadline.C:
			t.Stop()
			l.log.Warn("no ACK for 200 OK; hanging up")
			if ch := l.channel(); ch != nil {
				ch.Hangup(call.RecoveryOnTimerExpire)
			}
			return
		case <-l.channelDone():
			t.Stop()
			return
		case <-t.C:
			if err := l.tx.Respond(res); err != nil {
				return
			}
			interval = min(interval*2, sipmsg.T2)
		}
	}
}

// Hangup ends the leg: a final error response while the INVITE is
// unanswered, BYE once answered.
func (l *uasLeg) Hangup(cause call.Cause) error {
	st, ok := l.claimEnd()
	if !ok {
		return nil
	}
	if st == stateEarly {
		code, reason := statusForCause(cause)
		_, err := l.answerInvite(response{code: code, reason: reason,
			headers: []sipmsg.Header{sipmsg.NewHeader("Reason", reasonHeader(cause))}})
		l.markFinal()
		return err
	}
	l.bye(cause, l.ackCh)
	return nil
}
