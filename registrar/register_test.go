package registrar

import (
	"context"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/testphone"
	"ccpbx/store"
)

func mustRegister(t *testing.T, p *testphone.Phone, server, user, pass string, exp time.Duration) *sipmsg.Response {
	t.Helper()
	res, err := p.Register(ctx(t), server, user, pass, exp)
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
	h := newHarness(t)
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
	bs := h.reg().Lookup("1001")
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
	if ev := <-h.events; ev.Kind != EventRegister || ev.Binding.Contact != contact.String() {
		t.Fatalf("event = %+v", ev)
	}
	if len(h.reg().Lookup("1002")) != 0 {
		t.Fatal("1002 has bindings")
	}
}

func TestRefreshKeepsOneBinding(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	first := h.reg().Lookup("1001")[0]

	h.clock.Advance(10 * time.Second)
	res, err := p.Refresh(ctx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("refresh: %v %v", res, err)
	}
	// The phone re-used the nonce with nc=2: no new challenge.
	if n := p.RegisterRequests(); n != 1 {
		t.Fatalf("refresh took %d requests, want 1 (pre-emptive credentials)", n)
	}
	bs := h.reg().Lookup("1001")
	if len(bs) != 1 {
		t.Fatalf("after refresh %d bindings, want 1", len(bs))
	}
	if bs[0].CSeq <= first.CSeq || !bs[0].Expires.After(first.Expires) || bs[0].CallID != first.CallID {
		t.Fatalf("refresh did not update: before %+v after %+v", first, bs[0])
	}
}

func TestUnregisterExpiresZero(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	res, err := p.Unregister(ctx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
	if len(contactValues(res)) != 0 {
		t.Fatalf("200 after unregister lists %v", contactValues(res))
	}
	if bs := h.reg().Lookup("1001"); len(bs) != 0 {
		t.Fatalf("binding survived unregister: %+v", bs)
	}
	rows, err := h.st.Registrations(context.Background())
	if err != nil || len(rows) != 0 {
		t.Fatalf("store rows after unregister: %+v %v", rows, err)
	}
}

func TestUnregisterWildcardRemovesAllContacts(t *testing.T) {
	h := newHarness(t)
	a, b := testphone.New(t), testphone.New(t)
	mustRegister(t, a, h.udp, "1001", "1234", time.Hour)
	res := mustRegister(t, b, h.udp, "1001", "1234", time.Hour)
	if len(contactValues(res)) != 2 {
		t.Fatalf("200 lists %v, want both contacts", contactValues(res))
	}
	if n := len(h.reg().Lookup("1001")); n != 2 {
		t.Fatalf("%d bindings, want 2", n)
	}
	res, err := a.UnregisterAll(ctx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister *: %v %v", res, err)
	}
	if bs := h.reg().Lookup("1001"); len(bs) != 0 {
		t.Fatalf("bindings after *: %+v", bs)
	}
}

func TestWrongPasswordGetsNoBinding(t *testing.T) {
	h := newHarness(t)
	good := testphone.New(t)
	mustRegister(t, good, h.udp, "1001", "1234", time.Hour)
	before := h.reg().Lookup("1001")

	bad := testphone.New(t)
	res, err := bad.Register(ctx(t), h.udp, "1001", "wrong", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 {
		t.Fatalf("wrong password: %d, want 401", res.StatusCode)
	}
	if strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale") {
		t.Fatal("wrong password answered with stale=true")
	}
	after := h.reg().Lookup("1001")
	if len(after) != 1 || after[0] != before[0] {
		t.Fatalf("bindings changed: before %+v after %+v", before, after)
	}
	// Unknown user: same answer, no binding.
	res, err = testphone.New(t).Register(ctx(t), h.udp, "9999", "1234", time.Hour)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("unknown user: %v %v", res, err)
	}
	if len(h.reg().Bindings()) != 1 {
		t.Fatalf("bindings = %+v", h.reg().Bindings())
	}
}

