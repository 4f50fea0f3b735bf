package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/media"
	"ccpbx/registrar"
	"ccpbx/sounds"
)

// The SIP side of registering: the REGISTER handler of a profile in front
// of a registrar with a fake clock. What the registrar decides (bindings,
// expiry, persistence, digest outcomes) is tested in package registrar;
// these tests check what phones see.

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// regHarness is a stack with one registering profile on 127.0.0.1.
type regHarness struct {
	stack  *Stack
	p      *profile
	reg    *registrar.Registrar
	clock  *fakeClock
	udp    string
	tcp    string
	events chan registrar.Event
}

func newRegHarness(t testing.TB, start bool, opts ...func(*Options)) *regHarness {
	t.Helper()
	log := testLogger()
	h := &regHarness{clock: &fakeClock{t: time.Now()}, events: make(chan registrar.Event, 100)}
	reg, err := registrar.New(registrar.Config{
		Users: []config.User{
			{ID: "1001", Params: map[string]string{"password": "1234"}},
			{ID: "1002", Params: map[string]string{"password": "1234"}},
		},
		Hostname: "testhost", Profile: "internal", Clock: h.clock.Now,
		Algorithms: []string{registrar.AlgMD5, registrar.AlgSHA256},
		Notify: func(e registrar.Event) {
			select {
			case h.events <- e:
			default:
			}
		},
	}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := media.NewEngine(media.Config{RTPStart: 40000, RTPEnd: 49999, SoundsFS: sounds.FS}, log)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Profiles: []config.Profile{{Name: "internal", ListenIP: "127.0.0.1", Transports: []string{"udp", "tcp"},
			Context: "default", Register: true, AuthCalls: true}},
		Core: call.NewCore("test", log), Registrar: reg, Media: eng, Log: log, UserAgent: "ccpbx-test",
	}
	for _, f := range opts {
		f(&o)
	}
	st, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.stack, h.p, h.reg = st, st.byName["internal"], reg
	if start {
		if err := st.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		h.udp = st.Addr("internal").String()
		h.tcp = h.udp
	}
	t.Cleanup(st.Close)
	return h
}

func regCtx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustRegister(t *testing.T, p *testphone.Phone, server, user, pass string, exp time.Duration) *sipmsg.Response {
	t.Helper()
	res, err := p.Register(regCtx(t), server, user, pass, exp)
	if err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("register %s: %d %s", user, res.StatusCode, res.Reason)
	}
	return res
}

func contactValues(res *sipmsg.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Contact") {
		out = append(out, h.Value())
	}
	return out
}

func TestRegisterCreatesBindingWithObservedSource(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t, testphone.WithUserAgent("MicroSIP/3.21.3"))
	res := mustRegister(t, p, h.udp, "1001", "1234", time.Hour)

	// The 401 dance: challenge first, then 200.
	rs := p.RegisterResponses()
	if len(rs) != 2 || rs[0].StatusCode != 401 {
		t.Fatalf("responses = %v, want 401 then 200", rs)
	}
	chals := rs[0].GetHeaders("WWW-Authenticate")
	if len(chals) != 2 || !strings.Contains(chals[0].Value(), "algorithm=MD5") ||
		!strings.Contains(chals[1].Value(), "algorithm=SHA-256") ||
		!strings.Contains(chals[0].Value(), `qop="auth"`) || !strings.Contains(chals[0].Value(), `realm="127.0.0.1"`) {
		t.Fatalf("challenges = %v", chals)
	}
	contact := p.ContactURI("1001")
	if got, want := contactValues(res), []string{"<" + contact.String() + ">;expires=3600"}; len(got) != 1 || got[0] != want[0] {
		t.Fatalf("200 Contact = %v, want %v", got, want)
	}
	if res.GetHeader("Date") == nil {
		t.Fatal("200 without Date")
	}
	for _, r := range rs {
		if ua := r.GetHeader("User-Agent"); ua == nil || ua.Value() != "ccpbx-test" {
			t.Fatalf("%d without our User-Agent: %v", r.StatusCode, ua)
		}
	}
	bs := h.reg.Lookup("1001")
	if len(bs) != 1 {
		t.Fatalf("Lookup = %+v, want 1 binding", bs)
	}
	b := bs[0]
	if b.Contact != contact.String() || b.Source != p.Addr() || b.Transport != "udp" || b.Realm != "127.0.0.1" ||
		b.UserAgent != "MicroSIP/3.21.3" || b.Profile != "internal" || b.User != "1001" {
		t.Fatalf("binding = %+v (phone at %v)", b, p.Addr())
	}
	if got := b.Expires.Sub(h.clock.Now()); got != time.Hour {
		t.Fatalf("binding lifetime = %v, want 1h", got)
	}
	if ev := <-h.events; ev.Kind != registrar.EventRegister || ev.Binding.Contact != contact.String() {
		t.Fatalf("event = %+v", ev)
	}
	if len(h.reg.Lookup("1002")) != 0 {
		t.Fatal("1002 has bindings")
	}
}

