package registrar

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/store"
)

// rejection is a final non-2xx answer decided while planning a REGISTER.
type rejection struct {
	code    int
	reason  string
	headers []sipmsg.Header
}

// plan is the set of binding changes one REGISTER makes.
type plan struct {
	user string
	save map[string]Binding // key → new binding
	// refresh marks saved keys that were already bound (log at debug).
	refresh map[string]bool
	remove  map[string]Binding // key → removed binding
}

// HandleRegister processes a REGISTER (RFC 3261 §10.3): authenticate, then
// add, refresh or remove the user's bindings, and answer 200 listing the
// user's current contacts. Bad input gets a 4xx and never changes a
// binding.
func (r *Registrar) HandleRegister(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("registrar: panic in HandleRegister", "panic", p, "source", req.Source())
			r.respond(req, tx, newResponse(req, 500, "Server Internal Error"))
		}
	}()
	if req.Method != sipmsg.REGISTER {
		r.respond(req, tx, newResponse(req, 405, "Method Not Allowed"))
		return
	}
	to, from, callID, cseq := req.To(), req.From(), req.CallID(), req.CSeq()
	if to == nil || from == nil || callID == nil || cseq == nil || string(*callID) == "" {
		r.respond(req, tx, newResponse(req, 400, "Missing Mandatory Header"))
		return
	}
	if cseq.MethodName != sipmsg.REGISTER {
		r.respond(req, tx, newResponse(req, 400, "CSeq Method Mismatch"))
		return
	}
	if unsupported := requiredExtensions(req); len(unsupported) > 0 {
		res := newResponse(req, 420, "Bad Extension")
		res.AppendHeader(sipmsg.NewHeader("Unsupported", strings.Join(unsupported, ", ")))
		r.respond(req, tx, res)
		return
	}
	aor := to.Address.User
	if aor == "" {
		r.respond(req, tx, newResponse(req, 404, "Not Found"))
		return
	}

	auth := r.verify(req, "Authorization")
	switch auth.status {
	case authOK:
	case authMalformed:
		r.log.Info("registrar: malformed credentials", "source", req.Source(), "err", auth.reason)
		r.respond(req, tx, newResponse(req, 400, "Malformed Authorization"))
		return
	default:
		if auth.status != authNone {
			r.log.Info("registrar: authentication failed", "user", auth.user, "aor", aor,
				"source", req.Source(), "result", auth.status.String(), "reason", auth.reason)
		}
		r.respond(req, tx, r.challenge(req, false, auth.status == authStale, auth.realm))
		return
	}
	if auth.user != aor {
		r.log.Info("registrar: user may not register this AOR", "user", auth.user, "aor", aor, "source", req.Source())
		r.respond(req, tx, newResponse(req, 403, "Forbidden"))
		return
	}

	src, _ := netip.ParseAddrPort(req.Source())
	if src.IsValid() {
		// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; keep the
		// plain IPv4 form for listings and for dialing back.
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	meta := Binding{
		User:      aor,
		Realm:     auth.realm,
		CallID:    string(*callID),
		CSeq:      cseq.SeqNo,
		Source:    src,
		Transport: strings.ToLower(req.Transport()),
		Profile:   r.cfg.Profile,
	}
	if ua := req.GetHeader("User-Agent"); ua != nil {
		meta.UserAgent = ua.Value()
	}

	r.writeMu.Lock()
	p, rej := r.plan(req, meta)
	if rej == nil {
		rej = r.commit(p)
	}
	r.writeMu.Unlock()
	if rej != nil {
		res := newResponse(req, rej.code, rej.reason)
		for _, h := range rej.headers {
			res.AppendHeader(h)
		}
		r.respond(req, tx, res)
		return
	}
	now := r.now()
	for _, b := range p.remove {
		if !b.Expires.After(now) {
			r.log.Info("registrar: binding expired", "user", b.User, "contact", b.Contact)
			r.notify(EventExpire, b)
			continue
		}
		r.log.Info("registrar: unregistered", "user", b.User, "contact", b.Contact, "source", req.Source())
		r.notify(EventUnregister, b)
	}
	for k, b := range p.save {
		level, msg := slog.LevelInfo, "registrar: registered"
		if p.refresh[k] {
			// Phones refresh every few minutes; only new bindings are news.
			level, msg = slog.LevelDebug, "registrar: refreshed"
		}
		r.log.Log(context.Background(), level, msg, "user", b.User, "contact", b.Contact, "source", b.Source,
			"transport", b.Transport, "expires", b.Expires.Sub(b.Registered).Round(time.Second))
		r.notify(EventRegister, b)
	}
	r.respond(req, tx, r.okResponse(req, aor))
}

