package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/icholy/digest"

	"ccpbx/call"
	"ccpbx/registrar"
)

// userEndpoint serves "user/<id>[@domain]": every registered contact of the
// user, rung in parallel.
type userEndpoint struct{ s *Stack }

// sofiaEndpoint serves "sofia/<profile>/<sip uri>".
type sofiaEndpoint struct{ s *Stack }

func (e userEndpoint) Dial(ctx context.Context, target string, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	s := e.s
	user, domain, err := parseUserTarget(target)
	if err != nil {
		return nil, call.InvalidNumberFormat
	}
	if s.reg == nil {
		return nil, call.UserNotRegistered
	}
	if _, ok := s.reg.User(user); !ok {
		return nil, call.SubscriberAbsent
	}
	bindings := s.reg.Lookup(user)
	if len(bindings) == 0 {
		return nil, call.UserNotRegistered
	}
	if vars == nil {
		vars = map[string]string{}
	}
	vars = cloneVars(vars)
	vars["dialed_user"] = user
	if v := s.userSecureMedia(user); v != "" && vars[varSecureMedia] == "" {
		vars[varSecureMedia] = v // the user's own policy, unless the dial string set one
	}
	if domain != "" {
		vars["dialed_domain"] = domain
	}
	// Every contact rings at once in call's dial group: the first to answer
	// wins, the others are cancelled with LOSE_RACE, as FreeSWITCH does for
	// a user with several registrations.
	dials := make([]func(context.Context) (*call.Channel, error), len(bindings))
	for i, b := range bindings {
		// Each racer adds its own SIP variables to a map of its own; a
		// lone contact has the copy made above.
		bv := vars
		if len(bindings) > 1 {
			bv = cloneVars(vars)
		}
		dials[i] = func(ctx context.Context) (*call.Channel, error) {
			return s.dialBinding(ctx, user, b, bv, o)
		}
	}
	return call.Race(ctx, dials)
}

func (s *Stack) dialBinding(ctx context.Context, user string, b registrar.Binding, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	var ruri sipmsg.Uri
	if err := sipmsg.ParseUri(b.Contact, &ruri); err != nil || ruri.Host == "" {
		return nil, call.DestinationOutOfOrder
	}
	transport := strings.ToLower(b.Transport)
	if transport == "" {
		transport = "udp"
	}
	p := s.profileFor(b.Profile)
	if p == nil {
		return nil, call.NormalTemporaryFailure
	}
	if b.Path != "" {
		// Registered through a proxy: along its Path (path.go).
		route, dest, tp, ok := pathRoute(b.Path, transport)
		if !ok {
			return nil, call.DestinationOutOfOrder
		}
		return s.dial(ctx, p, ruri, user, dest, tp, route, vars, o)
	}
	// The Contact or the REGISTER's source (target.go).
	rt := routeBinding(b, p.cfg.RegisterTarget)
	if rt.dest == "" {
		return nil, call.DestinationOutOfOrder
	}
	if !rt.nat && transport == "tcp" {
		// A Contact we connect to ourselves: its transport, not the
		// REGISTER's connection.
		if t, ok := ruri.UriParams.Get("transport"); !ok || !strings.EqualFold(t, "tcp") {
			transport = "udp"
		}
	}
	return s.dial(ctx, p, ruri, user, rt.dest, transport, nil, vars, o)
}

