package registrar

import (
	"crypto/md5"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// TestRejectionsNeverChangeBindings: every REGISTER the registrar refuses
// gets its failure code and leaves the bindings as they were.
func TestRejectionsNeverChangeBindings(t *testing.T) {
	r, _ := newTestRegistrar(t, nil)
	mustRegister(t, r, registration(t, "cid-1", 10, "1001", "3600", "<sip:1001@127.0.0.1:5999>"))
	before := r.Bindings()
	cases := []struct {
		name string
		reg  Registration
		code int
	}{
		{"bad Expires", registration(t, "cid-2", 1, "1001", "soon", "<sip:1001@10.9.9.9>"), 400},
		{"bad contact expires", registration(t, "cid-2", 1, "1001", "", "<sip:1001@10.9.9.9>;expires=-1"), 400},
		{"wildcard without Expires 0", registration(t, "cid-2", 1, "1001", "3600", "*"), 400},
		{"wildcard without Expires", registration(t, "cid-2", 1, "1001", "", "*"), 400},
		{"wildcard with another contact", registration(t, "cid-2", 1, "1001", "0", "*", "<sip:1001@10.9.9.9>"), 400},
		{"non-SIP contact", registration(t, "cid-2", 1, "1001", "", "<tel:+15551234>"), 400},
		{"too brief", registration(t, "cid-2", 1, "1001", "", "<sip:1001@10.9.9.9>;expires=5"), 423},
		{"out of order CSeq", registration(t, "cid-1", 9, "1001", "3600", "<sip:1001@127.0.0.1:5999>"), 400},
		{"same CSeq", registration(t, "cid-1", 10, "1001", "0", "<sip:1001@127.0.0.1:5999>"), 400},
		{"wildcard out of order", registration(t, "cid-1", 3, "1001", "0", "*"), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := r.Register(c.reg)
			if res.Code != c.code {
				t.Fatalf("status %d %s, want %d", res.Code, res.Reason, c.code)
			}
			after := r.Bindings()
			if len(after) != len(before) || after[0] != before[0] {
				t.Fatalf("bindings changed: %+v -> %+v", before, after)
			}
		})
	}
}

// TestVerify: the outcome of every kind of credentials.
func TestVerify(t *testing.T) {
	r, clock := newTestRegistrar(t, nil)
	plain := DigestRequest{Method: "REGISTER", Domain: "127.0.0.1", RequestHost: "127.0.0.1", Source: testSource}
	with := func(creds ...string) DigestRequest { dr := plain; dr.Credentials = creds; return dr }
	check := func(name string, dr DigestRequest, want AuthStatus, user string) {
		t.Helper()
		if got := r.Verify(dr); got.Status != want || (user != "" && got.User != user) || got.Realm != "127.0.0.1" {
			t.Errorf("%s: %+v, want %s for %q", name, got, want, user)
		}
	}
	check("no credentials", plain, AuthNone, "")
	check("good", signed(t, r, "REGISTER", "1001", "1234", ""), AuthOK, "1001")
	check("SHA-256", signed(t, r, "REGISTER", "1002", "1234", "SHA-256"), AuthOK, "1002")
	check("wrong password", signed(t, r, "REGISTER", "1001", "4321", ""), AuthFailed, "1001")
	check("unknown user", signed(t, r, "REGISTER", "9999", "1234", ""), AuthFailed, "9999")
	check("broken", with(`Digest username="1001`), AuthMalformed, "")
	check("junk", with(`Digest username="1001",,realm=`), AuthMalformed, "")
	check("duplicate param", with(`Digest username="1001", username="1002", realm="127.0.0.1", nonce="x", uri="sip:127.0.0.1", response="00"`), AuthMalformed, "")
	check("oversized", with(`Digest username="`+strings.Repeat("a", 5000)+`"`), AuthMalformed, "")
	check("Basic", with(`Basic MTAwMToxMjM0`), AuthNone, "")
	check("forged nonce", with(`Digest username="1001", realm="127.0.0.1", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", uri="sip:127.0.0.1", response="00000000000000000000000000000000", qop=auth, nc=00000001, cnonce="x"`), AuthFailed, "")
	check("other realm only", with(`Digest username="1001", realm="elsewhere", nonce="n", uri="sip:127.0.0.1", response="00"`), AuthNone, "")
	other := signed(t, r, "REGISTER", "1001", "1234", "")
	other.RequestHost = "10.1.1.1"
	check("digest uri for another host", other, AuthFailed, "")
	// Some phones answer a 407 with Authorization after a foreign realm's
	// credentials: the first of ours counts.
	good := signed(t, r, "INVITE", "1001", "1234", "")
	good.Credentials = append([]string{`Digest username="x", realm="elsewhere", nonce="n", uri="sip:127.0.0.1", response="00"`}, good.Credentials...)
	check("ours after another realm's", good, AuthOK, "1001")

	replayed := signed(t, r, "REGISTER", "1001", "1234", "")
	check("first use", replayed, AuthOK, "1001")
	check("replay", replayed, AuthStale, "1001")
	old := signed(t, r, "REGISTER", "1001", "1234", "")
	clock.Advance(DefaultNonceTTL + time.Second)
	check("expired nonce", old, AuthStale, "1001")

	moved := signed(t, r, "REGISTER", "1001", "1234", "")
	moved.Source = netip.MustParseAddr("192.0.2.66")
	check("nonce answered from another address", moved, AuthStale, "1001")
	check("other address, wrong password", func() DigestRequest {
		dr := signed(t, r, "REGISTER", "1001", "4321", "")
		dr.Source = moved.Source
		return dr
	}(), AuthFailed, "1001")
	check("RFC 2069 (no qop)", noQOP(t, r, "1001", "1234"), AuthNone, "1001")
	lax, _ := newTestRegistrar(t, func(c *Config) { c.AllowNoQOP = true })
	if got := lax.Verify(noQOP(t, lax, "1001", "1234")); got.Status != AuthOK {
		t.Errorf("RFC 2069 with AllowNoQOP: %+v", got)
	}

	if cs := r.Challenge("127.0.0.1", testSource, true); len(cs) != 2 || !strings.Contains(cs[0], "algorithm=MD5") ||
		!strings.Contains(cs[1], "algorithm=SHA-256") || !strings.Contains(cs[0], `qop="auth"`) ||
		!strings.Contains(cs[0], `realm="127.0.0.1"`) || !strings.HasSuffix(cs[1], ", stale=true") {
		t.Errorf("challenges = %q", cs)
	}
	if got := r.Realm("example.com"); got != "example.com" {
		t.Errorf("Realm = %q", got)
	}
	fixed, _ := newTestRegistrar(t, func(c *Config) { c.Realm = "pbx" })
	if got := fixed.Realm("example.com"); got != "pbx" {
		t.Errorf("configured Realm = %q", got)
	}
}

