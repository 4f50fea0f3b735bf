package sip

import (
	"errors"
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
	// ackWaitOnce closes ackOver: the ACK arrived or Timer H gave up on
	// it, so a BYE may go (RFC 3261 §15: not before the ACK).
	ackWaitOnce sync.Once
	ackOver     chan struct{}
	// ackTimedOut: Timer H expired without the ACK (under mu).
	ackTimedOut bool
	// answered: Answer is sending (or sent) the 200, so an ACK is due
	// even once the call has ended (under mu).
	answered bool
}

func (l *uasLeg) markFinal() { l.finalOnce.Do(func() { close(l.finalSent) }) }

func (l *uasLeg) handleInDialog(d *dialog, req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	l.serveInDialog(l, d, req, tx)
}

// acked: the ACK of a 2xx. The first one after our 200 completes the
// answer (a BYE of ours may go now, even if the call has ended since),
// and is the caller's consent to media (README "RTP source policy"): the
// media leg may now send to the SDP address, and its media timeout
// starts, so a call that never exchanges SDP still ends. An ACK before our
// 200 (a To tag learned from a 180) confirms nothing.
func (l *uasLeg) acked() {
	l.mu.Lock()
	answered := l.answered
	l.mu.Unlock()
	if !answered {
		return
	}
	l.ackOnce.Do(func() {
		close(l.ackCh)
		l.endAckWait()
		l.ml.Confirm()
	})
}

func (l *uasLeg) endAckWait() { l.ackWaitOnce.Do(func() { close(l.ackOver) }) }

// byeWhileEarly: the INVITE still needs its final response (RFC 3261
// §15.1.2), or its transaction never ends.
func (l *uasLeg) byeWhileEarly() {
	_, _ = l.answerInvite(response{code: 487, reason: "Request Terminated"})
	l.markFinal()
}

// answerInvite sends a response to the INVITE, with our dialog's To tag.
// Once the leg is answered and its 200 ACKed the INVITE is released
// (releaseInvite) and there is nothing left to answer.
func (l *uasLeg) answerInvite(r response) (*sipmsg.Response, error) {
	l.mu.Lock()
	tx, inv := l.tx, l.inv
	l.mu.Unlock()
	if tx == nil {
		return nil, errInviteReleased
	}
	r.toTag = l.dlg.localTag
	return l.s.reply(tx, inv, r)
}

// errInviteReleased: a response to an INVITE already answered and ACKed.
var errInviteReleased = errors.New("sip: the INVITE was answered and released")

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
	l.answered = true
	l.mu.Unlock()
	hdrs := []sipmsg.Header{sipmsg.NewHeader("Allow", allowMethods)}
	if l.session != nil {
		hdrs = append(hdrs, l.session.headers()...)
	}
	res, err := l.answerInvite(response{code: 200, reason: "OK", body: l.localSDP,
		contact: l.p.contact(l.dlg.transport), headers: hdrs})
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
	l.s.pending.add()
	go l.awaitAck(res)
	if st := l.session; st != nil {
		ch := l.channel()
		l.s.pending.add()
		go func() {
			defer l.s.pending.done()
			st.run(ch.Done(), func() {
				l.log.Info("session not refreshed; hanging up")
				ch.Hangup(call.RecoveryOnTimerExpire)
			})
		}()
	}
	return nil
}

// ackTimeoutReason is what sofia-sip puts on the BYE of a 200 never ACKed.
const ackTimeoutReason = `SIP;cause=408;text="ACK Timeout"`

// awaitAck waits for the ACK of our 200 (RFC 3261 §13.3.1.4), over UDP
// retransmitting the 200 (T1 doubling up to T2). Without an ACK after
// 64*T1 (Timer H, the profile's timer_t1x64) the call ends as FreeSWITCH
// ends it: sofia-sip sends BYE with Reason SIP;cause=408 "ACK Timeout"
// and sofia maps 408 to RECOVERY_ON_TIMER_EXPIRE. Over TCP nothing is
// retransmitted, but the wait is the same, so no transport leaves a call
// up that its caller never confirmed.
func (l *uasLeg) awaitAck(res *sipmsg.Response) {
	defer l.s.pending.done()
	deadline := time.NewTimer(l.p.timerH())
	defer deadline.Stop()
	interval := sipmsg.T1
	resend := time.NewTimer(interval)
	defer resend.Stop()
	l.mu.Lock()
	tx, reliable := l.tx, sipmsg.IsReliable(l.inv.Transport())
	l.mu.Unlock()
	if reliable {
		resend.Stop()
	}
	chDone := l.channelDone()
	for {
		select {
		case <-l.ackCh:
			l.releaseInvite()
			return
		case <-deadline.C:
			l.releaseInvite()
			l.mu.Lock()
			l.ackTimedOut = true
			l.mu.Unlock()
			l.endAckWait()
			if chDone != nil {
				l.log.Warn("no ACK for 200 OK; hanging up", "after", l.p.timerH())
				if ch := l.channel(); ch != nil {
					ch.Hangup(call.RecoveryOnTimerExpire)
				}
			}
			return
		case <-chDone:
			if reliable {
				return // nothing to resend; the BYE waits for the ACK itself
			}
			// Hung up before the ACK: the BYE waits for it, so keep
			// resending the 200 until the ACK or Timer H.
			chDone = nil
		case <-resend.C:
			if err := tx.Respond(res); err != nil {
				if chDone == nil {
					l.endAckWait() // the transaction is gone: no ACK to wait for
				}
				return
			}
			interval = min(interval*2, sipmsg.T2)
			resend.Reset(interval)
		}
	}
}

// releaseInvite drops the INVITE request and its server transaction once
// the 200 needs no more retransmission (ACKed, or Timer H gave up): an
// answered leg ends with a BYE of its dialog, so they would only be kept,
// with their headers and SDP, for as long as the call lasts (a caller
// waiting in a queue for minutes). Only awaitAck resends on the
// transaction, and it is what calls this; the early-state paths
// (answerInvite) are over once the leg is answered.
func (l *uasLeg) releaseInvite() {
	l.mu.Lock()
	l.inv, l.tx = nil, nil
	l.mu.Unlock()
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
	l.mu.Lock()
	reason := reasonHeader(cause)
	switch {
	case l.ackTimedOut:
		reason = ackTimeoutReason
	case l.session.isExpired():
		reason = sessionTimeoutReason
	}
	l.mu.Unlock()
	l.bye(reason, l.ackOver)
	return nil
}
