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

	"ccpbx/store"
)

// Contact is one Contact of a REGISTER, as the sip package parsed it.
type Contact struct {
	// Wildcard is the "*" of an unregister-all.
	Wildcard bool
	// URI is the Contact URI as registered, e.g.
	// "sip:1001@192.168.150.1:55232;ob".
	URI string
	// Scheme, User, Host, Port and Transport (the transport URI
	// parameter, "" when absent) identify the contact across refreshes.
	Scheme, User, Host string
	Port               int
	Transport          string
	// Expires is the contact's expires parameter; HasExpires says it was
	// present.
	Expires    string
	HasExpires bool
}

// Registration is one authenticated REGISTER (RFC 3261 §10.3) to apply.
type Registration struct {
	// User is the authenticated user, the address of record.
	User  string
	Realm string
	// CallID and CSeq order requests of one phone (§10.3 step 7).
	CallID string
	CSeq   uint32
	// Source is the observed source address of the request (NAT), and
	// Transport ("udp", "tcp") how it arrived.
	Source    netip.AddrPort
	Transport string
	UserAgent string
	// Expires is the Expires header; HasExpires says it was present.
	Expires    string
	HasExpires bool
	Contacts   []Contact
	// Path is the request's Path (RFC 3327), as the sip package checked
	// and joined it ("" without one); at most MaxPathLen bytes.
	Path string
}

// MaxPathLen bounds a binding's Path: room for a few proxies' URIs with
// their received parameters, not for a header a client inflates.
const MaxPathLen = 1024

// Result is the answer to a Registration: 200 with the user's current
// contacts, or the failure to send instead.
type Result struct {
	Code   int
	Reason string
	// MinExpires is set with 423 Interval Too Brief.
	MinExpires time.Duration
	// Contacts are the user's bindings after a 200, each with its
	// remaining lifetime in whole seconds (rounded up).
	Contacts []ContactExpiry
	// Date is the registrar's clock at the answer (RFC 3261 §20.17's Date,
	// which phones without NTP use).
	Date time.Time
}

// ContactExpiry is one Contact of a 200 to a REGISTER.
type ContactExpiry struct {
	URI     string
	Seconds int64
}

// rejection is a final non-2xx answer decided while planning a REGISTER.
func rejection(code int, reason string) *Result { return &Result{Code: code, Reason: reason} }

// plan is the set of binding changes one REGISTER makes.
type plan struct {
	user string
	save map[string]Binding // key → new binding
	// refresh marks saved keys that were already bound (log at debug).
	refresh map[string]bool
	remove  map[string]Binding // key → removed binding
}

