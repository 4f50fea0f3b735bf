package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
	"ccpbx/registrar"
)

// Caps on caller-ID values copied from one leg into another leg's headers:
// long enough for any real number or name, short enough that a hostile
// trunk cannot push an agent INVITE over the UDP size limit.
const (
	maxCallerNumber = 32
	maxCallerName   = 48
	maxUserLen      = 64
)

var errBadTarget = errors.New("bad dial target")

// sanitizeNumber keeps only characters that are safe unescaped in the user
// part of a SIP URI and meaningful in a phone number, so a caller ID from a
// trunk can never inject headers (CR/LF/NUL) or break the From URI.
func sanitizeNumber(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxCallerNumber; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '+' || c == '*' || c == '#' || c == '.' || c == '-' || c == '_':
		default:
			continue
		}
		if c == '#' {
			b.WriteString("%23")
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sanitizeName makes a display name safe inside a quoted string: no control
// characters (CR, LF, NUL …), no quote or backslash, valid UTF-8, capped.
func sanitizeName(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "") {
		if n >= maxCallerName {
			break
		}
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == 0xfffd {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// parseUserTarget parses the part after "user/": "1001" or "1001@domain".
func parseUserTarget(target string) (user, domain string, err error) {
	user, domain, _ = strings.Cut(strings.TrimSpace(target), "@")
	if user == "" || len(user) > maxUserLen {
		return "", "", fmt.Errorf("%w: user/%q", errBadTarget, target)
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("\"<>;:/?@%\\", c) >= 0 {
			return "", "", fmt.Errorf("%w: user/%q", errBadTarget, target)
		}
	}
	return user, domain, nil
}

// parseSofiaTarget parses the part after "sofia/": "<profile>/<sip uri>",
// where the URI may omit its "sip:" scheme as FreeSWITCH allows.
func parseSofiaTarget(target string) (profile string, uri sipmsg.Uri, err error) {
	profile, rest, ok := strings.Cut(strings.TrimSpace(target), "/")
	if !ok || profile == "" || rest == "" {
		return "", uri, fmt.Errorf("%w: sofia/%q", errBadTarget, target)
	}
	if strings.ContainsAny(rest, "\r\n\x00 <>\"") {
		return "", uri, fmt.Errorf("%w: sofia/%q", errBadTarget, target)
	}
	low := strings.ToLower(rest)
	if !strings.HasPrefix(low, "sip:") && !strings.HasPrefix(low, "sips:") {
		rest = "sip:" + rest
	}
	if err := sipmsg.ParseUri(rest, &uri); err != nil {
		return "", uri, fmt.Errorf("%w: sofia/%q: %w", errBadTarget, target, err)
	}
	if uri.Host == "" || uri.Port < 0 || uri.Port > 65535 {
		return "", uri, fmt.Errorf("%w: sofia/%q: no host", errBadTarget, target)
	}
	return profile, uri, nil
}

// Where requests to a registered phone go (README "Registration target"),
// by FreeSWITCH's NAT rules: to the Contact the phone registered, unless
// NAT is detected, then to the address the REGISTER came from. NAT is
// detected when the Contact's host is not an IP literal (we do not resolve
// names on the call path), when the REGISTER came over TCP (the phone's
// connection is the way back in), or when the Contact's IP is private or
// unroutable and not the IP the REGISTER came from. A profile's
// register_target forces the source ("source", FreeSWITCH's
// NDLB-force-rport for registrations) or the Contact ("contact").
//
// A public Contact on another port or host than the source is therefore
// used as it is: third-party registration, and phones that register from
// an ephemeral port but listen on 5060.

// regRoute is where a request to one binding goes.
type regRoute struct {
	dest string // host:port to send to
	nat  bool   // dest is the REGISTER's source, not the Contact
}

// routeBinding decides where requests to b go under mode (a profile's
// register_target; "" is "auto").
func routeBinding(b registrar.Binding, mode string) regRoute {
	contact := contactAddr(b.Contact)
	source := b.Source
	if source.IsValid() {
		source = netip.AddrPortFrom(source.Addr().Unmap(), source.Port())
	}
	toSource := func() regRoute { return regRoute{dest: source.String(), nat: true} }
	toContact := func() regRoute { return regRoute{dest: contact.String()} }
	switch {
	case !source.IsValid() && !contact.IsValid():
		return regRoute{}
	case !source.IsValid():
		return toContact()
	case !contact.IsValid():
		return toSource() // no IP literal to send to
	}
	switch mode {
	case config.RegisterTargetSource:
		return toSource()
	case config.RegisterTargetContact:
		return toContact()
	}
	if strings.EqualFold(b.Transport, "tcp") || strings.EqualFold(b.Transport, "tls") {
		return toSource()
	}
	if unroutable(contact.Addr()) && contact.Addr() != source.Addr() {
		return toSource()
	}
	return toContact()
}

// contactAddr is the IP and port a Contact URI names (5060 when it names
// no port), or the zero AddrPort when its host is not an IP literal.
func contactAddr(contact string) netip.AddrPort {
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(contactURIOf(contact), &u); err != nil {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return netip.AddrPort{}
	}
	port := u.Port
	if port <= 0 || port > 65535 {
		port = 5060
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}

// contactURIOf reduces a Contact value to its URI: `"Bob" <sip:1001@h;ob>;
// expires=60` gives "sip:1001@h;ob", a bare URI is returned as it is.
func contactURIOf(c string) string {
	c = strings.TrimSpace(c)
	if i := strings.IndexByte(c, '<'); i >= 0 {
		rest := c[i+1:]
		if j := strings.IndexByte(rest, '>'); j >= 0 {
			return rest[:j]
		}
		return rest
	}
	return c
}

// unroutable reports whether a is an address a phone can only be reached
// at from its own network: RFC 1918 and RFC 4193 private ranges, shared
// address space (RFC 6598, carrier-grade NAT), link-local, unspecified.
// FreeSWITCH's nat.auto list is the private ranges; loopback is not in
// it, and neither is it here: a phone on this host is reachable there.
func unroutable(a netip.Addr) bool {
	return a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// natContact marks a binding's Contact as FreeSWITCH marks a NATed
// registration in `show registrations` and sofia_contact:
// ";fs_nat=yes;fs_path=" and the URL-encoded
// "sip:user@source-ip:source-port" plus the Contact's URI parameters.
func natContact(b registrar.Binding) string {
	uri := contactURIOf(b.Contact)
	params := ""
	if i := strings.IndexByte(uri, ';'); i >= 0 {
		params = uri[i:]
	}
	user := ""
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(uri, &u); err == nil && u.User != "" {
		user = u.User + "@"
	}
	src := netip.AddrPortFrom(b.Source.Addr().Unmap(), b.Source.Port())
	return uri + ";fs_nat=yes;fs_path=" + urlEncode("sip:"+user+src.String()+params)
}

// urlEncode escapes s as FreeSWITCH's switch_url_encode does for fs_path:
// everything but letters, digits and -_.!~*'() becomes %XX.
func urlEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// fsPath reads the fs_path parameter of a URI from sofia_contact (the
// source address of a NATed registration) and returns that address and
// the URI without fs_nat and fs_path, which are for us, not the phone.
func fsPath(uri sipmsg.Uri) (dest netip.AddrPort, clean sipmsg.Uri, ok bool) {
	clean = *uri.Clone()
	if clean.UriParams == nil {
		return dest, clean, false
	}
	raw, has := clean.UriParams.Get("fs_path")
	clean.UriParams.Remove("fs_path")
	clean.UriParams.Remove("fs_nat")
	if !has {
		return dest, clean, false
	}
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return dest, clean, false
	}
	var pu sipmsg.Uri
	if err := sipmsg.ParseUri(strings.Trim(dec, "<>"), &pu); err != nil {
		return dest, clean, false
	}
	ip, err := netip.ParseAddr(strings.Trim(pu.Host, "[]"))
	if err != nil {
		return dest, clean, false
	}
	port := pu.Port
	if port <= 0 || port > 65535 {
		port = 5060
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), clean, true
}

// RegistrationView is the registrar's bindings as `show registrations`
// and sofia_contact list them: a binding whose requests go to the
// REGISTER's source shows FreeSWITCH's NAT marks on its Contact
// (natContact), so the listing says which address is used without a
// column FreeSWITCH does not have.
type RegistrationView struct{ s *Stack }

// Registrations is the view of the stack's registrar.
func (s *Stack) Registrations() RegistrationView { return RegistrationView{s} }

// Bindings returns every unexpired binding, newest first, marked.
func (v RegistrationView) Bindings() []registrar.Binding {
	if v.s == nil || v.s.reg == nil {
		return nil
	}
	bs := v.s.reg.Bindings()
	for i := range bs {
		mode := ""
		if p := v.s.profileFor(bs[i].Profile); p != nil {
			mode = p.cfg.RegisterTarget
		}
		switch {
		case bs[i].Path != "":
			// FreeSWITCH marks a Path before NAT: the Path is the way back.
			bs[i].Contact = pathContact(bs[i])
		case routeBinding(bs[i], mode).nat:
			bs[i].Contact = natContact(bs[i])
		}
	}
	return bs
}
