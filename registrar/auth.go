package registrar

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// authStatus is the outcome of checking a request's credentials.
type authStatus int

const (
	authNone      authStatus = iota // no usable credentials for our realm: challenge
	authOK                          // verified
	authStale                       // right password, expired or replayed nonce: challenge with stale=true
	authFailed                      // wrong password, unknown user, bad nonce: challenge again
	authMalformed                   // unparsable header: 400
)

func (s authStatus) String() string {
	switch s {
	case authNone:
		return "none"
	case authOK:
		return "ok"
	case authStale:
		return "stale"
	case authFailed:
		return "failed"
	case authMalformed:
		return "malformed"
	}
	return fmt.Sprintf("authStatus(%d)", int(s))
}

type authResult struct {
	status authStatus
	user   string
	realm  string
	reason string // for the log
}

// realmFor picks the digest realm: the configured one, else the domain the
// phone addresses, as sofia does (To host for REGISTER, From host for
// calls).
func (r *Registrar) realmFor(req *sipmsg.Request) string {
	if r.cfg.Realm != "" {
		return r.cfg.Realm
	}
	if req.Method == sipmsg.REGISTER {
		if to := req.To(); to != nil && to.Address.Host != "" {
			return to.Address.Host
		}
	} else if from := req.From(); from != nil && from.Address.Host != "" {
		return from.Address.Host
	}
	return req.Recipient.Host
}

// verify checks the credentials in the named headers against the
// directory. It is the only place passwords are compared.
func (r *Registrar) verify(req *sipmsg.Request, headerNames ...string) authResult {
	realm := r.realmFor(req)
	res := authResult{status: authNone, realm: realm}
	var cred Credentials
	found := false
	for _, name := range headerNames {
		for _, h := range req.GetHeaders(name) {
			c, err := ParseCredentials(h.Value())
			if err != nil {
				if err == errNotDigest {
					continue
				}
				return authResult{status: authMalformed, realm: realm, reason: err.Error()}
			}
			// A phone may carry credentials for other realms (RFC 3261
			// §22.4); only ours count.
			if c.Realm != realm {
				continue
			}
			cred, found = c, true
			break
		}
		if found {
			break
		}
	}
	if !found {
		return res
	}
	res.user = cred.Username
	h := newHash(cred.Algorithm)
	if h == nil || !r.algorithmEnabled(cred.Algorithm) {
		res.status, res.reason = authFailed, "unsupported algorithm "+cred.Algorithm
		return res
	}
	if cred.Userhash {
		res.status, res.reason = authFailed, "userhash not offered"
		return res
	}
	if cred.QOP != "" && !strings.EqualFold(cred.QOP, "auth") {
		res.status, res.reason = authFailed, "unsupported qop "+cred.QOP
		return res
	}
	if cred.Nonce == "" {
		// Some phones send empty credentials pre-emptively: just challenge.
		res.status = authNone
		return res
	}
	issued, ok := r.nonces.check(cred.Nonce, realm)
	if !ok {
		res.status, res.reason = authFailed, "nonce not issued by us"
		return res
	}
	now := r.now()
	if issued.After(now.Add(time.Minute)) {
		res.status, res.reason = authFailed, "nonce from the future"
		return res
	}
	if !r.digestURIMatches(cred.URI, req) {
		res.status, res.reason = authFailed, "digest uri does not match Request-URI"
		return res
	}
	user, known := r.users[cred.Username]
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
	want := expectedResponse(h, ha1, req.Method.String(), cred)
	if !constantTimeEqualHex(want, cred.Response) || !known {
		res.status, res.reason = authFailed, "wrong credentials"
		return res
	}
	if now.Sub(issued) > r.cfg.NonceTTL {
		res.status, res.reason = authStale, "nonce expired"
		return res
	}
	if cred.QOP != "" && !r.replay.use(cred.Nonce, issued, cred.NC) {
		res.status, res.reason = authStale, "nonce count replayed"
		return res
	}
	res.status = authOK
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
func (r *Registrar) digestURIMatches(uri string, req *sipmsg.Request) bool {
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(uri, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Host, req.Recipient.Host) && u.User == req.Recipient.User
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

// challenge builds a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)
// with one challenge per enabled algorithm, in configured order.
func (r *Registrar) challenge(req *sipmsg.Request, proxy, stale bool, realm string) *sipmsg.Response {
	code, reason, hname := 401, "Unauthorized", "WWW-Authenticate"
	if proxy {
		code, reason, hname = 407, "Proxy Authentication Required", "Proxy-Authenticate"
	}
	res := newResponse(req, code, reason)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand never fails on supported platforms
	nonce := r.nonces.issue(r.now(), realm, rnd)
	for _, alg := range r.cfg.Algorithms {
		v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"`, quoteEscape(realm), nonce, alg)
		if stale {
			v += ", stale=true"
		}
		res.AppendHeader(sipmsg.NewHeader(hname, v))
	}
	return res
}

// quoteEscaper makes a value safe inside a quoted-string; built once, since
// every challenge uses it.
var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", "", "\n", "")

func quoteEscape(s string) string { return quoteEscaper.Replace(s) }

// Authenticate checks the digest credentials of a non-REGISTER request
// (Proxy-Authorization, or Authorization as some phones send). On success
// it returns the authenticated user id. Otherwise it has already answered
// the request (407 with a fresh challenge, stale=true when only the nonce
// was too old, 400 for an unparsable header) and returns false.
func (r *Registrar) Authenticate(req *sipmsg.Request, tx sipmsg.ServerTransaction) (user string, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("registrar: panic in Authenticate", "panic", p)
			user, ok = "", false
			r.respond(req, tx, newResponse(req, 500, "Server Internal Error"))
		}
	}()
	res := r.verify(req, "Proxy-Authorization", "Authorization")
	switch res.status {
	case authOK:
		return res.user, true
	case authMalformed:
		r.log.Info("registrar: malformed credentials", "method", req.Method.String(), "source", req.Source(), "err", res.reason)
		r.respond(req, tx, newResponse(req, 400, "Malformed Authorization"))
	default:
		if res.status != authNone {
			r.log.Info("registrar: authentication failed", "method", req.Method.String(), "user", res.user,
				"source", req.Source(), "result", res.status.String(), "reason", res.reason)
		}
		r.respond(req, tx, r.challenge(req, true, res.status == authStale, res.realm))
	}
	return "", false
}