func TestStaleNonceIsRechallengedWithStale(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	h.clock.Advance(DefaultNonceTTL + time.Second)
	res, err := p.Refresh(ctx(t))
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
	if got := h.reg().Lookup("1001")[0].Expires; !got.Equal(h.clock.Now().Add(time.Hour)) {
		t.Fatalf("binding not refreshed: expires %v", got)
	}
}

func TestReplayedRequestIsRejected(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	before := h.reg().Lookup("1001")[0]
	h.clock.Advance(time.Minute)
	// Send the very same authenticated REGISTER again (new transaction):
	// its nonce count was used, so it must not refresh anything.
	replay := p.LastRequest()
	replay.RemoveHeader("Via")
	res, err := p.Do(ctx(t), replay)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 401 || !strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("replay answered %d %v", res.StatusCode, res.GetHeader("WWW-Authenticate"))
	}
	if after := h.reg().Lookup("1001")[0]; after != before {
		t.Fatalf("replay changed binding: %+v -> %+v", before, after)
	}
}

func TestSHA256Digest(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t, testphone.WithAlgorithm("SHA-256"))
	mustRegister(t, p, h.udp, "1002", "1234", time.Hour)
	authz := p.LastRequest().GetHeader("Authorization").Value()
	if !strings.Contains(authz, "algorithm=SHA-256") {
		t.Fatalf("phone did not use SHA-256: %s", authz)
	}
	if len(h.reg().Lookup("1002")) != 1 {
		t.Fatal("no binding after SHA-256 registration")
	}
}

func TestTwoPhones(t *testing.T) {
	h := newHarness(t)
	a, b := testphone.New(t), testphone.New(t)
	mustRegister(t, a, h.udp, "1001", "1234", time.Hour)
	h.clock.Advance(30 * time.Second)
	mustRegister(t, b, h.udp, "1002", "1234", time.Hour)
	all := h.reg().Bindings()
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
	got := h.reg().Lookup("1002")
	if len(got) != 2 || got[0].Source != c.Addr() {
		t.Fatalf("Lookup(1002) = %+v, want newest (%v) first", got, c.Addr())
	}
}

func TestExpiry(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", 60*time.Second)
	<-h.events // register
	h.clock.Advance(59 * time.Second)
	if len(h.reg().Lookup("1001")) != 1 {
		t.Fatal("binding gone before its expiry")
	}
	h.clock.Advance(time.Second)
	if bs := h.reg().Lookup("1001"); len(bs) != 0 {
		t.Fatalf("expired binding still returned: %+v", bs)
	}
	if bs := h.reg().Bindings(); len(bs) != 0 {
		t.Fatalf("expired binding listed: %+v", bs)
	}
	h.reg().sweep()
	if ev := <-h.events; ev.Kind != EventExpire || ev.Binding.User != "1001" {
		t.Fatalf("event = %+v, want expire", ev)
	}
	rows, err := h.st.Registrations(context.Background())
	if err != nil || len(rows) != 0 {
		t.Fatalf("rows after sweep: %+v %v", rows, err)
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", 60*time.Second)
	<-h.events
	h.clock.Advance(time.Hour)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.reg().Run(c); close(done) }()
	if ev := <-h.events; ev.Kind != EventExpire {
		t.Fatalf("event = %+v, want expire from Run", ev)
	}
	cancel()
	<-done
}

