package registrar

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"time"

	"ccpbx/config"
)

// maxCredentialsLen caps the Authorization header we are willing to parse;
// a real one is a few hundred bytes.
const maxCredentialsLen = 4096

// Credentials is a parsed Digest Authorization / Proxy-Authorization value
// (RFC 7616 / RFC 8760). The parser is purely syntactic; verify decides
// whether the values are acceptable.
type Credentials struct {
	Username  string
	Realm     string
	Nonce     string
	URI       string
	Response  string
	Algorithm string // as sent; "" means MD5
	Cnonce    string
	Opaque    string
	QOP       string
	NC        string // 8 hex digits when QOP is set
	Userhash  bool
}

var errNotDigest = errors.New("not a Digest credential")

// ParseCredentials parses `Digest k=v, k="v", …`. It never panics; any
// syntax error, a duplicate parameter, a missing mandatory parameter or an
// oversized value is an error.
func ParseCredentials(s string) (Credentials, error) {
	var c Credentials
	if len(s) > maxCredentialsLen {
		return c, fmt.Errorf("credentials longer than %d bytes", maxCredentialsLen)
	}
	s = strings.TrimLeft(s, " \t")
	sp := strings.IndexAny(s, " \t")
	if sp < 0 || !strings.EqualFold(s[:sp], "Digest") {
		return c, errNotDigest
	}
	p := paramScanner{s: s[sp:]}
	seen := map[string]bool{}
	for {
		name, value, ok, err := p.next()
		if err != nil {
			return c, err
		}
		if !ok {
			break
		}
		name = strings.ToLower(name)
		if seen[name] {
			return c, fmt.Errorf("duplicate parameter %q", name)
		}
		seen[name] = true
		switch name {
		case "username":
			c.Username = value
		case "realm":
			c.Realm = value
		case "nonce":
			c.Nonce = value
		case "uri":
			c.URI = value
		case "response":
			c.Response = value
		case "algorithm":
			c.Algorithm = value
		case "cnonce":
			c.Cnonce = value
		case "opaque":
			c.Opaque = value
		case "qop":
			c.QOP = value
		case "nc":
			c.NC = value
		case "userhash":
			c.Userhash = strings.EqualFold(value, "true")
		}
		// Unknown parameters (auth-param extensions) are ignored, as RFC 7616
		// requires.
	}
	for _, k := range []string{"username", "realm", "nonce", "uri", "response"} {
		if !seen[k] {
			return c, fmt.Errorf("missing parameter %q", k)
		}
	}
	if c.QOP != "" {
		if !seen["nc"] || !seen["cnonce"] {
			return c, errors.New("qop without nc and cnonce")
		}
		if len(c.NC) != 8 || !isHex(c.NC) {
			return c, fmt.Errorf("bad nc %q", c.NC)
		}
	}
	return c, nil
}

// paramScanner walks a comma-separated auth-param list.
type paramScanner struct {
	s string
	i int
}

func (p *paramScanner) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// next returns the next name=value pair; ok is false at the end.
func (p *paramScanner) next() (name, value string, ok bool, err error) {
	p.skip(" \t\r\n,")
	if p.i >= len(p.s) {
		return "", "", false, nil
	}
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	name = p.s[start:p.i]
	if name == "" {
		return "", "", false, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
	}
	p.skip(" \t")
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return "", "", false, fmt.Errorf("parameter %q without value", name)
	}
	p.i++
	p.skip(" \t")
	if p.i < len(p.s) && p.s[p.i] == '"' {
		p.i++
		var b strings.Builder
		for {
			if p.i >= len(p.s) {
				return "", "", false, fmt.Errorf("unterminated quoted value of %q", name)
			}
			ch := p.s[p.i]
			p.i++
			if ch == '"' {
				break
			}
			if ch == '\\' {
				if p.i >= len(p.s) {
					return "", "", false, fmt.Errorf("dangling escape in %q", name)
				}
				ch = p.s[p.i]
				p.i++
			}
			if ch == '\r' || ch == '\n' || ch == 0 {
				return "", "", false, fmt.Errorf("control character in %q", name)
			}
			b.WriteByte(ch)
		}
		value = b.String()
	} else {
		start = p.i
		for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
			p.i++
		}
		value = p.s[start:p.i]
		if value == "" {
			return "", "", false, fmt.Errorf("empty value of %q", name)
		}
	}
	p.skip(" \t")
	if p.i < len(p.s) && p.s[p.i] != ',' {
		return "", "", false, fmt.Errorf("junk after %q", name)
	}
	return name, value, true, nil
}

// isTokenChar reports RFC 3261 token characters (plus '/' and ':' which
// some phones leave unquoted in uri=).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~/:@;", c) >= 0
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Algorithm names as they appear in challenges; config spells them.
const (
	AlgMD5    = config.AuthMD5
	AlgSHA256 = config.AuthSHA256
)

// newHash returns the hash for a digest algorithm name (case-insensitive,
// "" = MD5), or nil when unsupported.
func newHash(alg string) hash.Hash {
	switch strings.ToUpper(alg) {
	case "", AlgMD5:
		return md5.New()
	case AlgSHA256:
		return sha256.New()
	}
	return nil
}

func hashHex(h hash.Hash, parts ...string) string {
	h.Reset()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// expectedResponse computes the digest response for cred given HA1.
func expectedResponse(h hash.Hash, ha1, method string, c Credentials) string {
	ha2 := hashHex(h, method, c.URI)
	if c.QOP == "" {
		return hashHex(h, ha1, c.Nonce, ha2)
	}
	return hashHex(h, ha1, c.Nonce, c.NC, c.Cnonce, c.QOP, ha2)
}

// constantTimeEqualHex compares two hex digests without leaking where they
// differ (case-insensitive, since some clients send upper-case hex).
func constantTimeEqualHex(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(strings.ToLower(b))) == 1
}

// Nonces are stateless: base64url(issued-unix-nanos ‖ 8 random bytes ‖
// HMAC-SHA256(secret, issued ‖ random ‖ realm ‖ source IP)[:16]). The
// registrar keeps no table of issued nonces, only the highest nc seen per
// used nonce (replay check). Binding the source IP (not the port: a TCP
// phone reconnects from a new one) means a nonce answered from another
// address is not ours, so a captured request replayed from elsewhere only
// earns a new challenge.
const (
	nonceRawLen = 8 + 8 + 16
)

type nonceSigner struct {
	secret []byte
}

func (s nonceSigner) mac(issuedAndRand []byte, realm string, source netip.Addr) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write(issuedAndRand)
	m.Write([]byte{0})
	m.Write([]byte(realm))
	m.Write([]byte{0})
	if source.IsValid() {
		m.Write(source.Unmap().AsSlice())
	}
	return m.Sum(nil)[:16]
}

// issue creates a nonce for realm and a client at source, at time now.
func (s nonceSigner) issue(now time.Time, realm string, source netip.Addr, random [8]byte) string {
	raw := make([]byte, 0, nonceRawLen)
	raw = binary.BigEndian.AppendUint64(raw, uint64(now.UnixNano()))
	raw = append(raw, random[:]...)
	raw = append(raw, s.mac(raw, realm, source)...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// check validates a nonce's MAC for realm and the client's source and
// returns when it was issued.
func (s nonceSigner) check(nonce, realm string, source netip.Addr) (time.Time, bool) {
	if len(nonce) > 64 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != nonceRawLen {
		return time.Time{}, false
	}
	if !hmac.Equal(raw[16:], s.mac(raw[:16], realm, source)) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8]))), true
}
