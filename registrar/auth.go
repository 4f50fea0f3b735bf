package registrar

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// AuthStatus is the outcome of checking a request's credentials.
type AuthStatus int

const (
	AuthNone      AuthStatus = iota // no usable credentials for our realm: challenge
	AuthOK                          // verified
	AuthStale                       // right password, but the nonce expired, was replayed or is another source's: challenge with stale=true
	AuthFailed                      // wrong password, unknown user, bad nonce: challenge again
	AuthMalformed                   // unparsable credentials: 400
)

func (s AuthStatus) String() string {
	switch s {
	case AuthNone:
		return "none"
	case AuthOK:
		return "ok"
	case AuthStale:
		return "stale"
	case AuthFailed:
		return "failed"
	case AuthMalformed:
		return "malformed"
	}
	return fmt.Sprintf("AuthStatus(%d)", int(s))
}

// AuthResult is what Verify found.
type AuthResult struct {
	Status AuthStatus
	// User is the credentials' user name (verified only when Status is
	// AuthOK).
	User string
	// Realm is the realm the request was checked in; a challenge after a
	// failure names it.
	Realm string
	// Reason says why verification failed, for the log.
	Reason string
}

// DigestRequest is what Verify needs from a SIP request, without the SIP
// stack: the sip package fills it from the message.
type DigestRequest struct {
	// Method is the request method ("REGISTER", "INVITE"), part of the
	// digest.
	Method string
	// Domain is the domain the phone addresses (To host of a REGISTER,
	// From host of other requests); it is the realm unless one is
	// configured.
	Domain string
	// RequestUser and RequestHost are the Request-URI's user and host: the
	// credentials' uri must name the same target.
	RequestUser, RequestHost string
	// Credentials are the Authorization / Proxy-Authorization header
	// values, most preferred first.
	Credentials []string
	// Source is the client's address: nonces are bound to it (see
	// Challenge).
	Source netip.Addr
}

// Realm picks the digest realm for a phone addressing domain: the
// configured one, else domain, as sofia does.
func (r *Registrar) Realm(domain string) string {
	if r.cfg.Realm != "" {
		return r.cfg.Realm
	}
	return domain
}

// Verify checks the digest credentials of req against the directory. It is
// the only place passwords are compared.
func (r *Registrar) Verify(req DigestRequest) AuthResult {
	realm := r.Realm(req.Domain)
	res := AuthResult{Status: AuthNone, Realm: realm}
	var cred Credentials
	found := false
	for _, v := range req.Credentials {
		c, err := ParseCredentials(v)
		if err != nil {
			if err == errNotDigest {
				continue
			}
			return AuthResult{Status: AuthMalformed, Realm: realm, Reason: err.Error()}
		}
		// A phone may carry credentials for other realms (RFC 3261
		// §22.4); only ours count.
		if c.Realm != realm {
			continue
		}
		cred, found = c, true
		break
	}
	if !found {
		return res
	}
	res.User = cred.Username
	h := newHash(cred.Algorithm)
	if h == nil || !r.algorithmEnabled(cred.Algorithm) {
		res.Status, res.Reason = AuthFailed, "unsupported algorithm "+cred.Algorithm
		return res
	}
	if cred.Userhash {
		res.Status, res.Reason = AuthFailed, "userhash not offered"
		return res
	}
	if cred.QOP != "" && !strings.EqualFold(cred.QOP, "auth") {
		res.Status, res.Reason = AuthFailed, "unsupported qop "+cred.QOP
		return res
	}
	if cred.Nonce == "" {
		// Some phones send empty credentials pre-emptively: just challenge.
		res.Status = AuthNone
		return res
	}
	if cred.QOP == "" && !r.cfg.AllowNoQOP {
		// An RFC 2069 response has no nonce count, so nothing tells a
		// replay from the original: refuse it before any hashing, with a
		// new challenge (that offers qop=auth). Not a failed guess.
		res.Status, res.Reason = AuthNone, "response without qop (RFC 2069) refused"
		return res
	}
	if !digestURIMatches(cred.URI, req.RequestUser, req.RequestHost) {
		res.Status, res.Reason = AuthFailed, "digest uri does not match Request-URI"
		return res
	}
	user, known := (*r.users.Load())[cred.Username]
	var ha1 string
	if known {
		ha1 = r.ha1(user, realm, cred.Algorithm)
	}
	if ha1 == "" {
		// Same work and the same answer as a wrong password, so the reply
		// does not reveal which user names exist.
		ha1 = hashHex(h, cred.Username, realm, "\x00no such user")
		known = false
	}
	want := expectedResponse(h, ha1, req.Method, cred)
	if !constantTimeEqualHex(want, cred.Response) || !known {
		res.Status, res.Reason = AuthFailed, "wrong credentials"
		return res
	}
	// The password is right; what is left is whether this response is
	// fresh. Anything wrong with the nonce is stale (a new challenge the
	// phone answers at once), never a failure that counts toward a ban.
	issued, ok := r.nonces.check(cred.Nonce, realm, req.Source)
	now := r.now()
	switch {
	case !ok:
		res.Status, res.Reason = AuthStale, "nonce not issued by us to this source"
		return res
	case issued.After(now.Add(time.Minute)):
		res.Status, res.Reason = AuthStale, "nonce from the future"
		return res
	case now.Sub(issued) > r.cfg.NonceTTL:
		res.Status, res.Reason = AuthStale, "nonce expired"
		return res
	}
	if cred.QOP != "" && !r.replay.use(cred.Nonce, issued, cred.NC) {
		res.Status, res.Reason = AuthStale, "nonce count replayed"
		return res
	}
	res.Status = AuthOK
	return res
}

