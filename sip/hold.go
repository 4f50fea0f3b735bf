package sip

import (
	"context"
	"errors"
	"fmt"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/media"
)

// Hold (uuid_hold) is a re-INVITE we send inside the leg's dialog: our SDP
// says a=sendonly to put the phone on hold and a=sendrecv to take it off,
// as FreeSWITCH's sofia does. Both leg roles implement call.Holder.

// errNotEstablished: hold needs an answered, confirmed dialog.
var errNotEstablished = errors.New("hold: dialog not established")

// Hold puts the caller's phone on hold or takes it off. A UAS may send a
// request in its dialog only once the ACK of its 200 arrived (RFC 3261
// §13.3.1.4), so it waits for it, bounded by Timer H.
func (l *uasLeg) Hold(held bool) error {
	t := time.NewTimer(l.p.timerH())
	defer t.Stop()
	select {
	case <-l.ackCh:
	case <-t.C:
		return errNotEstablished
	case <-l.channelDone():
		return errNotEstablished
	}
	return l.reofferHold(held)
}

// Hold puts the callee's phone on hold or takes it off.
func (l *uacLeg) Hold(held bool) error { return l.reofferHold(held) }

// reofferHold sends the re-INVITE and waits (bounded by Timer H) for its
// final response: a 2xx is ACKed and its answer applied; anything else
// (491 glare, 488, a timeout) leaves the media as it was and is an error.
func (l *leg) reofferHold(held bool) error {
	l.holdMu.Lock()
	defer l.holdMu.Unlock()
	l.mu.Lock()
	st, d := l.state, l.dlg
	l.mu.Unlock()
	if st != stateAnswered || d == nil {
		return errNotEstablished
	}
	dir := media.SendRecv
	if held {
		dir = media.SendOnly
	}
	l.reoffering.Store(true)
	defer l.reoffering.Store(false)
	req := d.newRequest(sipmsg.INVITE)
	req.AppendHeader(sipmsg.NewHeader("Allow", allowMethods))
	ct := sipmsg.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.SetBody(l.ml.OfferDirection(dir))
	ctx, cancel := context.WithTimeout(context.Background(), l.p.timerH())
	defer cancel()
	stop := context.AfterFunc(l.channelCtx(), cancel)
	defer stop()
	res, err := d.do(ctx, req)
	if err != nil {
		return fmt.Errorf("hold re-INVITE: %w", err)
	}
	if !res.IsSuccess() {
		return fmt.Errorf("hold re-INVITE: %d %s", res.StatusCode, res.Reason)
	}
	// The ACK of a 2xx is its own transaction with the INVITE's CSeq; it
	// replaces the one kept to answer a retransmitted 2xx.
	ack := d.buildRequest(sipmsg.ACK, req.CSeq().SeqNo)
	d.mu.Lock()
	d.ack = ack
	d.mu.Unlock()
	if err := l.p.sending(func() error { return l.p.cli.WriteRequest(ack, prebuilt) }); err != nil {
		l.log.Debug("hold ACK failed", "err", err)
	}
	if err := l.ml.AcceptAnswer(res.Body()); err != nil {
		return fmt.Errorf("hold re-INVITE answer: %w", err)
	}
	return nil
}

// channelCtx is the channel's context (Background before there is one).
func (l *leg) channelCtx() context.Context {
	if ch := l.channel(); ch != nil {
		return ch.Context()
	}
	return context.Background()
}
