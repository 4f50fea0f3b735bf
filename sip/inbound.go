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
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
			return
		}
		d.leg.handleInDialog(d, req, tx)
		return
	}
	s.respond(tx, req, 100, "Trying")
	if s.isClosed() || s.core.Closing() {
		s.respond(tx, req, 503, "Service Unavailable")
		return
	}
	if tags := unsupportedRequired(req); len(tags) > 0 {
		s.badExtension(tx, req, tags)
		return
	}
	from, callID := req.From(), req.CallID()
	if from == nil || callID == nil || req.CSeq() == nil || req.To() == nil {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	var authUser string
	if p.cfg.AuthCalls {
		if s.reg == nil {
			s.respond(tx, req, 403, "Forbidden")
			return
		}
		auth, ok := p.authenticate(req, tx, true)
		if !ok {
			return // answered 407 (or 400)
		}
		authUser = auth.User
	}

	ours := p.cfg.SessionTimeout.Duration
	interval, tooSmall := grant(ours, readSessionAsk(req))
	if tooSmall {
		s.respond(tx, req, 422, "Session Interval Too Small",
			sipmsg.NewHeader("Min-SE", strconv.Itoa(int(minSessionExpires/time.Second))))
		return
	}

	src, _ := netip.ParseAddrPort(req.Source())
	ml, err := s.media.NewLeg(p.advIP)
	if err != nil {
		p.log.Error("no media port", "err", err)
		s.respond(tx, req, 503, "Service Unavailable")
		return
	}
	// RTP from where the INVITE came from is expected like RTP from the
	// SDP address (a NATed phone sends both from its public address).
	ml.SetSignallingSource(src.Addr())
	ml.SetSecureMedia(p.securePolicy(map[string]string{varSecureMedia: s.userSecureMedia(authUser)}))
	l := &uasLeg{
		leg: leg{s: s, p: p, ml: ml, lm: newLegMedia(ml)},
		inv: req, tx: tx,
		finalSent: make(chan struct{}),
		ackCh:     make(chan struct{}),
		ackOver:   make(chan struct{}),
	}
	if interval > 0 {
		l.session = newSessionTimer(ours, interval)
	}
	if offer := req.Body(); len(offer) > 0 {
		ans, err := ml.AnswerOffer(offer)
		if err != nil {
			ml.Close()
			if !errors.Is(err, media.ErrNoCommonCodec) {
				p.log.Info("unusable SDP offer", "err", err)
			}
			s.respond(tx, req, 488, "Not Acceptable Here")
			return
		}
		l.localSDP = ans
	} else {
		l.localSDP = ml.Offer()
		l.lateOffer = true
	}

	// Our To tag goes on each response we build (answerInvite), not on req:
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

	ref := newTxRef(&l.leg, l)
	if !tx.OnCancel(func(*sipmsg.Request) {
		if l := ref.get(); l != nil {
			l.onCancel()
		}
	}) {
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
				callerIDFromAccount(v, u)
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