func (e sofiaEndpoint) Dial(ctx context.Context, target string, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	name, uri, err := parseSofiaTarget(target)
	if err != nil {
		return nil, call.InvalidNumberFormat
	}
	p, ok := e.s.byName[name]
	if !ok || p.cli == nil {
		return nil, call.InvalidGateway
	}
	transport := "udp"
	if t, ok := uri.UriParams.Get("transport"); ok && strings.EqualFold(t, "tcp") {
		transport = "tcp"
	}
	if vars == nil {
		vars = map[string]string{}
	}
	// A sofia_contact of a NATed registration carries its source in
	// fs_path: send there, with a Request-URI without our parameters.
	if route, dest, tp, clean, ok := fsPathRoute(uri, transport); ok {
		return e.s.dial(ctx, p, clean, clean.User, dest, tp, route, cloneVars(vars), o)
	}
	if dest, clean, ok := fsPath(uri); ok {
		return e.s.dial(ctx, p, clean, clean.User, dest.String(), transport, nil, cloneVars(vars), o)
	}
	port := uri.Port
	if port == 0 {
		port = 5060
	}
	// Only literal addresses: resolving names would let a dial string
	// stall the dialplan on DNS.
	ip, err := netip.ParseAddr(uri.Host)
	if err != nil {
		return nil, call.InvalidNumberFormat
	}
	return e.s.dial(ctx, p, uri, uri.User, netip.AddrPortFrom(ip, uint16(port)).String(), transport, nil, cloneVars(vars), o)
}

func cloneVars(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+8)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// callerID picks the caller ID of an outbound leg as FreeSWITCH does:
// origination_caller_id_*, then the A leg's effective and plain caller ID.
func callerID(vars map[string]string, caller *call.Channel) (number, name string) {
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := vars[k]; v != "" {
				return v
			}
			if caller != nil {
				if v := caller.Var(k); v != "" {
					return v
				}
			}
		}
		return ""
	}
	number = sanitizeNumber(pick("origination_caller_id_number", "effective_caller_id_number", "caller_id_number"))
	name = sanitizeName(pick("origination_caller_id_name", "effective_caller_id_name", "caller_id_name"))
	if number == "" {
		number = "0000000000"
	}
	if name == "" {
		name = number
	}
	return number, name
}

// dial places one outbound INVITE and runs our own response loop: any
// number of provisionals (sipgo's WaitAnswer gives up after 10), digest
// retry, and a CANCEL that waits for a provisional, carried on in the
// background so a losing leg never delays the winner. route is the
// INVITE's Route set (a binding's Path), nil for none.
func (s *Stack) dial(ctx context.Context, p *profile, ruri sipmsg.Uri, toUser, dest, transport string, route []sipmsg.Uri, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	if s.isClosed() {
		return nil, call.SystemShutdown
	}
	if o == nil {
		o = &call.OriginateOptions{}
	}
	ml, err := s.media.NewLeg(p.advIP)
	if err != nil {
		p.log.Error("no media port", "err", err)
		return nil, call.RequestedChanUnavail
	}
	ml.SetSecureMedia(p.securePolicy(vars))
	pref := ""
	if o.Caller != nil {
		if m := o.Caller.Media(); m != nil {
			pref = m.Codec()
		}
	}
	var offer []byte
	if pref != "" {
		offer = ml.OfferPreferring(pref)
	} else {
		offer = ml.Offer()
	}
	number, name := callerID(vars, o.Caller)

	l := &uacLeg{leg: leg{s: s, p: p, ml: ml, lm: newLegMedia(ml)}}
	callID := uuid.NewString()
	localTag := sipmsg.GenerateTagN(16)
	d := &dialog{
		p: p, callID: callID, localTag: localTag,
		local:     sipmsg.Uri{Scheme: "sip", User: number, Host: p.advIP.String()},
		localName: name,
		remote:    sipmsg.Uri{Scheme: "sip", User: ruri.User, Host: ruri.Host, Port: ruri.Port},
		// Until the 2xx names the peer's Contact, requests go to the R-URI.
		remoteTarget: *ruri.Clone(),
		routeSet:     route,
		dest:         dest,
		transport:    transport,
		leg:          l,
		localSeq:     uint32(time.Now().UnixNano()&0x7fff) + 1,
	}
	l.dlg = d
	inv := d.buildRequest(sipmsg.INVITE, d.localSeq)
	inv.AppendHeader(sipmsg.NewHeader("Allow", allowMethods))
	ct := sipmsg.ContentTypeHeader("application/sdp")
	inv.AppendHeader(&ct)
	extra := extraHeaders(vars)
	for _, h := range extra {
		inv.AppendHeader(h)
	}
	inv.SetBody(offer)
	if transport == "udp" && len(inv.String()) > maxUDPMessage {
		for _, h := range extra {
			inv.RemoveHeader(h.Name())
		}
		if len(inv.String()) > maxUDPMessage {
			ml.Close()
			return nil, call.NormalTemporaryFailure
		}
	}

	chVars := vars
	chVars["sofia_profile_name"] = p.name
	chVars["sip_call_id"] = callID
	chVars["destination_number"] = toUser
	chVars["caller_id_number"] = number
	chVars["caller_id_name"] = name
	chVars["callee_id_number"] = toUser
	chVars["sip_to_user"] = toUser
	chVars["sip_from_user"] = number
	if ap, err := netip.ParseAddrPort(dest); err == nil {
		chVars["network_addr"] = ap.Addr().String()
		chVars["network_port"] = strconv.Itoa(int(ap.Port()))
	}
	if o.Caller != nil {
		chVars["originator"] = o.Caller.UUID()
	}
	ch := s.core.NewChannel(call.ChannelSpec{
		Name:       "sofia/" + p.name + "/" + toUser + "@" + dest,
		Direction:  call.Outbound,
		Vars:       chVars,
		Signalling: l,
		Media:      l.lm,
		Log:        p.log.With("call_id", callID),
	})
	l.ch = ch
	l.log = ch.Log()
	loopCtx, cancelLoop := context.WithCancelCause(ctx)
	defer cancelLoop(nil)
	l.mu.Lock()
	l.cancelDial = cancelLoop
	l.mu.Unlock()
	l.watch(ch)
	if o.OnLeg != nil {
		o.OnLeg(ch)
	}
	return l.runInvite(loopCtx, inv, vars, o)
}

