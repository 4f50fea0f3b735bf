package registrar

import (
	"fmt"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

const phoneSource = "127.0.0.1:5999"

// rawRegister parses a REGISTER built from text, as the transport would.
func rawRegister(t testing.TB, callID string, cseq int, to string, headers ...string) *sipmsg.Request {
	t.Helper()
	msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-" + callID + fmt.Sprint(cseq) + "\r\n" +
		"From: <sip:" + to + "@127.0.0.1>;tag=ft\r\n" +
		"To: <sip:" + to + "@127.0.0.1>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		fmt.Sprintf("CSeq: %d REGISTER\r\n", cseq)
	for _, h := range headers {
		msg += h + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	m, err := sipmsg.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatalf("parse %q: %v", msg, err)
	}
	req := m.(*sipmsg.Request)
	req.SetSource(phoneSource)
	req.SetTransport("UDP")
	return req
}

// sign adds credentials for user/pass, computed by an independent digest
// implementation from a challenge the registrar issued for req.
func sign(t testing.TB, r *Registrar, req *sipmsg.Request, user, pass, alg string, proxy bool) {
	t.Helper()
	res := r.challenge(req, proxy, false, r.realmFor(req))
	name, authz := "WWW-Authenticate", "Authorization"
	if proxy {
		name, authz = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var chal *digest.Challenge
	for _, h := range res.GetHeaders(name) {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		if alg == "" || c.Algorithm == alg {
			chal = c
			break
		}
	}
	if chal == nil {
		t.Fatalf("no %s challenge", alg)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: req.Method.String(), URI: req.Recipient.Addr(), Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	req.RemoveHeader(authz)
	req.AppendHeader(sipmsg.NewHeader(authz, cred.String()))
}

func handle(t testing.TB, r *Registrar, req *sipmsg.Request) *sipmsg.Response {
	t.Helper()
	tx := newFakeTx()
	r.HandleRegister(req, tx)
	return tx.response(t)
}

func newTestRegistrar(t testing.TB, mut func(*Config)) (*Registrar, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Now()}
	cfg := Config{Users: testUsers(), Profile: "internal", Algorithms: []string{AlgMD5, AlgSHA256}}
	if mut != nil {
		mut(&cfg)
	}
	r, err := newRegistrar(cfg, nil, quietLog(), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r, clock
}

func TestBadInputNeverChangesBindings(t *testing.T) {
	r, _ := newTestRegistrar(t, nil)
	ok := rawRegister(t, "cid-1", 10, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
	sign(t, r, ok, "1001", "1234", "", false)
	if res := handle(t, r, ok); res.StatusCode != 200 {
		t.Fatalf("setup register: %d", res.StatusCode)
	}
	before := r.Bindings()

	signed := func(mut func(*sipmsg.Request), headers ...string) func() *sipmsg.Request {
		return func() *sipmsg.Request {
			req := rawRegister(t, "cid-2", 1, "1001", headers...)
			sign(t, r, req, "1001", "1234", "", false)
			if mut != nil {
				mut(req)
			}
			return req
		}
	}
	unsigned := func(mut func(*sipmsg.Request), headers ...string) func() *sipmsg.Request {
		return func() *sipmsg.Request {
			req := rawRegister(t, "cid-3", 1, "1001", headers...)
			if mut != nil {
				mut(req)
			}
			return req
		}
	}
	cases := []struct {
		name string
		req  func() *sipmsg.Request
		code int
	}{
		{"no credentials", unsigned(nil, "Contact: <sip:1001@10.9.9.9>"), 401},
		{"missing To", signed(func(q *sipmsg.Request) { q.RemoveHeader("To") }, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"missing From", signed(func(q *sipmsg.Request) { q.RemoveHeader("From") }, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"missing Call-ID", signed(func(q *sipmsg.Request) { q.RemoveHeader("Call-ID") }, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"missing CSeq", signed(func(q *sipmsg.Request) { q.RemoveHeader("CSeq") }, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"CSeq method", signed(func(q *sipmsg.Request) { q.CSeq().MethodName = sipmsg.INVITE }, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"broken Authorization", unsigned(nil, `Authorization: Digest username="1001`, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"Authorization junk", unsigned(nil, `Authorization: Digest username="1001",,realm=`, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"Authorization duplicate param", unsigned(nil, `Authorization: Digest username="1001", username="1002", realm="127.0.0.1", nonce="x", uri="sip:127.0.0.1", response="00"`, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"oversized Authorization", unsigned(nil, `Authorization: Digest username="`+strings.Repeat("a", 5000)+`"`, "Contact: <sip:1001@10.9.9.9>"), 400},
		{"Basic Authorization", unsigned(nil, `Authorization: Basic MTAwMToxMjM0`, "Contact: <sip:1001@10.9.9.9>"), 401},
		{"forged nonce", unsigned(nil, `Authorization: Digest username="1001", realm="127.0.0.1", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uri="sip:127.0.0.1", response="00000000000000000000000000000000", qop=auth, nc=00000001, cnonce="x"`, "Contact: <sip:1001@10.9.9.9>"), 401},
		{"wrong password", func() *sipmsg.Request {
			req := rawRegister(t, "cid-4", 1, "1001", "Contact: <sip:1001@10.9.9.9>")
			sign(t, r, req, "1001", "4321", "", false)
			return req
		}, 401},
		{"other user's credentials", func() *sipmsg.Request {
			req := rawRegister(t, "cid-5", 1, "1001", "Contact: <sip:1001@10.9.9.9>")
			sign(t, r, req, "1002", "1234", "", false)
			return req
		}, 403},
		{"digest uri for another host", signed(func(q *sipmsg.Request) { q.Recipient.Host = "10.1.1.1" }, "Contact: <sip:1001@10.9.9.9>"), 401},
		{"bad Expires", signed(nil, "Contact: <sip:1001@10.9.9.9>", "Expires: soon"), 400},
		{"bad contact expires", signed(nil, "Contact: <sip:1001@10.9.9.9>;expires=-1"), 400},
		{"wildcard without Expires 0", signed(nil, "Contact: *", "Expires: 3600"), 400},
		{"wildcard without Expires", signed(nil, "Contact: *"), 400},
		{"wildcard with another contact", signed(nil, "Contact: *, <sip:1001@10.9.9.9>", "Expires: 0"), 400},
		{"non-SIP contact", signed(nil, "Contact: <tel:+15551234>"), 400},
		{"Require", signed(nil, "Contact: <sip:1001@10.9.9.9>", "Require: gruu, path"), 420},
		{"too brief", signed(nil, "Contact: <sip:1001@10.9.9.9>;expires=5"), 423},
		{"out of order CSeq", func() *sipmsg.Request {
			req := rawRegister(t, "cid-1", 9, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
			sign(t, r, req, "1001", "1234", "", false)
			return req
		}, 400},
		{"same CSeq", func() *sipmsg.Request {
			req := rawRegister(t, "cid-1", 10, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 0")
			sign(t, r, req, "1001", "1234", "", false)
			return req
		}, 400},
		{"wildcard out of order", func() *sipmsg.Request {
			req := rawRegister(t, "cid-1", 3, "1001", "Contact: *", "Expires: 0")
			sign(t, r, req, "1001", "1234", "", false)
			return req
		}, 400},
		{"empty To user", func() *sipmsg.Request {
			req := rawRegister(t, "cid-6", 1, "", "Contact: <sip:x@10.9.9.9>")
			return req
		}, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := handle(t, r, c.req())
			if res.StatusCode != c.code {
				t.Fatalf("status %d %s, want %d", res.StatusCode, res.Reason, c.code)
			}
			after := r.Bindings()
			if len(after) != len(before) || after[0] != before[0] {
				t.Fatalf("bindings changed: %+v -> %+v", before, after)
			}
		})
	}
	// 420 names the unsupported extensions.
	res := handle(t, r, signed(nil, "Contact: <sip:1001@10.9.9.9>", "Require: gruu, path")())
	if u := res.GetHeader("Unsupported"); u == nil || u.Value() != "gruu, path" {
		t.Fatalf("Unsupported = %v", u)
	}
	// A flood of tags, overlong and with odd bytes, is not echoed whole.
	flood := "Require: " + strings.Repeat("x<y>"+strings.Repeat("z", 100)+", ", 30)
	res = handle(t, r, signed(nil, "Contact: <sip:1001@10.9.9.9>", flood)())
	u := res.GetHeader("Unsupported")
	if res.StatusCode != 420 || u == nil {
		t.Fatalf("flood: %d %v", res.StatusCode, u)
	}
	tags := strings.Split(u.Value(), ", ")
	if len(tags) != 8 || tags[0] != "xy"+strings.Repeat("z", 30) {
		t.Fatalf("flood echoed as %d tags, first %q", len(tags), tags[0])
	}
}

func TestSameCallIDNewContactReplacesOld(t *testing.T) {
	r, clock := newTestRegistrar(t, nil)
	reg := func(callID string, cseq int, contact string) {
		t.Helper()
		req := rawRegister(t, callID, cseq, "1001", "Contact: <"+contact+">", "Expires: 3600")
		sign(t, r, req, "1001", "1234", "", false)
		if res := handle(t, r, req); res.StatusCode != 200 {
			t.Fatalf("register %s: %d", contact, res.StatusCode)
		}
		clock.Advance(time.Second)
	}
	reg("A", 1, "sip:1001@10.0.0.1:5060")
	reg("A", 2, "sip:1001@203.0.113.7:40000") // the phone's NAT mapping changed
	bs := r.Lookup("1001")
	if len(bs) != 1 || bs[0].Contact != "sip:1001@203.0.113.7:40000" {
		t.Fatalf("bindings = %+v, want only the new contact", bs)
	}
	reg("B", 1, "sip:1001@10.0.0.2:5060") // a second device
	if bs = r.Lookup("1001"); len(bs) != 2 || bs[0].Contact != "sip:1001@10.0.0.2:5060" {
		t.Fatalf("bindings = %+v, want both devices, newest first", bs)
	}
	// Host case and transport case do not make a new binding.
	reg("B", 2, "sip:1001@10.0.0.2:5060")
	if bs = r.Lookup("1001"); len(bs) != 2 {
		t.Fatalf("refresh made a new binding: %+v", bs)
	}
}

func TestSeveralContactsInOneRequest(t *testing.T) {
	r, _ := newTestRegistrar(t, nil)
	req := rawRegister(t, "M", 1, "1001", "Contact: <sip:1001@10.0.0.1>;expires=120, <sip:1001@10.0.0.2>", "Expires: 600")
	sign(t, r, req, "1001", "1234", "", false)
	res := handle(t, r, req)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := map[string]bool{}
	for _, c := range contactValues(res) {
		got[c] = true
	}
	if !got["<sip:1001@10.0.0.1>;expires=120"] || !got["<sip:1001@10.0.0.2>;expires=600"] || len(got) != 2 {
		t.Fatalf("200 contacts = %v", contactValues(res))
	}
	// Remove one of them, keep the other.
	req = rawRegister(t, "M", 2, "1001", "Contact: <sip:1001@10.0.0.1>;expires=0, <sip:1001@10.0.0.2>")
	sign(t, r, req, "1001", "1234", "", false)
	if res = handle(t, r, req); res.StatusCode != 200 || len(contactValues(res)) != 1 {
		t.Fatalf("partial unregister: %d %v", res.StatusCode, contactValues(res))
	}
}

func TestMaxContactsDropsOldest(t *testing.T) {
	r, clock := newTestRegistrar(t, func(c *Config) { c.MaxContacts = 2 })
	for i, id := range []string{"a", "b", "c"} {
		req := rawRegister(t, id, 1, "1001", fmt.Sprintf("Contact: <sip:1001@10.0.0.%d>", i+1))
		sign(t, r, req, "1001", "1234", "", false)
		if res := handle(t, r, req); res.StatusCode != 200 {
			t.Fatalf("register %s: %d", id, res.StatusCode)
		}
		clock.Advance(time.Second)
	}
	bs := r.Lookup("1001")
	if len(bs) != 2 || bs[0].CallID != "c" || bs[1].CallID != "b" {
		t.Fatalf("bindings = %+v, want c and b", bs)
	}
	req := rawRegister(t, "d", 1, "1001", "Contact: <sip:1001@10.0.1.1>, <sip:1001@10.0.1.2>, <sip:1001@10.0.1.3>")
	sign(t, r, req, "1001", "1234", "", false)
	if res := handle(t, r, req); res.StatusCode != 403 {
		t.Fatalf("3 contacts with max 2: %d, want 403", res.StatusCode)
	}
}

func TestAuthenticateInvite(t *testing.T) {
	r, clock := newTestRegistrar(t, nil)
	invite := func(headers ...string) *sipmsg.Request {
		msg := "INVITE sip:3000@127.0.0.1 SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-inv\r\n" +
			"From: <sip:1001@127.0.0.1>;tag=ft\r\nTo: <sip:3000@127.0.0.1>\r\nCall-ID: inv-1\r\nCSeq: 1 INVITE\r\n"
		for _, h := range headers {
			msg += h + "\r\n"
		}
		msg += "Content-Length: 0\r\n\r\n"
		m, err := sipmsg.ParseMessage([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		req := m.(*sipmsg.Request)
		req.SetSource(phoneSource)
		return req
	}
	authenticate := func(req *sipmsg.Request) (string, bool, *sipmsg.Response) {
		tx := newFakeTx()
		user, ok := r.Authenticate(req, tx)
		tx.mu.Lock()
		defer tx.mu.Unlock()
		if ok && len(tx.responses) != 0 {
			t.Fatalf("Authenticate succeeded but responded %d", tx.responses[0].StatusCode)
		}
		if !ok && len(tx.responses) != 1 {
			t.Fatalf("Authenticate failed with %d responses", len(tx.responses))
		}
		if ok {
			return user, ok, nil
		}
		return user, ok, tx.responses[0]
	}

	_, ok, res := authenticate(invite())
	if ok || res.StatusCode != 407 || len(res.GetHeaders("Proxy-Authenticate")) != 2 {
		t.Fatalf("no credentials: ok=%v res=%v", ok, res)
	}
	req := invite()
	sign(t, r, req, "1001", "1234", "", true)
	if user, ok, _ := authenticate(req); !ok || user != "1001" {
		t.Fatalf("Proxy-Authorization: %q %v", user, ok)
	}
	// Some phones answer a 407 with Authorization.
	req = invite()
	sign(t, r, req, "1002", "1234", "SHA-256", false)
	if user, ok, _ := authenticate(req); !ok || user != "1002" {
		t.Fatalf("Authorization on INVITE: %q %v", user, ok)
	}
	req = invite()
	sign(t, r, req, "1001", "nope", "", true)
	if _, ok, res := authenticate(req); ok || res.StatusCode != 407 || strings.Contains(res.GetHeader("Proxy-Authenticate").Value(), "stale") {
		t.Fatalf("wrong password: ok=%v res=%v", ok, res)
	}
	req = invite()
	sign(t, r, req, "1001", "1234", "", true)
	clock.Advance(DefaultNonceTTL + time.Second)
	if _, ok, res := authenticate(req); ok || res.StatusCode != 407 || !strings.Contains(res.GetHeader("Proxy-Authenticate").Value(), "stale=true") {
		t.Fatalf("expired nonce: ok=%v res=%v", ok, res)
	}
	if _, ok, res := authenticate(invite(`Proxy-Authorization: Digest username=`)); ok || res.StatusCode != 400 {
		t.Fatalf("malformed: ok=%v res=%v", ok, res)
	}
}

func TestNonceSigner(t *testing.T) {
	s := nonceSigner{secret: []byte("k")}
	now := time.Unix(1700000000, 123)
	n := s.issue(now, "realm", [8]byte{1, 2, 3})
	if at, ok := s.check(n, "realm"); !ok || !at.Equal(now) {
		t.Fatalf("check own nonce: %v %v", at, ok)
	}
	if _, ok := s.check(n, "other"); ok {
		t.Fatal("nonce valid for another realm")
	}
	if _, ok := (nonceSigner{secret: []byte("k2")}).check(n, "realm"); ok {
		t.Fatal("nonce valid under another secret")
	}
	b := []byte(n)
	b[5] ^= 1
	if _, ok := s.check(string(b), "realm"); ok {
		t.Fatal("tampered nonce accepted")
	}
	for _, bad := range []string{"", "!!!", strings.Repeat("A", 200), n[:10]} {
		if _, ok := s.check(bad, "realm"); ok {
			t.Fatalf("nonce %q accepted", bad)
		}
	}
}

func TestParseCredentials(t *testing.T) {
	// The Authorization sipp sent to FreeSWITCH (freeswitch-observed/sipp/reg1001.msg).
	c, err := ParseCredentials(`Digest username="1001",realm="127.0.0.1",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:15060",nonce="34836205-a116-48bf-b034-d98e1b5a02d2",response="c83b5007689031fa0f0a54d133f2e4c1",algorithm=MD5`)
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{Username: "1001", Realm: "127.0.0.1", Cnonce: "6b8b4567", NC: "00000001", QOP: "auth",
		URI: "sip:127.0.0.1:15060", Nonce: "34836205-a116-48bf-b034-d98e1b5a02d2",
		Response: "c83b5007689031fa0f0a54d133f2e4c1", Algorithm: "MD5"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	// FreeSWITCH's own check of that exchange: our hash reproduces it.
	h := newHash("MD5")
	ha1 := hashHex(h, "1001", "127.0.0.1", "1234")
	if got := expectedResponse(h, ha1, "REGISTER", c); got != c.Response {
		t.Fatalf("response %s, want %s", got, c.Response)
	}
	// Escapes, spacing, unknown params, case-insensitive scheme and names.
	c, err = ParseCredentials("digest  USERNAME = \"a\\\"b\" , realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"r\", ext=1")
	if err != nil || c.Username != `a"b` {
		t.Fatalf("got %+v %v", c, err)
	}
	for _, bad := range []string{
		"", "Digest", "Basic abc", `Digest username="1001"`,
		`Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth`,
		`Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=1, cnonce="c"`,
		`Digest username="a" realm="r"`, `Digest username=`, `Digest =x`, `Digest username="a\`,
		"Digest username=\"a\nb\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"",
	} {
		if _, err := ParseCredentials(bad); err == nil {
			t.Errorf("ParseCredentials(%q) succeeded", bad)
		}
	}
}

func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="1001",realm="127.0.0.1",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:15060",nonce="34836205",response="c83b5007689031fa0f0a54d133f2e4c1",algorithm=MD5`)
	f.Add(`Digest username="a\"b", realm="r", nonce="n", uri="sip:x", response="r"`)
	f.Add(`Digest username=`)
	f.Add(`Basic x`)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredentials(s)
		if err != nil {
			return
		}
		if c.QOP != "" && (len(c.NC) != 8 || !isHex(c.NC)) {
			t.Fatalf("accepted bad nc %q", c.NC)
		}
		for _, v := range []string{c.Username, c.Realm, c.Nonce, c.URI, c.Response} {
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("control character accepted: %q", v)
			}
		}
	})
}

// FuzzHandleRegister feeds arbitrary messages to the REGISTER handler: it
// must never panic, never create a binding without valid credentials (the
// fuzzer cannot know the random nonce secret) and never answer 2xx.
func FuzzHandleRegister(f *testing.F) {
	f.Add([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\nFrom: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.1:5999>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\nFrom: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nAuthorization: Digest username=\"1001\", realm=\"127.0.0.1\", nonce=\"AAAA\", uri=\"sip:127.0.0.1\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nTo: <sip:1001@127.0.0.1>\r\nContent-Length: 0\r\n\r\n"))
	r, _ := newTestRegistrar(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := sipmsg.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := m.(*sipmsg.Request)
		if !ok {
			return
		}
		req.SetSource(phoneSource)
		tx := newFakeTx()
		r.HandleRegister(req, tx)
		tx.mu.Lock()
		defer tx.mu.Unlock()
		for _, res := range tx.responses {
			if res.StatusCode < 400 {
				t.Fatalf("answered %d to unauthenticated input", res.StatusCode)
			}
		}
		if bs := r.Bindings(); len(bs) != 0 {
			t.Fatalf("binding created: %+v", bs)
		}
	})
}

func TestMappedIPv4SourceIsUnmapped(t *testing.T) {
	r, _ := newTestRegistrar(t, nil)
	req := rawRegister(t, "v6", 1, "1001", "Contact: <sip:1001@192.168.1.20:5060>")
	req.SetSource("[::ffff:192.168.1.20]:5062")
	sign(t, r, req, "1001", "1234", "", false)
	if res := handle(t, r, req); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := r.Lookup("1001")[0].Source.String(); got != "192.168.1.20:5062" {
		t.Fatalf("source = %s", got)
	}
}

func TestExpiredBindingDoesNotBlockReRegistration(t *testing.T) {
	var events []Event
	r, clock := newTestRegistrar(t, func(c *Config) { c.Notify = func(e Event) { events = append(events, e) } })
	req := rawRegister(t, "E", 50, "1001", "Contact: <sip:1001@10.0.0.1>", "Expires: 60")
	sign(t, r, req, "1001", "1234", "", false)
	if res := handle(t, r, req); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	clock.Advance(2 * time.Minute)
	// Same Call-ID with a lower CSeq (the phone restarted its counter) is
	// fine once the old binding has expired.
	req = rawRegister(t, "E", 1, "1001", "Contact: <sip:1001@10.0.0.1>", "Expires: 60")
	sign(t, r, req, "1001", "1234", "", false)
	if res := handle(t, r, req); res.StatusCode != 200 {
		t.Fatalf("re-register after expiry: %d", res.StatusCode)
	}
	if len(r.Lookup("1001")) != 1 {
		t.Fatal("no binding")
	}
	kinds := []EventKind{}
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 2 || kinds[0] != EventRegister || kinds[1] != EventRegister {
		t.Fatalf("events = %v", kinds)
	}
}