func TestRefreshKeepsOneBinding(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	first := h.reg.Lookup("1001")[0]

	h.clock.Advance(10 * time.Second)
	res, err := p.Refresh(regCtx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("refresh: %v %v", res, err)
	}
	// The phone re-used the nonce with nc=2: no new challenge.
	if n := p.RegisterRequests(); n != 1 {
		t.Fatalf("refresh took %d requests, want 1 (pre-emptive credentials)", n)
	}
	bs := h.reg.Lookup("1001")
	if len(bs) != 1 {
		t.Fatalf("after refresh %d bindings, want 1", len(bs))
	}
	if bs[0].CSeq <= first.CSeq || !bs[0].Expires.After(first.Expires) || bs[0].CallID != first.CallID {
		t.Fatalf("refresh did not update: before %+v after %+v", first, bs[0])
	}
}

func TestUnregisterExpiresZero(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	res, err := p.Unregister(regCtx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
	if len(contactValues(res)) != 0 {
		t.Fatalf("200 after unregister lists %v", contactValues(res))
	}
	if bs := h.reg.Lookup("1001"); len(bs) != 0 {
		t.Fatalf("binding survived unregister: %+v", bs)
	}
}

func TestUnregisterWildcardRemovesAllContacts(t *testing.T) {
	h := newRegHarness(t, true)
	a, b := testphone.New(t), testphone.New(t)
	mustRegister(t, a, h.udp, "1001", "1234", time.Hour)
	res := mustRegister(t, b, h.udp, "1001", "1234", time.Hour)
	if len(contactValues(res)) != 2 {
		t.Fatalf("200 lists %v, want both contacts", contactValues(res))
	}
	res, err := a.UnregisterAll(regCtx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister *: %v %v", res, err)
	}
	if bs := h.reg.Lookup("1001"); len(bs) != 0 {
		t.Fatalf("bindings after *: %+v", bs)
	}
}

func TestWrongPasswordGetsNoBinding(t *testing.T) {
	h := newRegHarness(t, true)
	good := testphone.New(t)
	mustRegister(t, good, h.udp, "1001", "1234", time.Hour)
	before := h.reg.Lookup("1001")

	bad := testphone.New(t)
	res, err := bad.Register(regCtx(t), h.udp, "1001", "wrong", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	if strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale") {
		t.Fatal("wrong password answered with stale=true")
	}
	after := h.reg.Lookup("1001")
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("bindings changed: before %+v after %+v", before, after)
	}
	// Unknown user: same answer, no binding.
	res, err = testphone.New(t).Register(regCtx(t), h.udp, "9999", "1234", time.Hour)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("unknown user: %v %v", res, err)
	}
	if len(h.reg.Bindings()) != 1 {
		t.Fatalf("bindings = %+v", h.reg.Bindings())
	}
}

