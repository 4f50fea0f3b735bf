package sip

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/media"
)

// onInvite is the UAS side of a call. Its goroutine is the call-setup
// goroutine: it must not return before a final response is out (returning
// terminates the transaction, go-sip-stack §1.4), so it waits for the
// dialplan to answer or reject, or for the caller to cancel.
func (p *profile) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	s := p.stack
	if to := req.To(); to != nil && to.Params.Has("tag") {
		d := s.dialogs.lookup(req)
		if d == nil || d.leg == nil {
			respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
			return
		}
		d.leg.handleInDialog(d, req, tx)
		return
	}
	respond(tx, req, 100, "Trying", nil)
	if s.isClosed() || s.core.Closing() {
		respond(tx, req, 503, "Service Unavailable", nil)
		return
	}
	if bad := unsupportedRequired(req); len(bad) > 0 {
		// No reliable provisionals (100rel) nor any other extension a
		// caller could insist on; session timers ("timer") are fine since
		// we answer refresh re-INVITEs and UPDATEs anyway.
		respond(tx, req, 420, "Bad Extension", []sipmsg.Header{sipmsg.NewHeader("Unsupported", strings.Join(bad, ", "))})
		return
	}
	from, callID := req.From(), req.CallID()
	if from == nil || callID == nil || req.CSeq() == nil || req.To() == nil {
		respond(tx, req, 400, "Bad Request", nil)
		return
	}
	var authUser string
	if p.cfg.AuthCalls {
		if s.reg == nil {
			respond(tx, req, 403, "Forbidden", nil)
			return
		}
		user, ok := s.reg.Authenticate(req, tx)
		if !ok {
			return // the registrar sent 407 (or 403)
		}
		authUser = user
	}

	src, _ := netip.ParseAddrPort(req.Source())
	ml, err := s.media.NewLeg(p.advIP)
	if err != nil {
		p.log.Error("no media port", "err", err)
		respond(tx, req, 503, "Service Unavailable", nil)
		return
	}
	l := &sipLeg{
		s: s, p: p, dir: call.Inbound, ml: ml, lm: newLegMedia(ml),
		inv: req, tx: tx,
		finalSent: make(chan struct{}),
		acked:     make(chan struct{}),
	}
	if offer := req.Body(); len(offer) > 0 {
		ans, err := ml.AnswerOffer(offer)
		if err != nil {
			ml.Close()
			if !errors.Is(err, media.ErrNoCommonCodec) {
				p.log.Info("unusable SDP offer", "err", err)
			}
			respond(tx, req, 488, "Not Acceptable Here", nil)
			return
		}
		l.localSDP = ans
	} else {
		l.localSDP = ml.Offer()
		l.lateOffer = true
	}

	// Our To tag goes on each response we build (l.tagged), not on req:
	// sipgo reads req from other goroutines (its automatic 100, the 487
	// it sends on CANCEL), so req must not change under it.
	localTag := sipmsg.GenerateTagN(16)
	remoteTag, _ := from.Params.Get("tag")
	transport := strings.ToLower(req.Transport())
	d := &dialog{
		p: p, callID: callID.Value(), localTag: localTag, remoteTag: remoteTag,
		local: *req.To().Address.Clone(), remote: *from.Address.Clone(),
		remoteTarget: *from.Address.Clone(),
		routeSet:     routeSetFrom(req.GetHeaders("Record-Route")),
		dest:         req.Source(),
		transport:    transport,
		leg:          l,
		localSeq:     uint32(time.Now().UnixNano()&0x7fff) + 1,
		remoteSeq:    req.CSeq().SeqNo,
	}
	if c := req.Contact(); c != nil {
		d.remoteTarget = *c.Address.Clone()
	}
	l.dlg = d

	vars := p.inboundVars(req, src, authUser)
	fromUser := vars["caller_id_number"]
	name := "sofia/" + p.name + "/" + fromUser + "@" + src.String()
	ch := s.core.NewChannel(call.ChannelSpec{
		Name:       name,
		Direction:  call.Inbound,
		Vars:       vars,
		Signalling: l,
		Media:      l.lm,
		Log:        p.log.With("call_id", d.callID),
	})
	l.ch = ch
	l.log = ch.Log()
	s.dialogs.put(d)
	l.watch(ch)

	if !tx.OnCancel(func(*sipmsg.Request) { l.onCancel() }) {
		// Cancelled before we could listen: sipgo already sent the 487.
		l.onCancel()
	}
	ml.OnMediaTimeout(func() {
		if ch.Answered() {
			ch.Hangup(call.MediaTimeout)
		}
	})
	if err := s.core.Route(ch); err != nil {
		ch.Hangup(call.SystemShutdown)
	}
	select {
	case <-l.finalSent:
	case <-tx.Done():
		ch.Terminated(call.NormalTemporaryFailure)
	}
}

// tagged puts our To tag on a response to the INVITE.
func (l *sipLeg) tagged(res *sipmsg.Response) *sipmsg.Response {
	if to := res.To(); to != nil {
		to.Params.Remove("tag")
		to.Params.Add("tag", l.dlg.localTag)
	}
	return res
}

