package sip

import (
	"runtime/debug"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

const allowMethods = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REGISTER"

// routes binds the profile's request handlers. Each is a closure over the
// profile, so which listener a request came in on is known by construction,
// and each recovers from panics: a panic in a sipgo handler goroutine would
// kill the process.
func (p *profile) routes() {
	h := func(name string, fn sipgo.RequestHandler) sipgo.RequestHandler {
		return func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
			defer func() {
				if r := recover(); r != nil {
					p.log.Error("panic in sip handler", "handler", name, "panic", r, "stack", string(debug.Stack()))
					p.stack.respond(tx, req, 500, "Server Internal Error")
				}
			}()
			if p.stack.dropStray(tx) {
				return
			}
			if p.stack.banned(req) {
				return // unanswered: no work, no hint for the guesser
			}
			p.countRequest(req)
			if !p.admit(req, tx) {
				return
			}
			if req.Method == sipmsg.INVITE || req.Method == sipmsg.ACK {
				fn(req, tx)
				return
			}
			// The handling time of the short requests is what the
			// overload meter watches (overload.go).
			if req.Method == sipmsg.REGISTER {
				defer p.stack.overload.release() // acquired in admit
			}
			start := time.Now()
			fn(req, tx)
			p.stack.overload.observe(time.Since(start))
		}
	}
	p.srv.OnInvite(h("INVITE", p.onInvite))
	p.srv.OnAck(h("ACK", p.onAck))
	p.srv.OnBye(h("BYE", p.inDialog))
	p.srv.OnInfo(h("INFO", p.inDialog))
	p.srv.OnUpdate(h("UPDATE", p.inDialog))
	p.srv.OnCancel(h("CANCEL", p.onCancel))
	p.srv.OnOptions(h("OPTIONS", p.onOptions))
	p.srv.OnRegister(h("REGISTER", p.onRegister))
	p.srv.OnPrack(h("PRACK", func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		// We never send reliable provisionals, so no PRACK can match.
		p.stack.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}))
	p.srv.OnNoRoute(h("other", func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		p.stack.respond(tx, req, 405, "Method Not Allowed", sipmsg.NewHeader("Allow", allowMethods))
	}))
}

func (p *profile) onOptions(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if d := p.stack.dialogs.lookup(req); d != nil && d.leg != nil {
		d.leg.handleInDialog(d, req, tx)
		return
	}
	p.stack.respond(tx, req, 200, "OK",
		sipmsg.NewHeader("Allow", allowMethods),
		sipmsg.NewHeader("Accept", "application/sdp"),
	)
}

// inDialog serves BYE, INFO and UPDATE: they only make sense inside a
// dialog we know.
func (p *profile) inDialog(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	d := p.stack.dialogs.lookup(req)
	if d == nil || d.leg == nil {
		p.stack.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	d.leg.handleInDialog(d, req, tx)
}

// onAck sees ACKs for 2xx (they form their own transaction); ACKs for
// error responses are absorbed by the INVITE transaction.
func (p *profile) onAck(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	d := p.stack.dialogs.lookup(req)
	if d == nil || d.leg == nil {
		return
	}
	d.leg.handleInDialog(d, req, tx)
}

// onCancel sees only CANCELs that matched no INVITE transaction.
func (p *profile) onCancel(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	p.stack.respond(tx, req, 481, "Call/Transaction Does Not Exist")
}
