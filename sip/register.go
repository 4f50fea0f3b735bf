package sip

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/registrar"
)

// onRegister receives a REGISTER (RFC 3261 §10.3) on a profile that takes
// registrations: the checks a SIP message needs, digest authentication
// against the registrar, then the binding change, and the answer. The
// registrar decides; this side only translates between SIP and it.
func (p *profile) onRegister(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	s := p.stack
	if !p.cfg.Register || s.reg == nil {
		s.respond(tx, req, 403, "Forbidden")
		return
	}
	to, from, callID, cseq := req.To(), req.From(), req.CallID(), req.CSeq()
	if to == nil || from == nil || callID == nil || cseq == nil || string(*callID) == "" {
		s.respond(tx, req, 400, "Missing Mandatory Header")
		return
	}
	if cseq.MethodName != sipmsg.REGISTER {
		s.respond(tx, req, 400, "CSeq Method Mismatch")
		return
	}
	if tags := unsupportedRequired(req); len(tags) > 0 {
		s.badExtension(tx, req, tags)
		return
	}
	aor := to.Address.User
	if aor == "" {
		s.respond(tx, req, 404, "Not Found")
		return
	}
	auth, ok := p.authenticate(req, tx, false)
	if !ok {
		return
	}
	if auth.User != aor {
		p.log.Info("user may not register this AOR", "user", auth.User, "aor", aor, "source", req.Source())
		s.respond(tx, req, 403, "Forbidden")
		return
	}
	reg := registrar.Registration{
		User: aor, Realm: auth.Realm, CallID: string(*callID), CSeq: cseq.SeqNo,
		Transport: strings.ToLower(req.Transport()),
	}
	reg.Source, _ = netip.ParseAddrPort(req.Source())
	if ua := req.GetHeader("User-Agent"); ua != nil {
		reg.UserAgent = ua.Value()
	}
	if h := req.GetHeader("Expires"); h != nil {
		reg.Expires, reg.HasExpires = h.Value(), true
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sipmsg.ContactHeader)
		if !ok {
			s.respond(tx, req, 400, "Bad Contact")
			return
		}
		reg.Contacts = append(reg.Contacts, registrarContact(c))
	}
	res := s.reg.Register(reg)
	var hdrs []sipmsg.Header
	switch res.Code {
	case 200:
		for _, c := range res.Contacts {
			hdrs = append(hdrs, sipmsg.NewHeader("Contact", "<"+c.URI+">;expires="+strconv.FormatInt(c.Seconds, 10)))
		}
		// RFC 3261 §20.17's Date, which phones without NTP use.
		hdrs = append(hdrs, sipmsg.NewHeader("Date", res.Date.UTC().Format(http.TimeFormat)))
	case 423:
		hdrs = append(hdrs, sipmsg.NewHeader("Min-Expires", strconv.Itoa(int(res.MinExpires/time.Second))))
	}
	s.respond(tx, req, res.Code, res.Reason, hdrs...)
}

// registrarContact gives the registrar a Contact header's parts.
func registrarContact(c *sipmsg.ContactHeader) registrar.Contact {
	u := &c.Address
	out := registrar.Contact{
		Wildcard: u.Wildcard, URI: u.String(),
		Scheme: u.Scheme, User: u.User, Host: u.Host, Port: u.Port,
	}
	if u.UriParams != nil {
		out.Transport, _ = u.UriParams.Get("transport")
	}
	if c.Params != nil {
		out.Expires, out.HasExpires = c.Params.Get("expires")
	}
	return out
}

// authenticate checks the digest credentials of req with the registrar:
// Authorization on a REGISTER (proxy false); Proxy-Authorization, or
// Authorization as some phones send, on other requests. Unless ok, it has
// answered: 401 or 407 with a fresh challenge (stale=true when only the
// nonce was too old), 400 for unparsable credentials.
func (p *profile) authenticate(req *sipmsg.Request, tx sipmsg.ServerTransaction, proxy bool) (registrar.AuthResult, bool) {
	s := p.stack
	dr := registrar.DigestRequest{
		Method:      req.Method.String(),
		RequestUser: req.Recipient.User,
		RequestHost: req.Recipient.Host,
	}
	// The domain the phone addresses, as sofia takes the realm: the To
	// host of a REGISTER, the From host of anything else.
	if req.Method == sipmsg.REGISTER {
		if to := req.To(); to != nil {
			dr.Domain = to.Address.Host
		}
	} else if from := req.From(); from != nil {
		dr.Domain = from.Address.Host
	}
	if dr.Domain == "" {
		dr.Domain = req.Recipient.Host
	}
	names := []string{"Authorization"}
	if proxy {
		names = []string{"Proxy-Authorization", "Authorization"}
	}
	for _, name := range names {
		for _, h := range req.GetHeaders(name) {
			dr.Credentials = append(dr.Credentials, h.Value())
		}
	}
	res := s.reg.Verify(dr)
	switch res.Status {
	case registrar.AuthOK:
		return res, true
	case registrar.AuthMalformed:
		p.log.Info("malformed credentials", "method", dr.Method, "source", req.Source(), "err", res.Reason)
		s.respond(tx, req, 400, "Malformed Authorization")
		return res, false
	}
	if res.Status != registrar.AuthNone {
		p.log.Info("authentication failed", "method", dr.Method, "user", res.User,
			"source", req.Source(), "result", res.Status.String(), "reason", res.Reason)
	}
	code, reason, hname := 401, "Unauthorized", "WWW-Authenticate"
	if proxy {
		code, reason, hname = 407, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	var hdrs []sipmsg.Header
	for _, v := range s.reg.Challenge(res.Realm, res.Status == registrar.AuthStale) {
		hdrs = append(hdrs, sipmsg.NewHeader(hname, v))
	}
	s.respond(tx, req, code, reason, hdrs...)
	return res, false
}
