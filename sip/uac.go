package sip

import (
	"context"
	"net/netip"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
)

// uacLeg is a leg we call: an INVITE we sent (dial). While it rings its
// response loop (runInvite) owns the client transaction; it hangs up a
// ringing call with CANCEL and an answered one with BYE.
type uacLeg struct {
	leg

	// cancelDial stops the dial loop (which then CANCELs) with a cause.
	cancelDial context.CancelCauseFunc
}

func (l *uacLeg) handleInDialog(d *dialog, req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	l.serveInDialog(l, d, req, tx)
}

// acked: an ACK for the 2xx of a re-INVITE we answered; nothing waits for
// it.
func (l *uacLeg) acked() {}

// byeWhileEarly: nothing to answer, our INVITE's loop sees the ended state.
func (l *uacLeg) byeWhileEarly() {}

// Ring is for legs we answer; a called leg's ringing is reported by the
// dial loop.
func (l *uacLeg) Ring(bool) error { return nil }

// Answer is for legs we answer; a called leg is answered by its peer.
func (l *uacLeg) Answer() error { return nil }

// Hangup ends the leg: CANCEL while it rings (the dial loop sends it),
// BYE once answered.
func (l *uacLeg) Hangup(cause call.Cause) error {
	st, ok := l.claimEnd()
	if !ok {
		return nil
	}
	if st == stateEarly {
		l.mu.Lock()
		cancel := l.cancelDial
		l.mu.Unlock()
		if cancel != nil {
			cancel(cause)
		}
		return nil
	}
	l.bye(reasonHeader(cause), nil)
	return nil
}

// runInvite is the UAC response loop of one outbound INVITE.
func (l *uacLeg) runInvite(ctx context.Context, inv *sipmsg.Request, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	ch, d, p := l.ch, l.dlg, l.p
	fail := func(cause call.Cause) (*call.Channel, error) {
		l.mu.Lock()
		l.state = stateEnded
		l.mu.Unlock()
		ch.Terminated(cause)
		return nil, cause
	}
	var tx sipmsg.ClientTransaction
	send := func() (err error) {
		tx, err = p.cli.TransactionRequest(context.Background(), inv, prebuilt)
		return err
	}
	err := p.sending(send)
	if err != nil && (d.transport == "tcp" || d.transport == "tls") {
		// The TCP connection the phone registered over is gone (phones
		// reconnect only at their next REGISTER): try its Contact, where
		// a TCP phone listens, as FreeSWITCH does.
		if alt := uriHostPort(inv.Recipient); alt != "" && alt != d.dest {
			l.log.Info("registration's TCP connection is gone; trying the Contact", "err", err, "contact", alt)
			d.dest = alt
			inv.SetDestination(alt)
			err = p.sending(send)
		}
	}
	if err != nil {
		l.log.Info("INVITE not sent", "err", err)
		return fail(call.DestinationOutOfOrder)
	}
	authTried := false
	provisional := false
	for {
		select {
		case res := <-tx.Responses():
			code := res.StatusCode
			switch {
			case code == 100:
				provisional = true
			case code < 200:
				provisional = true
				early := false
				if body := res.Body(); len(body) > 0 {
					if err := l.ml.AcceptAnswer(body); err == nil {
						early = true
					}
				}
				ch.MarkRinging(early)
				if o.OnRing != nil {
					o.OnRing(ch, early)
				}
			case code < 300:
				return l.established(tx, inv, res)
			case (code == 401 || code == 407) && !authTried && vars["sip_auth_username"] != "":
				authTried = true
				next, err := authorize(inv, res, vars["sip_auth_username"], vars["sip_auth_password"])
				if err != nil {
					tx.Terminate()
					return fail(call.CallRejected)
				}
				tx.Terminate()
				inv = next
				d.mu.Lock()
				d.localSeq = inv.CSeq().SeqNo
				d.mu.Unlock()
				if err = p.sending(send); err != nil {
					return fail(call.DestinationOutOfOrder)
				}
				provisional = false
			default:
				tx.Terminate()
				return fail(causeForStatus(code))
			}
		case <-tx.Done():
			// Timer B without any final response.
			l.log.Info("INVITE transaction ended without answer", "err", tx.Err())
			if provisional {
				return fail(call.NoAnswer)
			}
			return fail(call.NoUserResponse)
		case <-ctx.Done():
			cause, ok := call.AsCause(context.Cause(ctx))
			if !ok {
				cause = call.OriginatorCancel
			}
			l.mu.Lock()
			l.state = stateEnded
			l.mu.Unlock()
			l.s.pending.add()
			settled := make(chan struct{})
			go func() {
				defer close(settled)
				l.cancelInvite(tx, inv, provisional, cause)
			}()
			if cause != call.LoseRace {
				// The callee is done with this INVITE once it has
				// answered it (487): until then a new INVITE to the
				// same phone (the ACD offering the agent the next
				// caller) can reach it before the CANCEL, or while it
				// still rings, when a proxy in between forwards the
				// two in parallel. A ring-all loser does not wait: the
				// winner's bridge must not.
				t := time.NewTimer(cancelSettle)
				select {
				case <-settled:
				case <-t.C:
				}
				t.Stop()
			}
			ch.Terminated(cause)
			return nil, cause
		}
	}
}