func TestRestartKeepsBindings(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	q := testphone.New(t, testphone.WithTCP())
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	mustRegister(t, q, h.tcp, "1002", "1234", 120*time.Second)
	before := h.reg().Bindings()

	h.restart()
	after := h.reg().Bindings()
	if len(after) != 2 {
		t.Fatalf("after restart %d bindings, want 2: %+v", len(after), after)
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Contact != b.Contact || a.Source != b.Source || a.Transport != b.Transport || a.CallID != b.CallID ||
			a.CSeq != b.CSeq || !a.Expires.Equal(b.Expires.Truncate(time.Millisecond)) || a.Realm != b.Realm {
			t.Fatalf("binding changed over restart:\n before %+v\n after  %+v", b, a)
		}
	}
	// The phone refreshes against the new process (same Call-ID, new nonce:
	// the cached one still verifies because the secret is configured).
	h.clock.Advance(time.Minute)
	res, err := p.Refresh(ctx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("refresh after restart: %v %v", res, err)
	}
	if n := len(h.reg().Lookup("1001")); n != 1 {
		t.Fatalf("%d bindings after refresh, want 1", n)
	}
	// Expired rows are dropped on the next start.
	h.clock.Advance(2 * time.Minute)
	h.restart()
	if got := h.reg().Bindings(); len(got) != 1 || got[0].User != "1001" {
		t.Fatalf("after expiry+restart: %+v", got)
	}
}

func TestTCPBindingKeepsConnectionSource(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t, testphone.WithTCP())
	mustRegister(t, p, h.tcp, "1001", "1234", time.Hour)
	b := h.reg().Lookup("1001")[0]
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
	h := newHarness(t)
	p := testphone.New(t)
	res, err := p.Register(ctx(t), h.udp, "1001", "1234", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 423 {
		t.Fatalf("status %d, want 423", res.StatusCode)
	}
	if me := res.GetHeader("Min-Expires"); me == nil || me.Value() != "60" {
		t.Fatalf("Min-Expires = %v", me)
	}
	if len(h.reg().Bindings()) != 0 {
		t.Fatal("423 created a binding")
	}
	// Too long is shortened to the maximum instead.
	res = mustRegister(t, p, h.udp, "1001", "1234", 48*time.Hour)
	if got := contactValues(res); len(got) != 1 || !strings.HasSuffix(got[0], ";expires=7200") {
		t.Fatalf("Contact = %v, want expires=7200", got)
	}
}

func TestQueryListsBindings(t *testing.T) {
	h := newHarness(t)
	p := testphone.New(t)
	mustRegister(t, p, h.udp, "1001", "1234", time.Hour)
	h.clock.Advance(100 * time.Second)
	res, err := p.Query(ctx(t))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("query: %v %v", res, err)
	}
	if got := contactValues(res); len(got) != 1 || !strings.HasSuffix(got[0], ";expires=3500") {
		t.Fatalf("query Contact = %v", got)
	}
	if len(h.reg().Lookup("1001")) != 1 {
		t.Fatal("query changed bindings")
	}
}

func TestStoreOpenMemoryWorksWithRegistrar(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := New(Config{Users: testUsers()}, st, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bindings()) != 0 {
		t.Fatal("fresh registrar has bindings")
	}
	if u, ok := r.User("1001"); !ok || u.Password() != "1234" {
		t.Fatalf("User(1001) = %+v %v", u, ok)
	}
	if _, ok := r.User("9"); ok {
		t.Fatal("User(9) found")
	}
}

func TestFlush(t *testing.T) {
	h := newHarness(t)
	mustRegister(t, testphone.New(t), h.udp, "1001", "1234", time.Hour)
	mustRegister(t, testphone.New(t), h.udp, "1001", "1234", time.Hour)
	mustRegister(t, testphone.New(t), h.udp, "1002", "1234", time.Hour)
	if n, err := h.reg().Flush("1001"); err != nil || n != 2 {
		t.Fatalf("Flush(1001) = %d, %v; want 2", n, err)
	}
	if bs := h.reg().Bindings(); len(bs) != 1 || bs[0].User != "1002" {
		t.Fatalf("after flush: %+v", bs)
	}
	if n, err := h.reg().Flush(""); err != nil || n != 1 {
		t.Fatalf("Flush(\"\") = %d, %v; want 1", n, err)
	}
	h.restart()
	if bs := h.reg().Bindings(); len(bs) != 0 {
		t.Fatalf("flushed bindings came back after restart: %+v", bs)
	}
}