func TestURIUserHost(t *testing.T) {
	for uri, want := range map[string][2]string{
		"sip:127.0.0.1:15060":                   {"", "127.0.0.1"},
		"sip:1001@example.com":                  {"1001", "example.com"},
		"SIPS:1001:pw@[::1]:5061;transport=tls": {"1001", "::1"},
		"sip:3000@10.0.0.1?subject=x":           {"3000", "10.0.0.1"},
	} {
		u, h, ok := uriUserHost(uri)
		if !ok || u != want[0] || h != want[1] {
			t.Errorf("uriUserHost(%q) = %q %q %v", uri, u, h, ok)
		}
	}
	for _, bad := range []string{"", "tel:+1555", "sip:", "sip:1001@", "sip:[::1"} {
		if _, _, ok := uriUserHost(bad); ok {
			t.Errorf("uriUserHost(%q) ok", bad)
		}
	}
}

func TestSameCallIDNewContactReplacesOld(t *testing.T) {
	r, clock := newTestRegistrar(t, nil)
	reg := func(callID string, cseq int, c string) {
		t.Helper()
		mustRegister(t, r, registration(t, callID, cseq, "1001", "3600", "<"+c+">"))
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
	res := mustRegister(t, r, registration(t, "M", 1, "1001", "600", "<sip:1001@10.0.0.1>;expires=120", "<sip:1001@10.0.0.2>"))
	got := map[ContactExpiry]bool{}
	for _, c := range res.Contacts {
		got[c] = true
	}
	if !got[ContactExpiry{"sip:1001@10.0.0.1", 120}] || !got[ContactExpiry{"sip:1001@10.0.0.2", 600}] || len(got) != 2 {
		t.Fatalf("200 contacts = %+v", res.Contacts)
	}
	// Remove one of them, keep the other.
	res = mustRegister(t, r, registration(t, "M", 2, "1001", "", "<sip:1001@10.0.0.1>;expires=0", "<sip:1001@10.0.0.2>"))
	if len(res.Contacts) != 1 {
		t.Fatalf("partial unregister: %+v", res.Contacts)
	}
}

func TestMaxContactsDropsOldest(t *testing.T) {
	r, clock := newTestRegistrar(t, func(c *Config) { c.MaxContacts = 2 })
	for i, id := range []string{"a", "b", "c"} {
		mustRegister(t, r, registration(t, id, 1, "1001", "", fmt.Sprintf("<sip:1001@10.0.0.%d>", i+1)))
		clock.Advance(time.Second)
	}
	bs := r.Lookup("1001")
	if len(bs) != 2 || bs[0].CallID != "c" || bs[1].CallID != "b" {
		t.Fatalf("bindings = %+v, want c and b", bs)
	}
	res := r.Register(registration(t, "d", 1, "1001", "", "<sip:1001@10.0.1.1>", "<sip:1001@10.0.1.2>", "<sip:1001@10.0.1.3>"))
	if res.Code != 403 {
		t.Fatalf("3 contacts with max 2: %d, want 403", res.Code)
	}
}

func TestNonceSigner(t *testing.T) {
	s := nonceSigner{secret: []byte("k")}
	now := time.Unix(1700000000, 123)
	src := netip.MustParseAddr("192.0.2.1")
	n := s.issue(now, "realm", src, [8]byte{1, 2, 3})
	if at, ok := s.check(n, "realm", netip.MustParseAddr("::ffff:192.0.2.1")); !ok || !at.Equal(now) {
		t.Fatalf("check own nonce: %v %v", at, ok)
	}
	if _, ok := s.check(n, "other", src); ok {
		t.Fatal("nonce valid for another realm")
	}
	if _, ok := s.check(n, "realm", src.Next()); ok {
		t.Fatal("nonce valid from another address")
	}
	if _, ok := (nonceSigner{secret: []byte("k2")}).check(n, "realm", src); ok {
		t.Fatal("nonce valid under another secret")
	}
	b := []byte(n)
	b[5] ^= 1
	if _, ok := s.check(string(b), "realm", src); ok {
		t.Fatal("tampered nonce accepted")
	}
	for _, bad := range []string{"", "!!!", strings.Repeat("A", 200), n[:10]} {
		if _, ok := s.check(bad, "realm", src); ok {
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

func TestMappedIPv4SourceIsUnmapped(t *testing.T) {
	r, _ := newTestRegistrar(t, nil)
	reg := registration(t, "v6", 1, "1001", "", "<sip:1001@192.168.1.20:5060>")
	reg.Source = netip.MustParseAddrPort("[::ffff:192.168.1.20]:5062")
	mustRegister(t, r, reg)
	if got := r.Lookup("1001")[0].Source.String(); got != "192.168.1.20:5062" {
		t.Fatalf("source = %s", got)
	}
}

func TestExpiredBindingDoesNotBlockReRegistration(t *testing.T) {
	var events []Event
	r, clock := newTestRegistrar(t, func(c *Config) { c.Notify = func(e Event) { events = append(events, e) } })
	mustRegister(t, r, registration(t, "E", 50, "1001", "60", "<sip:1001@10.0.0.1>"))
	clock.Advance(2 * time.Minute)
	// Same Call-ID with a lower CSeq (the phone restarted its counter) is
	// fine once the old binding has expired.
	mustRegister(t, r, registration(t, "E", 1, "1001", "60", "<sip:1001@10.0.0.1>"))
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

// noQOP is an RFC 2069 response (no qop, nc or cnonce) to a challenge r
// issued to testSource.
func noQOP(t *testing.T, r *Registrar, user, pass string) DigestRequest {
	t.Helper()
	c, err := digest.ParseChallenge(r.Challenge("127.0.0.1", testSource, false)[0])
	if err != nil {
		t.Fatal(err)
	}
	md := func(s string) string { return hashHex(md5.New(), s) }
	resp := md(md(user+":127.0.0.1:"+pass) + ":" + c.Nonce + ":" + md("REGISTER:sip:127.0.0.1"))
	return DigestRequest{Method: "REGISTER", Domain: "127.0.0.1", RequestHost: "127.0.0.1", Source: testSource,
		Credentials: []string{`Digest username="` + user + `", realm="127.0.0.1", nonce="` + c.Nonce + `", uri="sip:127.0.0.1", response="` + resp + `"`}}
}

// TestReplayTableBounded: the nc table keeps at most maxTrackedNonces
// entries, forgets the first used first, and prunes expired ones.
func TestReplayTableBounded(t *testing.T) {
	var g replayGuard
	t0 := time.Unix(1e9, 0)
	for i := 0; i < maxTrackedNonces+10; i++ {
		if !g.use(strconv.Itoa(i), t0.Add(time.Duration(i)), "00000001") {
			t.Fatalf("first use of nonce %d refused", i)
		}
	}
	if n := g.len(); n != maxTrackedNonces {
		t.Fatalf("%d nonces tracked, bound %d", n, maxTrackedNonces)
	}
	last := strconv.Itoa(maxTrackedNonces + 9)
	if g.use(last, t0, "00000001") || !g.use(last, t0, "00000002") {
		t.Fatal("nc not tracked for a recent nonce")
	}
	g.prune(t0.Add(time.Duration(maxTrackedNonces)))
	if n := g.len(); n != 10 {
		t.Fatalf("%d nonces left after prune, want 10", n)
	}
}