// ha1 returns H(user:realm:password), or the directory's a1-hash param
// (MD5 only, as FreeSWITCH stores it).
func (r *Registrar) ha1(u userEntry, realm, alg string) string {
	if u.password != "" {
		return hashHex(newHash(alg), u.id, realm, u.password)
	}
	if u.a1Hash != "" && (alg == "" || strings.EqualFold(alg, AlgMD5)) {
		return strings.ToLower(u.a1Hash)
	}
	return ""
}

// digestURIMatches compares the credential's uri with the Request-URI by
// user and host: enough to stop a credential being replayed against
// another target, lenient about the port and parameter spellings phones
// vary on.
func digestURIMatches(uri, user, host string) bool {
	u, h, ok := uriUserHost(uri)
	return ok && strings.EqualFold(h, host) && u == user
}

// uriUserHost reads the user and host of a sip: or sips: URI
// ("sip:1001:secret@[::1]:5060;transport=tcp?x=y" gives 1001 and ::1).
func uriUserHost(uri string) (user, host string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(uri), ":")
	if !found || (!strings.EqualFold(scheme, "sip") && !strings.EqualFold(scheme, "sips")) {
		return "", "", false
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		user, _, _ = strings.Cut(rest[:i], ":")
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", false
		}
		host = rest[1:end]
	} else {
		host, _, _ = strings.Cut(rest, ":")
	}
	if host == "" {
		return "", "", false
	}
	return user, host, true
}

func (r *Registrar) algorithmEnabled(alg string) bool {
	if alg == "" {
		alg = AlgMD5
	}
	for _, a := range r.cfg.Algorithms {
		if strings.EqualFold(a, alg) {
			return true
		}
	}
	return false
}

// Challenge returns the WWW-Authenticate / Proxy-Authenticate values that
// challenge a phone at source in realm: one per enabled algorithm, in
// configured order, sharing one fresh nonce that is valid only from
// source's IP address and for Config.NonceTTL; stale says the password was
// right and only the nonce was not (too old, replayed, another source's).
func (r *Registrar) Challenge(realm string, source netip.Addr, stale bool) []string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand never fails on supported platforms
	nonce := r.nonces.issue(r.now(), realm, source, rnd)
	out := make([]string, 0, len(r.cfg.Algorithms))
	for _, alg := range r.cfg.Algorithms {
		v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"`, quoteEscape(realm), nonce, alg)
		if stale {
			v += ", stale=true"
		}
		out = append(out, v)
	}
	return out
}

// quoteEscaper makes a value safe inside a quoted-string; built once, since
// every challenge uses it.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "")

func quoteEscape(s string) string { return quoteEscaper.Replace(s) }