func TestStaleNonceIsRechallengedWithStale(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	h.clock.Advance(registrar.DefaultNonceTTL + time.Second)
	res, err := p.Refresh(regCtx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("refresh with old nonce: %v %v", res, err)
	}
	rs := p.RegisterResponses()
	if len(rs) != 2 || rs[0].StatusCode != 401 {
		t.Fatalf("responses = %v, want 401 stale then 200", rs)
	}
	for _, c := range rs[0].GetHeaders("WWW-Authenticate") {
		if !strings.Contains(c.Value(), "stale=true") {
			t.Fatalf("challenge without stale=true: %s", c.Value())
		}
	}
	if got := h.reg.Lookup("1001")[0].Expires; !got.Equal(h.clock.Now().Add(time.Hour)) {
		t.Fatalf("binding not refreshed: expires %v", got)
	}
}

func TestReplayedRequestIsRejected(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	before := h.reg.Lookup("1001")[0]
	h.clock.Advance(time.Minute)
	// Send the very same authenticated REGISTER again (new transaction):
	// its nonce count was used, so it must not refresh anything.
	replay := p.LastRequest()
	replay.RemoveHeader("Via")
	res, err := p.Do(regCtx(t), replay)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("replay answered %d %v", res.StatusCode, res.GetHeader("WWW-Authenticate"))
	}
	if after := h.reg.Lookup("1001")[0]; after != before {
		t.Fatalf("replay changed binding: %+v -> %+v", before, after)
	}
}

func TestSHA256Digest(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t, testphone.WithAlgorithm("SHA-256"))
	mustRegister(t, p, h.udp, "1002", "1234", time.Hour)
	authz := p.LastRequest().GetHeader("Authorization").Value()
	if !strings.Contains(authz, "algorithm=SHA-256") {
		t.Fatalf("phone did not use SHA-256: %s", authz)
	}
	if len(h.reg.Lookup("1002")) != 1 {
		t.Fatal("no binding after SHA-256 registration")
	}
}

func TestTwoPhones(t *testing.T) {
	h := newRegHarness(t, true)
	a, b := testphone.New(t), testphone.New(t)
	mustRegister(t, a, h.udp, "1001", "1234", time.Hour)
	h.clock.Advance(30 * time.Second)
	mustRegister(t, b, h.udp, "1002", "1234", time.Hour)
	all := h.reg.Bindings()
	if len(all) != 2 || all[0].User != "1002" || all[1].User != "1001" {
		t.Fatalf("Bindings = %+v, want 1002 then 1001 (newest first)", all)
	}
	if all[0].Source != b.Addr() || all[1].Source != a.Addr() {
		t.Fatalf("sources = %v %v, want %v %v", all[0].Source, all[1].Source, b.Addr(), a.Addr())
	}
	// A phone of 1002 registering twice from two devices: newest first.
	c := testphone.New(t)
	h.clock.Advance(time.Second)
	mustRegister(t, c, h.udp, "1002", "1234", time.Hour)
	got := h.reg.Lookup("1002")
	if len(got) != 2 || got[0].Source != c.Addr() {
		t.Fatalf("Lookup(1002) = %+v, want newest (%v) first", got, c.Addr())
	}
}

func TestTCPBindingKeepsConnectionSource(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t, testphone.WithTCP())
	mustRegister(t, p, h.tcp, "1001", "1234", time.Hour)
	b := h.reg.Lookup("1001")[0]
	if b.Transport != "tcp" {
		t.Fatalf("transport = %q", b.Transport)
	}
	// The source is the phone's connection (ephemeral port), which is where
	// calls must go; the Contact names its listening port.
	if !b.Source.IsValid() || b.Source.Addr().String() != "127.0.0.1" {
		t.Fatalf("source = %v", b.Source)
	}
	if !strings.Contains(b.Contact, "transport=tcp") {
		t.Fatalf("contact = %q", b.Contact)
	}
}

