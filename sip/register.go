package sip

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/config"
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
	if tags := withoutPath(unsupportedRequired(req)); len(tags) > 0 {
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
	path, err := pathOf(req)
	if err != nil {
		s.respond(tx, req, 400, "Bad Path")
		return
	}
	reg.Path = path
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
		if path != "" && supportsPath(req) {
			// RFC 3327 §5.3: the registrar echoes the Path it stored to a
			// UA that supports it.
			hdrs = append(hdrs, sipmsg.NewHeader("Path", path))
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

// banned reports whether req comes from a source banned for guessing
// passwords. Whatever its method, such a request is dropped without an
// answer and before any work: over UDP by the read filter before it is
// even parsed (bannedAddr), over TCP and TLS by the handler wrapper
// (routes.go) before admit.
func (s *Stack) banned(req *sipmsg.Request) bool {
	if s.bans == nil {
		return false
	}
	src, err := netip.ParseAddrPort(req.Source())
	return err == nil && s.bans.Banned(src.Addr())
}

// connClosed is the input guard's hook for an accepted TCP or TLS
// connection that closed: the bindings registered over it are gone (the
// phone can only be reached through it, and will register again over a new
// one). Not while the stack shuts down: then ccpbx closes the connections
// itself, and the persisted bindings are for the next start.
func (p *profile) connClosed(transport string, remote netip.AddrPort) {
	s := p.stack
	if s.reg == nil || s.isClosed() {
		return
	}
	s.reg.ConnectionClosed(transport, remote)
}

// bannedAddr is banned for a datagram's source address, before parsing.
func (s *Stack) bannedAddr(from net.Addr) bool {
	if s.bans == nil {
		return false
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	return ok && s.bans.Banned(ip.Unmap())
}

// authenticate checks the digest credentials of req with the registrar:
// Authorization on a REGISTER (proxy false); Proxy-Authorization, or
// Authorization as some phones send, on other requests. Unless ok, it has
// answered: 401 or 407 with a fresh challenge (stale=true when only the
// nonce was too old or not this source's), 400 for unparsable
// credentials; or, for a source banned for guessing passwords, dropped the
// request unanswered. A wrong password counts toward a ban of its source
// (and of any source guessing the same account) and logs FreeSWITCH's
// "SIP auth failure" line at WARN, so fail2ban can watch it too.
func (p *profile) authenticate(req *sipmsg.Request, tx sipmsg.ServerTransaction, proxy bool) (registrar.AuthResult, bool) {
	s := p.stack
	src, _ := netip.ParseAddrPort(req.Source())
	if s.bans != nil && s.bans.Banned(src.Addr()) {
		return registrar.AuthResult{Status: registrar.AuthFailed, Reason: "source banned"}, false
	}
	dr := registrar.DigestRequest{
		Method:      req.Method.String(),
		RequestUser: req.Recipient.User,
		RequestHost: req.Recipient.Host,
		Source:      src.Addr(),
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
	switch res.Status {
	case registrar.AuthFailed:
		p.log.Warn(p.authLine("failure", req, src.Addr()))
		p.log.Debug("authentication failed", "method", dr.Method, "user", res.User,
			"source", req.Source(), "reason", res.Reason)
		if s.metrics != nil {
			s.metrics.AuthFailure(authListener)
		}
		if s.bans != nil && s.bans.FailureFor(src.Addr(), res.User) {
			p.log.Warn("SIP source banned after repeated auth failures", "ip", src.Addr().String(), "user", res.User)
			if s.metrics != nil {
				s.metrics.Ban(authListener)
			}
		}
	default:
		p.log.Debug(p.authLine("challenge", req, src.Addr()), "result", res.Status.String(), "reason", res.Reason)
	}
	code, reason, hname := 401, "Unauthorized", "WWW-Authenticate"
	if proxy {
		code, reason, hname = 407, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	var hdrs []sipmsg.Header
	for _, v := range s.reg.Challenge(res.Realm, src.Addr(), res.Status == registrar.AuthStale) {
		hdrs = append(hdrs, sipmsg.NewHeader(hname, v))
	}
	s.respond(tx, req, code, reason, hdrs...)
	return res, false
}

// authLine is sofia_reg.c's log line for an auth failure or challenge,
// word for word, so log watchers written for FreeSWITCH match it:
// "SIP auth failure (REGISTER) on sofia profile 'internal' for
// [1001@example.com] from ip 192.0.2.1". The To user and host are the
// caller's to choose, so they are cut down to characters that cannot
// imitate the end of the line.
func (p *profile) authLine(what string, req *sipmsg.Request, ip netip.Addr) string {
	user, host := "", ""
	if to := req.To(); to != nil {
		user, host = logSafe(to.Address.User), logSafe(to.Address.Host)
	}
	return "SIP auth " + what + " (" + logSafe(req.Method.String()) + ") on sofia profile '" + p.name +
		"' for [" + user + "@" + host + "] from ip " + ip.Unmap().String()
}

// logSafe keeps at most 64 bytes of s from the characters a user name or
// host is made of.
func logSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 64; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', strings.IndexByte("+*#.-_:%", c) >= 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ParamAllowPresentedCallerID is the directory user param that lets an
// account's calls keep the caller ID of their From header (a PBX behind
// it, a front desk presenting a main number); without it the account's
// effective_caller_id_* is the caller ID, whatever From says.
const ParamAllowPresentedCallerID = "allow-presented-caller-id"

// callerIDFromAccount makes an authenticated call's caller_id_number and
// caller_id_name the account's effective_caller_id_number and _name (the
// user id and the number when unset), as FreeSWITCH does for a user that
// has them: an extension that writes another's number in its From shows
// its own. sip_from_user keeps what From said.
func callerIDFromAccount(v map[string]string, u config.User) {
	if call.SwitchTrue(u.Params[ParamAllowPresentedCallerID]) {
		return
	}
	num := sanitizeNumber(u.Variables["effective_caller_id_number"])
	if num == "" {
		num = sanitizeNumber(u.ID)
	}
	name := sanitizeName(u.Variables["effective_caller_id_name"])
	if name == "" {
		name = num
	}
	v["caller_id_number"], v["caller_id_name"] = num, name
}