// Register applies an authenticated REGISTER (RFC 3261 §10.3): add,
// refresh or remove the user's bindings, and answer 200 listing the user's
// current contacts. Bad input gets a 4xx and never changes a binding.
// Authentication (Verify), the check that the credentials' user may
// register this address of record, and the SIP messages are the sip
// package's.
func (r *Registrar) Register(reg Registration) Result {
	src := reg.Source
	if src.IsValid() {
		// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; keep the
		// plain IPv4 form for listings and for dialing back.
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	meta := Binding{
		User:      reg.User,
		Realm:     reg.Realm,
		CallID:    reg.CallID,
		CSeq:      reg.CSeq,
		Source:    src,
		Transport: strings.ToLower(reg.Transport),
		UserAgent: reg.UserAgent,
		Profile:   r.cfg.Profile,
		Path:      reg.Path,
	}
	if len(meta.Path) > MaxPathLen {
		return *rejection(400, "Path Too Long")
	}

	r.writeMu.Lock()
	p, rej := r.plan(reg, meta)
	if rej == nil {
		rej = r.commit(p)
	}
	r.writeMu.Unlock()
	if rej != nil {
		return *rej
	}
	now := r.now()
	for _, b := range p.remove {
		if !b.Expires.After(now) {
			r.log.Info("registrar: binding expired", "user", b.User, "contact", b.Contact)
			r.notify(EventExpire, b)
			continue
		}
		r.log.Info("registrar: unregistered", "user", b.User, "contact", b.Contact, "source", reg.Source)
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
	return r.okResult(reg.User)
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
func (r *Registrar) plan(reg Registration, meta Binding) (*plan, *Result) {
	now := r.now()
	p := &plan{user: meta.User, save: map[string]Binding{}, remove: map[string]Binding{}, refresh: map[string]bool{}}

	headerExpires := r.cfg.DefaultExpires
	if reg.HasExpires {
		d, ok := parseExpires(reg.Expires)
		if !ok {
			return nil, rejection(400, "Bad Expires")
		}
		headerExpires = d
	}
	contacts := reg.Contacts

	// Expired bindings the sweeper has not reached yet count as absent (no
	// CSeq check against them) and are removed with this change. The
	// caller holds writeMu, and only holders of writeMu change the map, so
	// it is read in place, without mu and without a copy.
	userBindings := r.bindings[meta.User]
	live := func(b Binding) bool { return b.Expires.After(now) }
	for k, b := range userBindings {
		if !live(b) {
			p.remove[k] = b
		}
	}

	// A CSeq at or below the stored one with the same Call-ID is a stale or
	// reordered request: RFC 3261 §10.3 step 7 says abort.
	outOfOrder := func(b Binding) bool { return b.CallID == meta.CallID && meta.CSeq <= b.CSeq }

	if len(contacts) == 0 {
		return p, nil // query: answer with the current bindings
	}
	for _, c := range contacts {
		if c.Wildcard {
			if len(contacts) != 1 || !reg.HasExpires || headerExpires != 0 {
				return nil, rejection(400, "Invalid Wildcard Contact")
			}
			for k, b := range userBindings {
				if !live(b) {
					continue
				}
				if outOfOrder(b) {
					return nil, rejection(400, "Out Of Order CSeq")
				}
				p.remove[k] = b
			}
			return p, nil
		}
	}

	inRequest := map[string]bool{}
	for _, c := range contacts {
		scheme := strings.ToLower(c.Scheme)
		if (scheme != "sip" && scheme != "sips") || c.Host == "" {
			return nil, rejection(400, "Bad Contact URI")
		}
		exp := headerExpires
		if c.HasExpires {
			d, ok := parseExpires(c.Expires)
			if !ok {
				return nil, rejection(400, "Bad Contact Expires")
			}
			exp = d
		}
		if exp != 0 && exp < r.cfg.MinExpires {
			return nil, &Result{Code: 423, Reason: "Interval Too Brief", MinExpires: r.cfg.MinExpires}
		}
		if exp > r.cfg.MaxExpires {
			exp = r.cfg.MaxExpires
		}
		key := contactKey(c)
		inRequest[key] = true
		old, exists := userBindings[key]
		exists = exists && live(old)
		if exists && outOfOrder(old) {
			return nil, rejection(400, "Out Of Order CSeq")
		}
		if exp == 0 {
			delete(p.save, key)
			if exists {
				p.remove[key] = old
			}
			continue
		}
		b := meta
		b.Contact = c.URI
		b.Registered = now
		b.Expires = now.Add(exp)
		p.save[key] = b
		p.refresh[key] = exists
		delete(p.remove, key)
	}
	if len(p.save) > r.cfg.MaxContacts {
		return nil, rejection(403, "Too Many Contacts")
	}
	for k, b := range userBindings {
		if live(b) && !inRequest[k] && b.CallID == meta.CallID && b.CSeq < meta.CSeq && len(p.save) > 0 {
			// Same Call-ID, new contact: the phone moved (new NAT mapping or
			// IP) and the old contact is dead. Replace it as sofia does,
			// rather than forking calls to it until it expires.
			p.remove[k] = b
		}
	}
	// Enforce MaxContacts by dropping the least recently refreshed others
	// (expired ones are in remove already). Most REGISTERs are refreshes
	// well under the cap: count before sorting anything.
	kept := func(k string) bool {
		_, gone := p.remove[k]
		_, refreshed := p.save[k]
		return !gone && !refreshed
	}
	n := 0
	for k := range userBindings {
		if kept(k) {
			n++
		}
	}
	if n+len(p.save) <= r.cfg.MaxContacts {
		return p, nil
	}
	others := make([]string, 0, n)
	for k := range userBindings {
		if kept(k) {
			others = append(others, k)
		}
	}
	sort.Slice(others, func(i, j int) bool {
		return userBindings[others[i]].Registered.Before(userBindings[others[j]].Registered)
	})
	for i := 0; len(others)-i+len(p.save) > r.cfg.MaxContacts; i++ {
		p.remove[others[i]] = userBindings[others[i]]
	}
	return p, nil
}

// commit queues p for the store and then applies it to memory, which
// answers at once; the store is written behind (persist.go). The caller
// holds writeMu. A store so far behind that the queue stays full changes
// nothing and answers 500.
func (r *Registrar) commit(p *plan) *Result {
	if len(p.save) == 0 && len(p.remove) == 0 {
		return nil
	}
	if r.writes != nil {
		var save []store.Registration
		var del []store.RegistrationKey
		for k := range p.remove {
			del = append(del, store.RegistrationKey{User: p.user, Key: k})
		}
		for k, b := range p.save {
			save = append(save, store.Registration{
				User: b.User, Key: k, Realm: b.Realm, Contact: b.Contact, CallID: b.CallID, CSeq: b.CSeq,
				Expires: b.Expires, Registered: b.Registered, Source: sourceString(b.Source),
				Transport: b.Transport, UserAgent: b.UserAgent, Profile: b.Profile, Path: b.Path,
			})
		}
		if err := r.writes.put(save, del); err != nil {
			r.log.Error("registrar: persist bindings", "user", p.user, "err", err)
			return rejection(500, "Server Internal Error")
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

// okResult is the 200 listing every current contact of user with its
// remaining lifetime (RFC 3261 §10.3 step 8).
func (r *Registrar) okResult(user string) Result {
	now := r.now()
	res := Result{Code: 200, Reason: "OK", Date: now}
	for _, b := range r.Lookup(user) {
		secs := int64((b.Expires.Sub(now) + time.Second - 1) / time.Second)
		res.Contacts = append(res.Contacts, ContactExpiry{URI: b.Contact, Seconds: secs})
	}
	return res
}