func TestIntervalTooBrief(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	res, err := p.Register(regCtx(t), h.udp, "1001", "1234", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 423 {
		t.Fatalf("status %d, want 423", res.StatusCode)
	}
	if me := res.GetHeader("Min-Expires"); me == nil || me.Value() != "60" {
		t.Fatalf("Min-Expires = %v", me)
	}
	if len(h.reg.Bindings()) != 0 {
		t.Fatal("423 created a binding")
	}
	// Too long is shortened to the maximum instead.
	res = mustRegister(t, p, h.udp, "1001", "1234", 48*time.Hour)
	if got := contactValues(res); len(got) != 1 || !strings.HasSuffix(got[0], ";expires=7200") {
		t.Fatalf("Contact = %v, want expires=7200", got)
	}
}

func TestQueryListsBindings(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	h.clock.Advance(100 * time.Second)
	res, err := p.Query(regCtx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("query: %v %v", res, err)
	}
	if got := contactValues(res); len(got) != 1 || !strings.HasSuffix(got[0], ";expires=3500") {
		t.Fatalf("query Contact = %v", got)
	}
	if len(h.reg.Lookup("1001")) != 1 {
		t.Fatal("query changed bindings")
	}
}

// TestSippRegisters runs test/sipp/register.xml (real SIP software that
// nobody here wrote) against the REGISTER handler. Without sipp (Debian
// package sip-tester) it skips locally and fails in CI, where .ci/run
// installs it.
func TestSippRegisters(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp not installed (Debian package sip-tester); .ci/run installs it")
		}
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	h := newRegHarness(t, true)
	scenario, err := filepath.Abs("../test/sipp/register.xml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// sipp binds the port it is given itself; it may lose it to someone
	// else between PortFor and its bind.
	var port int
	pbxtest.RetryAddrInUse(t, 3, func() error {
		port = pbxtest.PortFor(t, "udp")
		cmd := exec.CommandContext(c, sipp, "-sf", scenario, "-s", "1001", "-ap", "1234", "-m", "1",
			"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-timeout", "20s", "-nostdin", "-trace_err",
			"-error_file", filepath.Join(dir, "err.log"), h.udp)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("sipp failed: %w\n%s", err, out)
		}
		return nil
	})
	bs := h.reg.Lookup("1001")
	if len(bs) != 1 {
		t.Fatalf("bindings after sipp: %+v", bs)
	}
	b := bs[0]
	want := "sip:1001@127.0.0.1:" + strconv.Itoa(port)
	if b.Contact != want || int(b.Source.Port()) != port || b.UserAgent != "sipp-register" || b.Transport != "udp" {
		t.Fatalf("binding = %+v, want contact %s from port %d", b, want, port)
	}
}

// fakeTx records responses; it lets tests drive the handlers with
// hand-made (also malformed) requests.
type fakeTx struct {
	mu        sync.Mutex
	responses []*sipmsg.Response
	done      chan struct{}
}

func newFakeTx() *fakeTx { return &fakeTx{done: make(chan struct{})} }

func (f *fakeTx) Respond(res *sipmsg.Response) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.responses) > 0 {
		return errors.New("second final response")
	}
	f.responses = append(f.responses, res)
	return nil
}
func (f *fakeTx) Acks() <-chan *sipmsg.Request          { return nil }
func (f *fakeTx) OnCancel(sipmsg.FnTxCancel) bool       { return true }
func (f *fakeTx) Terminate()                            {}
func (f *fakeTx) OnTerminate(sipmsg.FnTxTerminate) bool { return true }
func (f *fakeTx) Done() <-chan struct{}                 { return f.done }
func (f *fakeTx) Err() error                            { return nil }