// requiredExtensions lists the option tags of Require: we support none.
//
// They are echoed in the 420's Unsupported header, so at most eight are
// kept, each cut to 32 characters of RFC 3261 token characters: a
// peer's header must not grow or shape our reply.
func requiredExtensions(req *sipmsg.Request) []string {
	var tags []string
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" && len(tags) < 8 {
				tags = append(tags, tokenOnly(t, 32))
			}
		}
	}
	return tags
}

// tokenOnly keeps the RFC 3261 token characters of s, at most max of them
// ("?" when none are left).
func tokenOnly(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "?"
	}
	return string(b)
}

// parseExpires parses a delta-seconds value; overlong values saturate
// (RFC 3261 §25: delta-seconds may exceed 2^32-1).
func parseExpires(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 20 {
		if len(s) > 20 && strings.Trim(s, "0123456789") == "" {
			return time.Duration(math.MaxInt64), true
		}
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return time.Duration(math.MaxInt64), true
		}
		return 0, false
	}
	if n > uint64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(n) * time.Second, true
}

// plan works out the binding changes of req without applying them. The
// caller holds writeMu.
func (r *Registrar) plan(req *sipmsg.Request, meta Binding) (*plan, *rejection) {
	now := r.now()
	p := &plan{user: meta.User, save: map[string]Binding{}, remove: map[string]Binding{}, refresh: map[string]bool{}}

	headerExpires := r.cfg.DefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		d, ok := parseExpires(h.Value())
		if !ok {
			return nil, &rejection{code: 400, reason: "Bad Expires"}
		}
		headerExpires = d
	}

	var contacts []*sipmsg.ContactHeader
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sipmsg.ContactHeader)
		if !ok {
			return nil, &rejection{code: 400, reason: "Bad Contact"}
		}
		contacts = append(contacts, c)
	}

	// Expired bindings the sweeper has not reached yet count as absent (no
	// CSeq check against them) and are removed with this change.
	r.mu.RLock()
	current := make(map[string]Binding, len(r.bindings[meta.User]))
	for k, b := range r.bindings[meta.User] {
		if b.Expires.After(now) {
			current[k] = b
		} else {
			p.remove[k] = b
		}
	}
	r.mu.RUnlock()

	// A CSeq at or below the stored one with the same Call-ID is a stale or
	// reordered request: RFC 3261 §10.3 step 7 says abort.
	outOfOrder := func(b Binding) bool { return b.CallID == meta.CallID && meta.CSeq <= b.CSeq }

	if len(contacts) == 0 {
		return p, nil // query: answer with the current bindings
	}
	for _, c := range contacts {
		if c.Address.Wildcard {
			if len(contacts) != 1 || req.GetHeader("Expires") == nil || headerExpires != 0 {
				return nil, &rejection{code: 400, reason: "Invalid Wildcard Contact"}
			}
			for k, b := range current {
				if outOfOrder(b) {
					return nil, &rejection{code: 400, reason: "Out Of Order CSeq"}
				}
				p.remove[k] = b
			}
			return p, nil
		}
	}

	inRequest := map[string]bool{}
	for _, c := range contacts {
		scheme := strings.ToLower(c.Address.Scheme)
		if (scheme != "sip" && scheme != "sips") || c.Address.Host == "" {
			return nil, &rejection{code: 400, reason: "Bad Contact URI"}
		}
		exp := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			d, ok := parseExpires(v)
			if !ok {
				return nil, &rejection{code: 400, reason: "Bad Contact Expires"}
			}
			exp = d
		}
		if exp != 0 && exp < r.cfg.MinExpires {
			return nil, &rejection{code: 423, reason: "Interval Too Brief", headers: []sipmsg.Header{
				sipmsg.NewHeader("Min-Expires", strconv.Itoa(int(r.cfg.MinExpires/time.Second))),
			}}
		}
		if exp > r.cfg.MaxExpires {
			exp = r.cfg.MaxExpires
		}
		key := contactKey(&c.Address)
		inRequest[key] = true
		old, exists := current[key]
		if exists && outOfOrder(old) {
			return nil, &rejection{code: 400, reason: "Out Of Order CSeq"}
		}
		if exp == 0 {
			delete(p.save, key)
			if exists {
				p.remove[key] = old
			}
			continue
		}
		b := meta
		b.Contact = c.Address.String()
		b.Registered = now
		b.Expires = now.Add(exp)
		p.save[key] = b
		p.refresh[key] = exists
		delete(p.remove, key)
	}
	if len(p.save) > r.cfg.MaxContacts {
		return nil, &rejection{code: 403, reason: "Too Many Contacts"}
	}
	for k, b := range current {
		if !inRequest[k] && b.CallID == meta.CallID && b.CSeq < meta.CSeq && len(p.save) > 0 {
			// Same Call-ID, new contact: the phone moved (new NAT mapping or
			// IP) and the old contact is dead. Replace it as sofia does,
			// rather than forking calls to it until it expires.
			p.remove[k] = b
		}
	}
	// Enforce MaxContacts by dropping the least recently refreshed others.
	type keyed struct {
		key string
		b   Binding
	}
	var others []keyed
	for k, b := range current {
		_, gone := p.remove[k]
		_, refreshed := p.save[k]
		if !gone && !refreshed {
			others = append(others, keyed{k, b})
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].b.Registered.Before(others[j].b.Registered) })
	for i := 0; len(others)-i+len(p.save) > r.cfg.MaxContacts; i++ {
		p.remove[others[i].key] = others[i].b
	}
	return p, nil
}