// onCancel runs when the caller's CANCEL hit the INVITE transaction;
// sipgo has answered it and sends the 487.
func (l *sipLeg) onCancel() {
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

// inboundVars builds the channel variables FreeSWITCH sets on an inbound
// sofia channel (the ones the dialplan, Lua scripts and events read).
func (p *profile) inboundVars(req *sipmsg.Request, src netip.AddrPort, authUser string) map[string]string {
	from := req.From()
	fromUser := sanitizeNumber(from.Address.User)
	name := sanitizeName(from.DisplayName)
	if name == "" {
		name = fromUser
	}
	toUser := ""
	if to := req.To(); to != nil {
		toUser = to.Address.User
	}
	v := map[string]string{
		"caller_id_number":   fromUser,
		"caller_id_name":     name,
		"destination_number": sanitizeNumber(req.Recipient.User),
		"context":            p.cfg.Context,
		"network_addr":       src.Addr().String(),
		"network_port":       strconv.Itoa(int(src.Port())),
		"sip_network_ip":     src.Addr().String(),
		"sip_network_port":   strconv.Itoa(int(src.Port())),
		"sip_call_id":        req.CallID().Value(),
		"sip_from_user":      fromUser,
		"sip_from_host":      from.Address.Host,
		"sip_to_user":        sanitizeNumber(toUser),
		"sip_req_user":       sanitizeNumber(req.Recipient.User),
		"sofia_profile_name": p.name,
		"sip_via_protocol":   strings.ToLower(req.Transport()),
		"ani":                fromUser,
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		v["sip_user_agent"] = sanitizeName(h.Value())
	}
	if authUser != "" {
		v["username"] = authUser
		v["user_name"] = authUser
		v["sip_authorized"] = "true"
		if p.stack.reg != nil {
			if u, ok := p.stack.reg.User(authUser); ok {
				for k, val := range u.Variables {
					v[k] = val
				}
				if ctx := u.Variables["user_context"]; ctx != "" {
					v["context"] = ctx
				}
			}
		}
	} else {
		v["username"] = fromUser
	}
	return v
}

// unsupportedRequired lists the Require options we do not support.
func unsupportedRequired(req *sipmsg.Request) []string {
	var bad []string
	for _, h := range req.GetHeaders("Require") {
		for _, opt := range strings.Split(h.Value(), ",") {
			opt = strings.TrimSpace(opt)
			if opt == "" || strings.EqualFold(opt, "timer") {
				continue
			}
			if len(bad) < 8 {
				bad = append(bad, sanitizeName(opt))
			}
		}
	}
	return bad
}

// Ring sends 180 Ringing, or 183 Session Progress with our SDP (early
// media).
func (l *sipLeg) Ring(early bool) error {
	if l.dir != call.Inbound {
		return nil
	}
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	if st != stateEarly {
		return nil
	}
	code, reason, body := 180, "Ringing", []byte(nil)
	if early {
		code, reason, body = 183, "Session Progress", l.localSDP
	}
	// Never hold l.mu across Respond: a CANCEL holds the transaction's
	// lock while it calls onCancel, which takes l.mu.
	return l.tx.Respond(l.tagged(newResponse(l.inv, code, reason, body, l.p.contact(l.dlg.transport))))
}

// Answer sends 200 OK with our SDP and keeps retransmitting it over UDP
// until the ACK arrives (RFC 3261 §13.3.1.4).
func (l *sipLeg) Answer() error {
	if l.dir != call.Inbound {
		return nil
	}
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
	res := l.tagged(newResponse(l.inv, 200, "OK", l.localSDP, l.p.contact(l.dlg.transport)))
	res.AppendHeader(sipmsg.NewHeader("Allow", allowMethods))
	l.mu.Unlock()
	err := l.tx.Respond(res)
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

func (l *sipLeg) retransmit200(res *sipmsg.Response) {
	defer l.s.pending.done()
	interval := sipmsg.T1
	deadline := time.NewTimer(64 * sipmsg.T1)
	defer deadline.Stop()
	for {
		t := time.NewTimer(interval)
		select {
		case <-l.acked:
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

func (l *sipLeg) channelDone() <-chan struct{} {
	if ch := l.channel(); ch != nil {
		return ch.Done()
	}
	return nil
}

// Hangup ends the leg: a final error response while the inbound INVITE is
// unanswered, CANCEL while an outbound one rings, BYE once answered.
func (l *sipLeg) Hangup(cause call.Cause) error {
	l.mu.Lock()
	st := l.state
	if st == stateEnded {
		l.mu.Unlock()
		return nil
	}
	l.state = stateEnded
	l.mu.Unlock()
	if st == stateEarly {
		if l.dir == call.Outbound {
			if l.cancelDial != nil {
				l.cancelDial(cause)
			}
			return nil
		}
		code, reason := statusForCause(cause)
		res := l.tagged(sipmsg.NewResponseFromRequest(l.inv, code, reason, nil))
		res.AppendHeader(sipmsg.NewHeader("Reason", reasonHeader(cause)))
		if src := l.inv.Source(); src != "" && !sipmsg.IsReliable(l.inv.Transport()) {
			res.SetDestination(src)
		}
		err := l.tx.Respond(res)
		l.markFinal()
		return err
	}
	// Answered: BYE. A UAS must not send BYE before the ACK (RFC 3261
	// §15), so wait for it, in the background: Hangup must not block the
	// dialplan on the peer.
	l.s.pending.add()
	l.byes.Add(1)
	go func() {
		defer l.s.pending.done()
		defer l.byes.Done()
		if l.dir == call.Inbound {
			select {
			case <-l.acked:
			case <-time.After(64 * sipmsg.T1):
			}
		}
		if err := l.dlg.bye(reasonHeader(cause)); err != nil {
			l.log.Debug("BYE failed", "err", err)
		}
	}()
	return nil
}
