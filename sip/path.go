package sip

import (
	"errors"
	"net/url"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/registrar"
)

// Path (RFC 3327). A phone that registers through a proxy (Kamailio's
// path module) reaches us with a Path header naming that proxy; the
// registrar keeps it with the binding, and requests to the binding carry
// it as their Route set and go to its first hop, so they reach the phone
// the way its REGISTER came, not around the proxy. The Contact is still
// the Request-URI.

// maxPathHops bounds the proxies one Path may name.
const maxPathHops = 8

var errBadPath = errors.New("bad Path")

// pathOf checks the Path headers of a REGISTER and joins them, in order,
// into the form the registrar stores: "<uri>, <uri>". No Path is "". Each
// entry must be a sip or sips URI with a host; at most maxPathHops entries
// and registrar.MaxPathLen bytes.
func pathOf(req *sipmsg.Request) (string, error) {
	var uris []string
	for _, h := range req.GetHeaders("Path") {
		for _, v := range splitHeaderList(h.Value()) {
			if len(uris) == maxPathHops {
				return "", errBadPath
			}
			u, err := parsePathEntry(v)
			if err != nil {
				return "", err
			}
			uris = append(uris, "<"+u.String()+">")
		}
	}
	out := strings.Join(uris, ", ")
	if len(out) > registrar.MaxPathLen {
		return "", errBadPath
	}
	return out, nil
}

// parsePathEntry parses one name-addr of a Path or Route list.
func parsePathEntry(v string) (sipmsg.Uri, error) {
	var u sipmsg.Uri
	v = strings.TrimSpace(v)
	if strings.ContainsAny(v, "\r\n\x00") {
		return u, errBadPath
	}
	if i := strings.IndexByte(v, '<'); i >= 0 {
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			return u, errBadPath
		}
		v = v[i+1 : i+j]
	}
	if err := sipmsg.ParseUri(v, &u); err != nil {
		return u, errBadPath
	}
	if s := strings.ToLower(u.Scheme); (s != "sip" && s != "sips") || u.Host == "" || u.Port < 0 || u.Port > 65535 {
		return u, errBadPath
	}
	return u, nil
}

// splitHeaderList splits a comma-separated header value at the commas
// outside <> and quotes.
func splitHeaderList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0:
			if s := strings.TrimSpace(v[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// pathRoute is where a request along a stored Path goes: the Route set
// (every Path URI, in order) and the first hop's address and transport.
// ok is false for an empty or unusable Path (a first hop that is not an
// IP literal: names are not resolved on the call path).
func pathRoute(path, transport string) (route []sipmsg.Uri, dest, tp string, ok bool) {
	for _, v := range splitHeaderList(path) {
		u, err := parsePathEntry(v)
		if err != nil {
			return nil, "", "", false
		}
		route = append(route, u)
	}
	if len(route) == 0 {
		return nil, "", "", false
	}
	first := route[0]
	dest = uriHostPort(sipmsg.Uri{Host: strings.Trim(first.Host, "[]"), Port: first.Port})
	if dest == "" {
		return nil, "", "", false
	}
	tp = strings.ToLower(transport)
	if first.UriParams != nil {
		if t, has := first.UriParams.Get("transport"); has {
			tp = strings.ToLower(t)
		}
	}
	if tp != "tcp" {
		tp = "udp"
	}
	return route, dest, tp, true
}

// pathContact marks a binding's Contact with its Path as FreeSWITCH
// does in `show registrations` and sofia_contact: ";fs_path=" and the
// URL-encoded Path header value. sofia/ dial strings given such a
// contact are routed along it (sofiaEndpoint).
func pathContact(b registrar.Binding) string {
	return contactURIOf(b.Contact) + ";fs_path=" + urlEncode(b.Path)
}

// fsPathRoute reads a sofia_contact whose fs_path holds a Path (its
// decoded value starts with "<", as pathContact writes it; a NATed
// registration's fs_path is a bare URI, for fsPath): the Route set, the
// first hop to send to, and the URI without our parameters.
func fsPathRoute(uri sipmsg.Uri, transport string) (route []sipmsg.Uri, dest, tp string, clean sipmsg.Uri, ok bool) {
	if uri.UriParams == nil {
		return nil, "", "", uri, false
	}
	raw, has := uri.UriParams.Get("fs_path")
	if !has {
		return nil, "", "", uri, false
	}
	dec, err := url.PathUnescape(raw)
	if err != nil || !strings.HasPrefix(strings.TrimSpace(dec), "<") || len(dec) > registrar.MaxPathLen {
		return nil, "", "", uri, false
	}
	route, dest, tp, ok = pathRoute(dec, transport)
	if !ok {
		return nil, "", "", uri, false
	}
	clean = *uri.Clone()
	clean.UriParams.Remove("fs_path")
	clean.UriParams.Remove("fs_nat")
	return route, dest, tp, clean, true
}

// supportsPath reports whether a REGISTER says its sender understands
// Path ("path" in Supported or Require): only then does the 200 echo the
// stored Path (RFC 3327 §5.3). The Path is stored either way, as
// Kamailio's registrar does with path_mode 0: phones rarely say so, and
// the proxy that added it is the one that needs it.
func supportsPath(req *sipmsg.Request) bool {
	for _, name := range []string{"Supported", "Require"} {
		for _, h := range req.GetHeaders(name) {
			for _, t := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(t), "path") {
					return true
				}
			}
		}
	}
	return false
}

// withoutPath drops "path" from unsupported Require tags: the registrar
// supports it.
func withoutPath(tags []string) []string {
	out := tags[:0]
	for _, t := range tags {
		if !strings.EqualFold(t, "path") {
			out = append(out, t)
		}
	}
	return out
}