func (f *fakeTx) response(t testing.TB) *sipmsg.Response {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.responses) != 1 {
		t.Fatalf("got %d responses, want 1", len(f.responses))
	}
	return f.responses[0]
}

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
func sign(t testing.TB, h *regHarness, req *sipmsg.Request, user, pass, alg string, proxy bool) {
	t.Helper()
	domain := req.To().Address.Host
	authz := "Authorization"
	if proxy {
		domain, authz = req.From().Address.Host, "Proxy-Authorization"
	}
	var chal *digest.Challenge
	src, _ := netip.ParseAddrPort(req.Source())
	for _, v := range h.reg.Challenge(h.reg.Realm(domain), src.Addr(), false) {
		c, err := digest.ParseChallenge(v)
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

func (h *regHarness) handle(t testing.TB, req *sipmsg.Request) *sipmsg.Response {
	t.Helper()
	tx := newFakeTx()
	h.p.onRegister(req, tx)
	return tx.response(t)
}

func TestBadInputNeverChangesBindings(t *testing.T) {
	h := newRegHarness(t, false)
	ok := rawRegister(t, "cid-1", 10, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
	sign(t, h, ok, "1001", "1234", "", false)
	if res := h.handle(t, ok); res.StatusCode != 200 {
		t.Fatalf("setup register: %d", res.StatusCode)
	}
	before := h.reg.Bindings()

	signed := func(mut func(*sipmsg.Request), headers ...string) func() *sipmsg.Request {
		return func() *sipmsg.Request {
			req := rawRegister(t, "cid-2", 1, "1001", headers...)
			sign(t, h, req, "1001", "1234", "", false)
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
			sign(t, h, req, "1001", "4321", "", false)
			return req
		}, 401},
		{"other user's credentials", func() *sipmsg.Request {
			req := rawRegister(t, "cid-5", 1, "1001", "Contact: <sip:1001@10.9.9.9>")
			sign(t, h, req, "1002", "1234", "", false)
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
			sign(t, h, req, "1001", "1234", "", false)
			return req
		}, 400},
		{"same CSeq", func() *sipmsg.Request {
			req := rawRegister(t, "cid-1", 10, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 0")
			sign(t, h, req, "1001", "1234", "", false)
			return req
		}, 400},
		{"wildcard out of order", func() *sipmsg.Request {
			req := rawRegister(t, "cid-1", 3, "1001", "Contact: *", "Expires: 0")
			sign(t, h, req, "1001", "1234", "", false)
			return req
		}, 400},
		{"empty To user", func() *sipmsg.Request {
			req := rawRegister(t, "cid-6", 1, "", "Contact: <sip:x@10.9.9.9>")
			return req
		}, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.handle(t, c.req())
			if res.StatusCode != c.code {
				t.Fatalf("status %d %s, want %d", res.StatusCode, res.Reason, c.code)
			}
			after := h.reg.Bindings()
			if len(after) != len(before) || after[0] != before[0] {
				t.Fatalf("bindings changed: %+v -> %+v", before, after)
			}
		})
	}
	// 420 names the unsupported extensions.
	res := h.handle(t, signed(nil, "Contact: <sip:1001@10.9.9.9>", "Require: gruu, path")())
	if u := res.GetHeader("Unsupported"); u == nil || u.Value() != "gruu, path" {
		t.Fatalf("Unsupported = %v", u)
	}
	// A flood of tags, overlong and with odd bytes, is not echoed whole.
	flood := "Require: " + strings.Repeat("x<y>"+strings.Repeat("z", 100)+", ", 30)
	res = h.handle(t, signed(nil, "Contact: <sip:1001@10.9.9.9>", flood)())
	u := res.GetHeader("Unsupported")
	if res.StatusCode != 420 || u == nil {
		t.Fatalf("flood: %d %v", res.StatusCode, u)
	}
	tags := strings.Split(u.Value(), ", ")
	if len(tags) != 8 || tags[0] != "xy"+strings.Repeat("z", 30) {
		t.Fatalf("flood echoed as %d tags, first %q", len(tags), tags[0])
	}
	// Answers over UDP go to the packet's source, like INVITE's.
	if res.Destination() != phoneSource {
		t.Fatalf("420 sent to %q, want the source %s", res.Destination(), phoneSource)
	}
}

func TestAuthenticateInvite(t *testing.T) {
	h := newRegHarness(t, false)
	invite := func(headers ...string) *sipmsg.Request {
		msg := "INVITE sip:3000@127.0.0.1 SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-inv\r\n" +
			"From: <sip:1001@127.0.0.1>;tag=ft\r\nTo: <sip:3000@127.0.0.1>\r\nCall-ID: inv-1\r\nCSeq: 1 INVITE\r\n"
		for _, hd := range headers {
			msg += hd + "\r\n"
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
		auth, ok := h.p.authenticate(req, tx, true)
		tx.mu.Lock()
		defer tx.mu.Unlock()
		if ok && len(tx.responses) != 0 {
			t.Fatalf("authenticate succeeded but responded %d", tx.responses[0].StatusCode)
		}
		if !ok && len(tx.responses) != 1 {
			t.Fatalf("authenticate failed with %d responses", len(tx.responses))
		}
		if ok {
			return auth.User, ok, nil
		}
		return auth.User, ok, tx.responses[0]
	}

	_, ok, res := authenticate(invite())
	if ok || res.StatusCode != 407 || len(res.GetHeaders("Proxy-Authenticate")) != 2 {
		t.Fatalf("no credentials: ok=%v res=%v", ok, res)
	}
	req := invite()
	sign(t, h, req, "1001", "1234", "", true)
	if user, ok, _ := authenticate(req); !ok || user != "1001" {
		t.Fatalf("Proxy-Authorization: %q %v", user, ok)
	}
	// Some phones answer a 407 with Authorization.
	req = invite()
	sign(t, h, req, "1002", "1234", "SHA-256", true)
	req.AppendHeader(sipmsg.NewHeader("Authorization", req.GetHeader("Proxy-Authorization").Value()))
	req.RemoveHeader("Proxy-Authorization")
	if user, ok, _ := authenticate(req); !ok || user != "1002" {
		t.Fatalf("Authorization on INVITE: %q %v", user, ok)
	}
	req = invite()
	sign(t, h, req, "1001", "nope", "", true)
	if _, ok, res := authenticate(req); ok || res.StatusCode != 407 || strings.Contains(res.GetHeader("Proxy-Authenticate").Value(), "stale") {
		t.Fatalf("wrong password: ok=%v res=%v", ok, res)
	}
	req = invite()
	sign(t, h, req, "1001", "1234", "", true)
	h.clock.Advance(registrar.DefaultNonceTTL + time.Second)
	if _, ok, res := authenticate(req); ok || res.StatusCode != 407 || !strings.Contains(res.GetHeader("Proxy-Authenticate").Value(), "stale=true") {
		t.Fatalf("expired nonce: ok=%v res=%v", ok, res)
	}
	if _, ok, res := authenticate(invite(`Proxy-Authorization: Digest username=`)); ok || res.StatusCode != 400 {
		t.Fatalf("malformed: ok=%v res=%v", ok, res)
	}
}

// FuzzRegister feeds arbitrary messages to the REGISTER handler: it must
// never panic, never create a binding without valid credentials (the
// fuzzer cannot know the random nonce secret) and never answer 2xx.
func FuzzRegister(f *testing.F) {
	f.Add([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\nFrom: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@127.0.0.1:5999>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1\r\nFrom: <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1001@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nAuthorization: Digest username=\"1001\", realm=\"127.0.0.1\", nonce=\"AAAA\", uri=\"sip:127.0.0.1\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nTo: <sip:1001@127.0.0.1>\r\nContent-Length: 0\r\n\r\n"))
	h := newRegHarness(f, false)
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
		h.p.onRegister(req, tx)
		tx.mu.Lock()
		defer tx.mu.Unlock()
		for _, res := range tx.responses {
			if res.StatusCode < 400 {
				t.Fatalf("answered %d to unauthenticated input", res.StatusCode)
			}
		}
		if bs := h.reg.Bindings(); len(bs) != 0 {
			t.Fatalf("binding created: %+v", bs)
		}
	})
}

// BenchmarkRefresh measures one authenticated REGISTER refresh end to end
// in the handler: digest check, planning and the 200 (no store). The
// client-side digest computation is included in the loop.
func BenchmarkRefresh(b *testing.B) {
	h := newRegHarness(b, false)
	first := rawRegister(b, "bench", 1, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
	src, _ := netip.ParseAddrPort(first.Source())
	chal, err := digest.ParseChallenge(h.reg.Challenge(h.reg.Realm(first.To().Address.Host), src.Addr(), false)[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		req := rawRegister(b, "bench", i+1, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(),
			Username: "1001", Password: "1234", Count: i + 1})
		if err != nil {
			b.Fatal(err)
		}
		req.AppendHeader(sipmsg.NewHeader("Authorization", cred.String()))
		tx := newFakeTx()
		b.StartTimer()
		h.p.onRegister(req, tx)
		if tx.responses[0].StatusCode != 200 {
			b.Fatalf("status %d", tx.responses[0].StatusCode)
		}
	}
}