// established completes a 2xx: dialog from the response, ACK, the answer
// SDP into the media leg, and the channel marked answered.
func (l *uacLeg) established(tx sipmsg.ClientTransaction, inv *sipmsg.Request, res *sipmsg.Response) (*call.Channel, error) {
	ch, d := l.ch, l.dlg
	l.fillDialog(d, res)
	// In the table before the ACK goes out: the callee may BYE at once.
	l.s.dialogs.put(d)
	ack := d.buildRequest(sipmsg.ACK, inv.CSeq().SeqNo)
	d.mu.Lock()
	d.ack = ack
	d.mu.Unlock()
	if err := l.p.sending(func() error { return l.p.cli.WriteRequest(ack, prebuilt) }); err != nil {
		l.log.Warn("ACK failed", "err", err)
	}
	// A retransmitted 2xx while the transaction is still Accepted means the
	// ACK was lost.
	ref := newTxRef(&l.leg, d)
	tx.OnRetransmission(func(*sipmsg.Response) {
		if d := ref.get(); d != nil {
			d.resendAck()
		}
	})
	l.onRelease(tx.Terminate)

	l.mu.Lock()
	if l.state != stateEarly {
		byed := l.byeReceived
		l.mu.Unlock()
		if byed {
			// The callee hung up right after answering.
			ch.Terminated(call.NormalClearing)
			return nil, call.NormalClearing
		}
		// Hung up while the 200 was on its way: ACK done, now BYE.
		l.s.pending.add()
		go func() {
			defer l.s.pending.done()
			_ = d.bye(reasonHeader(call.OriginatorCancel))
		}()
		ch.Terminated(call.OriginatorCancel)
		return nil, call.OriginatorCancel
	}
	l.state = stateAnswered
	l.mu.Unlock()
	// RTP from where the 2xx came from is expected like RTP from its SDP
	// address (README "RTP source policy").
	if src, err := netip.ParseAddrPort(res.Source()); err == nil {
		l.ml.SetSignallingSource(src.Addr())
	}
	if body := res.Body(); len(body) > 0 {
		if err := l.ml.AcceptAnswer(body); err != nil {
			l.log.Warn("unusable SDP answer", "err", err)
			ch.Hangup(call.IncompatibleDestination)
			return nil, call.IncompatibleDestination
		}
	}
	l.ml.OnMediaTimeout(func() { ch.Hangup(call.MediaTimeout) })
	// Our ACK is sent: the call is established, media may flow to the
	// callee's SDP address and the media timeout starts.
	l.ml.Confirm()
	ch.MarkAnswered()
	return ch, nil
}

// fillDialog learns the peer's tag, target and route set from a 2xx.
func (l *uacLeg) fillDialog(d *dialog, res *sipmsg.Response) {
	if to := res.To(); to != nil {
		d.remoteTag, _ = to.Params.Get("tag")
	}
	if c := res.Contact(); c != nil {
		d.remoteTarget = *c.Address.Clone()
	}
	// UAC route set: the 2xx's Record-Route in reverse order.
	rs := routeSetFrom(res.GetHeaders("Record-Route"))
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	d.routeSet = rs
}