// extraHeaders turns sip_h_X-Foo=bar variables into X-Foo: bar headers,
// sanitized like caller ID (they may carry data from a trunk).
func extraHeaders(vars map[string]string) []sipmsg.Header {
	var keys []string
	for k := range vars {
		if strings.HasPrefix(k, "sip_h_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []sipmsg.Header
	for _, k := range keys {
		name := k[len("sip_h_"):]
		if !validHeaderName(name) {
			continue
		}
		v := sanitizeName(vars[k])
		if len(v) > 128 {
			v = v[:128]
		}
		out = append(out, sipmsg.NewHeader(name, v))
	}
	return out
}

func validHeaderName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// authorize answers a 401/407 challenge to our INVITE with credentials
// (for trunks that authenticate us; phones never challenge).
func authorize(inv *sipmsg.Request, res *sipmsg.Response, user, pass string) (*sipmsg.Request, error) {
	hdr, out := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		hdr, out = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(hdr)
	if h == nil {
		return nil, errors.New("challenge without " + hdr)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, fmt.Errorf("parse challenge: %w", err)
	}
	cred, err := digest.Digest(chal, digest.Options{
		Method: "INVITE", URI: inv.Recipient.Addr(), Username: user, Password: pass,
	})
	if err != nil {
		return nil, fmt.Errorf("digest: %w", err)
	}
	next := inv.Clone()
	next.RemoveHeader("Via")
	next.PrependHeader(viaLike(inv.Via()))
	next.RemoveHeader(out)
	next.AppendHeader(sipmsg.NewHeader(out, cred.String()))
	next.CSeq().SeqNo++
	next.Laddr = inv.Laddr
	return next, nil
}

func viaLike(v *sipmsg.ViaHeader) *sipmsg.ViaHeader {
	n := v.Clone()
	n.Params.Add("branch", sipmsg.GenerateBranchN(16))
	return n
}

// uriHostPort is where a SIP URI points: its host and port (5060 when
// unset); "" unless the host is a literal address, since resolving names
// could stall a call on DNS.
func uriHostPort(u sipmsg.Uri) string {
	ip, err := netip.ParseAddr(u.Host)
	if err != nil {
		return ""
	}
	port := u.Port
	if port <= 0 || port > 65535 {
		port = 5060
	}
	return netip.AddrPortFrom(ip, uint16(port)).String()
}