// commit persists p and then applies it to memory. The caller holds
// writeMu. A store failure changes nothing and answers 500.
func (r *Registrar) commit(p *plan) *rejection {
	if len(p.save) == 0 && len(p.remove) == 0 {
		return nil
	}
	if r.st != nil {
		var save []store.Registration
		var del []store.RegistrationKey
		for k := range p.remove {
			del = append(del, store.RegistrationKey{User: p.user, Key: k})
		}
		for k, b := range p.save {
			save = append(save, store.Registration{
				User: b.User, Key: k, Realm: b.Realm, Contact: b.Contact, CallID: b.CallID, CSeq: b.CSeq,
				Expires: b.Expires, Registered: b.Registered, Source: sourceString(b.Source),
				Transport: b.Transport, UserAgent: b.UserAgent, Profile: b.Profile,
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := r.st.ApplyRegistrations(ctx, save, del)
		cancel()
		if err != nil {
			r.log.Error("registrar: persist bindings", "user", p.user, "err", err)
			return &rejection{code: 500, reason: "Server Internal Error"}
		}
	}
	r.mu.Lock()
	m := r.bindings[p.user]
	if m == nil {
		m = make(map[string]Binding)
		r.bindings[p.user] = m
	}
	for k := range p.remove {
		delete(m, k)
	}
	for k, b := range p.save {
		m[k] = b
	}
	if len(m) == 0 {
		delete(r.bindings, p.user)
	}
	r.mu.Unlock()
	return nil
}

func sourceString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// okResponse is the 200 listing every current contact of aor with its
// remaining lifetime (RFC 3261 §10.3 step 8).
func (r *Registrar) okResponse(req *sipmsg.Request, aor string) *sipmsg.Response {
	now := r.now()
	res := newResponse(req, 200, "OK")
	for _, b := range r.Lookup(aor) {
		secs := int64((b.Expires.Sub(now) + time.Second - 1) / time.Second)
		res.AppendHeader(sipmsg.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.FormatInt(secs, 10)))
	}
	res.AppendHeader(dateHeader(now))
	return res
}