// cancelInvite CANCELs a ringing INVITE once the callee has sent a
// provisional (a CANCEL before one is not allowed, RFC 3261 §9.1). A 2xx
// that races the CANCEL gets ACK and BYE, so the phone stops ringing and
// does not sit in a dead call.
func (l *uacLeg) cancelInvite(tx sipmsg.ClientTransaction, inv *sipmsg.Request, provisional bool, cause call.Cause) {
	defer l.s.pending.done()
	defer tx.Terminate()
	// A 200 that arrives after this transaction is gone (reordered behind
	// a 487, or retransmitted late) reaches unhandledResponse, which looks
	// the INVITE up here to ACK and BYE it.
	callID := inv.CallID().Value()
	l.s.late.Store(callID, &lateInvite{leg: l, inv: inv, cause: cause})
	time.AfterFunc(lateInviteTTL, func() { l.s.late.Delete(callID) })
	sent := false
	send := func() {
		if sent {
			return
		}
		sent = true
		l.sendCancel(inv, cause)
	}
	if provisional {
		send()
	}
	limit := time.NewTimer(64 * sipmsg.T1)
	defer limit.Stop()
	for {
		select {
		case res := <-tx.Responses():
			switch {
			case res.StatusCode < 200:
				send()
			case res.StatusCode < 300:
				if v, ok := l.s.late.LoadAndDelete(callID); ok {
					v.(*lateInvite).ackAndBye(res)
				}
				return
			default:
				return // 487 (sipgo ACKs it) or any other final
			}
		case <-tx.Done():
			return
		case <-limit.C:
			return
		}
	}
}

func (l *uacLeg) sendCancel(inv *sipmsg.Request, cause call.Cause) {
	c := sipmsg.NewRequest(sipmsg.CANCEL, *inv.Recipient.Clone())
	if v := inv.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	for _, r := range inv.GetHeaders("Route") {
		c.AppendHeader(sipmsg.HeaderClone(r))
	}
	mf := sipmsg.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sipmsg.HeaderClone(inv.From()))
	c.AppendHeader(sipmsg.HeaderClone(inv.To()))
	c.AppendHeader(sipmsg.HeaderClone(inv.CallID()))
	c.AppendHeader(&sipmsg.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipmsg.CANCEL})
	reason := reasonHeader(cause)
	if cause == call.LoseRace {
		reason = `SIP;cause=200;text="Call completed elsewhere"`
	}
	c.AppendHeader(sipmsg.NewHeader("Reason", reason))
	c.SetTransport(inv.Transport())
	c.SetDestination(inv.Destination())
	c.Laddr = inv.Laddr
	c.SetBody(nil)
	var tx sipmsg.ClientTransaction
	err := l.p.sending(func() (err error) {
		tx, err = l.p.cli.TransactionRequest(context.Background(), c, prebuilt)
		return err
	})
	if err != nil {
		l.log.Debug("CANCEL not sent", "err", err)
		return
	}
	go func() {
		defer tx.Terminate()
		select {
		case <-tx.Responses():
		case <-tx.Done():
		case <-time.After(5 * time.Second):
		}
	}()
}

// cancelSettle bounds how long a cancelled dial waits for the callee to
// end its INVITE (the 487) before it reports the leg ended: long enough
// for a phone on a loaded network, short enough that a phone that never
// answers the CANCEL keeps an agent from the next caller for no more than
// that.
const cancelSettle = 2 * time.Second

// lateInviteTTL covers Timer D and a peer's 2xx retransmissions (64*T1).
const lateInviteTTL = 40 * time.Second

// lateInvite is an outbound INVITE we gave up on (CANCEL sent, or its
// transaction ended): a 2xx for it must still be ACKed and then BYEd so
// the phone does not sit in a call nobody hears.
type lateInvite struct {
	leg   *uacLeg
	inv   *sipmsg.Request
	cause call.Cause
}

func (li *lateInvite) ackAndBye(res *sipmsg.Response) {
	l := li.leg
	d := l.dlg
	l.fillDialog(d, res)
	ack := d.buildRequest(sipmsg.ACK, li.inv.CSeq().SeqNo)
	if err := l.p.sending(func() error { return l.p.cli.WriteRequest(ack, prebuilt) }); err != nil {
		l.log.Debug("ACK of a late 200 failed", "err", err)
	}
	if err := d.bye(reasonHeader(li.cause)); err != nil {
		l.log.Debug("BYE of a late 200 failed", "err", err)
	}
}
