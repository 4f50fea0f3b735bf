package registrar

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"ccpbx/store"
	"ccpbx/store/storetest"
)

func TestRegisterCreatesBinding(t *testing.T) {
	h := newStoreHarness(t)
	res := mustRegister(t, h.r, registration(t, "c1", 1, "1001", "3600", "<sip:1001@127.0.0.1:5999;ob>"))
	if len(res.Contacts) != 1 || res.Contacts[0] != (ContactExpiry{URI: "sip:1001@127.0.0.1:5999;ob", Seconds: 3600}) {
		t.Fatalf("200 contacts = %+v", res.Contacts)
	}
	if !res.Date.Equal(h.clock.Now()) {
		t.Fatalf("Date %v, want the registrar's clock", res.Date)
	}
	bs := h.r.Lookup("1001")
	if len(bs) != 1 {
		t.Fatalf("Lookup = %+v", bs)
	}
	b := bs[0]
	if b.Contact != "sip:1001@127.0.0.1:5999;ob" || b.Source.String() != phoneSource || b.Transport != "udp" ||
		b.Realm != "127.0.0.1" || b.UserAgent != "test-phone" || b.Profile != "internal" || b.User != "1001" {
		t.Fatalf("binding = %+v", b)
	}
	if got := b.Expires.Sub(h.clock.Now()); got != time.Hour {
		t.Fatalf("lifetime %v", got)
	}
	if ev := <-h.events; ev.Kind != EventRegister || ev.Binding.Contact != b.Contact {
		t.Fatalf("event = %+v", ev)
	}
}

func TestExpiry(t *testing.T) {
	h := newStoreHarness(t)
	mustRegister(t, h.r, registration(t, "c1", 1, "1001", "60", "<sip:1001@127.0.0.1:5999>"))
	<-h.events // register
	h.clock.Advance(59 * time.Second)
	if len(h.r.Lookup("1001")) != 1 {
		t.Fatal("binding gone before its expiry")
	}
	h.clock.Advance(time.Second)
	if bs := h.r.Lookup("1001"); len(bs) != 0 {
		t.Fatalf("expired binding still returned: %+v", bs)
	}
	if bs := h.r.Bindings(); len(bs) != 0 {
		t.Fatalf("expired binding listed: %+v", bs)
	}
	h.r.sweep()
	if ev := <-h.events; ev.Kind != EventExpire || ev.Binding.User != "1001" {
		t.Fatalf("event = %+v, want expire", ev)
	}
	if rows := h.rows(); len(rows) != 0 {
		t.Fatalf("rows after sweep: %+v", rows)
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	h := newStoreHarness(t)
	mustRegister(t, h.r, registration(t, "c1", 1, "1001", "60", "<sip:1001@127.0.0.1:5999>"))
	<-h.events
	h.clock.Advance(time.Hour)
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.r.Run(c); close(done) }()
	if ev := <-h.events; ev.Kind != EventExpire {
		t.Fatalf("event = %+v, want expire from Run", ev)
	}
	cancel()
	<-done
}

func TestRestartKeepsBindings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		testRestartKeepsBindings(t, newStoreHarnessOn(t, &b))
	})
}

func testRestartKeepsBindings(t *testing.T, h *storeHarness) {
	mustRegister(t, h.r, registration(t, "A", 1, "1001", "3600", "<sip:1001@127.0.0.1:5999>"))
	tcp := registration(t, "B", 1, "1002", "120", "<sip:1002@127.0.0.1:5062;transport=tcp>")
	tcp.Transport, tcp.Source = "tcp", netip.MustParseAddrPort("127.0.0.1:40123")
	// Through a proxy: the Path is kept with the binding, across restarts.
	tcp.Path = "<sip:127.0.0.2:5060;lr;received=sip:127.0.0.1:40123>"
	mustRegister(t, h.r, tcp)
	before := h.r.Bindings()
	// A nonce issued before the restart still verifies after it, because
	// the secret is configured.
	dr := signed(t, h.r, "REGISTER", "1001", "1234", "")

	h.restart()
	after := h.r.Bindings()
	if len(after) != 2 {
		t.Fatalf("after restart %d bindings, want 2: %+v", len(after), after)
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Contact != b.Contact || a.Source != b.Source || a.Transport != b.Transport || a.CallID != b.CallID ||
			a.CSeq != b.CSeq || !a.Expires.Equal(b.Expires.Truncate(time.Millisecond)) || a.Realm != b.Realm ||
			a.Path != b.Path {
			t.Fatalf("binding changed over restart:\n before %+v\n after  %+v", b, a)
		}
	}
	h.clock.Advance(time.Minute)
	if res := h.r.Verify(dr); res.Status != AuthOK {
		t.Fatalf("credentials after restart: %+v", res)
	}
	mustRegister(t, h.r, registration(t, "A", 2, "1001", "3600", "<sip:1001@127.0.0.1:5999>"))
	if n := len(h.r.Lookup("1001")); n != 1 {
		t.Fatalf("%d bindings after refresh, want 1", n)
	}
	// Expired rows are dropped on the next start.
	h.clock.Advance(2 * time.Minute)
	h.restart()
	if got := h.r.Bindings(); len(got) != 1 || got[0].User != "1001" {
		t.Fatalf("after expiry+restart: %+v", got)
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
	h := newStoreHarness(t)
	mustRegister(t, h.r, registration(t, "a", 1, "1001", "3600", "<sip:1001@127.0.0.1:5001>"))
	mustRegister(t, h.r, registration(t, "b", 1, "1001", "3600", "<sip:1001@127.0.0.1:5002>"))
	mustRegister(t, h.r, registration(t, "c", 1, "1002", "3600", "<sip:1002@127.0.0.1:5003>"))
	if n, err := h.r.Flush("1001"); err != nil || n != 2 {
		t.Fatalf("Flush(1001) = %d, %v; want 2", n, err)
	}
	if bs := h.r.Bindings(); len(bs) != 1 || bs[0].User != "1002" {
		t.Fatalf("after flush: %+v", bs)
	}
	if n, err := h.r.Flush(""); err != nil || n != 1 {
		t.Fatalf("Flush(\"\") = %d, %v; want 1", n, err)
	}
	h.restart()
	if bs := h.r.Bindings(); len(bs) != 0 {
		t.Fatalf("flushed bindings came back after restart: %+v", bs)
	}
}

func TestUnregister(t *testing.T) {
	h := newStoreHarness(t)
	mustRegister(t, h.r, registration(t, "a", 1, "1001", "3600", "<sip:1001@127.0.0.1:5001>"))
	mustRegister(t, h.r, registration(t, "b", 1, "1001", "3600", "<sip:1001@127.0.0.1:5002>"))
	res := mustRegister(t, h.r, registration(t, "a", 2, "1001", "0", "<sip:1001@127.0.0.1:5001>"))
	if len(res.Contacts) != 1 || res.Contacts[0].URI != "sip:1001@127.0.0.1:5002" {
		t.Fatalf("after Expires 0: %+v", res.Contacts)
	}
	res = mustRegister(t, h.r, registration(t, "a", 3, "1001", "0", "*"))
	if len(res.Contacts) != 0 || len(h.r.Lookup("1001")) != 0 {
		t.Fatalf("after *: %+v", res.Contacts)
	}
	if rows := h.rows(); len(rows) != 0 {
		t.Fatalf("store rows after unregister: %+v", rows)
	}
}

func TestIntervalTooBriefAndTooLong(t *testing.T) {
	r, _ := newTestRegistrar(t, nil)
	res := r.Register(registration(t, "a", 1, "1001", "30", "<sip:1001@127.0.0.1:5001>"))
	if res.Code != 423 || res.MinExpires != time.Minute {
		t.Fatalf("30 s: %+v", res)
	}
	if len(r.Bindings()) != 0 {
		t.Fatal("423 created a binding")
	}
	res = mustRegister(t, r, registration(t, "a", 2, "1001", "172800", "<sip:1001@127.0.0.1:5001>"))
	if len(res.Contacts) != 1 || res.Contacts[0].Seconds != 7200 {
		t.Fatalf("48 h: %+v, want 7200 s", res.Contacts)
	}
}

func TestQueryListsBindings(t *testing.T) {
	r, clock := newTestRegistrar(t, nil)
	mustRegister(t, r, registration(t, "a", 1, "1001", "3600", "<sip:1001@127.0.0.1:5001>"))
	clock.Advance(100 * time.Second)
	res := mustRegister(t, r, registration(t, "a", 2, "1001", ""))
	if len(res.Contacts) != 1 || res.Contacts[0].Seconds != 3500 {
		t.Fatalf("query contacts = %+v", res.Contacts)
	}
	if b := r.Lookup("1001")[0]; b.CSeq != 1 {
		t.Fatal("query changed bindings")
	}
}

func TestTwoUsersNewestFirst(t *testing.T) {
	r, clock := newTestRegistrar(t, nil)
	mustRegister(t, r, registration(t, "a", 1, "1001", "3600", "<sip:1001@127.0.0.1:5001>"))
	clock.Advance(30 * time.Second)
	mustRegister(t, r, registration(t, "b", 1, "1002", "3600", "<sip:1002@127.0.0.1:5002>"))
	all := r.Bindings()
	if len(all) != 2 || all[0].User != "1002" || all[1].User != "1001" {
		t.Fatalf("Bindings = %+v, want 1002 then 1001 (newest first)", all)
	}
	clock.Advance(time.Second)
	mustRegister(t, r, registration(t, "c", 1, "1002", "3600", "<sip:1002@127.0.0.1:5003>"))
	if got := r.Lookup("1002"); len(got) != 2 || got[0].CallID != "c" {
		t.Fatalf("Lookup(1002) = %+v, want newest first", got)
	}
}

func TestPathIsBoundedAndReplacedOnRefresh(t *testing.T) {
	h := newStoreHarness(t)
	reg := registration(t, "c1", 1, "1001", "3600", "<sip:1001@127.0.0.1:5999>")
	reg.Path = "<sip:127.0.0.2:5060;lr>"
	mustRegister(t, h.r, reg)
	if bs := h.r.Lookup("1001"); len(bs) != 1 || bs[0].Path != reg.Path {
		t.Fatalf("Lookup = %+v, want Path %q", bs, reg.Path)
	}
	// A refresh that came direct forgets the proxy.
	reg = registration(t, "c1", 2, "1001", "3600", "<sip:1001@127.0.0.1:5999>")
	mustRegister(t, h.r, reg)
	if bs := h.r.Lookup("1001"); len(bs) != 1 || bs[0].Path != "" {
		t.Fatalf("after a direct refresh: %+v", bs)
	}
	// An oversized Path is refused and changes nothing.
	reg = registration(t, "c1", 3, "1001", "3600", "<sip:1001@127.0.0.1:6000>")
	reg.Path = "<sip:" + strings.Repeat("a", MaxPathLen) + ";lr>"
	if res := h.r.Register(reg); res.Code != 400 {
		t.Fatalf("oversized Path: %d %s, want 400", res.Code, res.Reason)
	}
	if bs := h.r.Lookup("1001"); len(bs) != 1 || bs[0].Contact != "sip:1001@127.0.0.1:5999" {
		t.Fatalf("after the refused REGISTER: %+v", bs)
	}
}

// TestConnectionClosed: the bindings made over a stream connection go when
// it closes, with an unregister event each, and only those: the same
// phone's binding over its new connection (another source port), a UDP
// binding from the very address and another user's stay.
func TestConnectionClosed(t *testing.T) {
	h := newStoreHarness(t)
	over := func(callID, user, contact, transport, src string) Registration {
		reg := registration(t, callID, 1, user, "3600", contact)
		reg.Transport, reg.Source = transport, netip.MustParseAddrPort(src)
		return reg
	}
	mustRegister(t, h.r, over("old", "1001", "<sip:1001@127.0.0.1:5001;transport=tls>", "tls", "127.0.0.1:40001"))
	mustRegister(t, h.r, over("new", "1001", "<sip:1001@127.0.0.1:5002;transport=tls>", "tls", "127.0.0.1:40002"))
	mustRegister(t, h.r, over("udp", "1001", "<sip:1001@127.0.0.1:40001>", "udp", "127.0.0.1:40001"))
	mustRegister(t, h.r, over("other", "1002", "<sip:1002@127.0.0.1:5003;transport=tcp>", "tcp", "127.0.0.1:40003"))
	for len(h.events) > 0 {
		<-h.events
	}
	if n := h.r.ConnectionClosed("TLS", netip.MustParseAddrPort("[::ffff:127.0.0.1]:40001")); n != 1 {
		t.Fatalf("ConnectionClosed removed %d, want 1", n)
	}
	if ev := <-h.events; ev.Kind != EventUnregister || ev.Binding.CallID != "old" {
		t.Fatalf("event %+v, want unregister of the old binding", ev)
	}
	var left []string
	for _, b := range h.r.Bindings() {
		left = append(left, b.CallID)
	}
	sort.Strings(left)
	if strings.Join(left, ",") != "new,other,udp" {
		t.Fatalf("bindings left: %v", left)
	}
	if n := h.r.ConnectionClosed("udp", netip.MustParseAddrPort("127.0.0.1:40001")); n != 0 {
		t.Fatalf("a UDP 'connection' removed %d bindings", n)
	}
	h.restart()
	if bs := h.r.Lookup("1001"); len(bs) != 2 {
		t.Fatalf("after restart: %+v", bs)
	}
}

// Two registrars on one store are two cluster nodes: a phone registered
// through one is found by the other after its resync, and its removal
// too; no events are sent for bindings another node took.
func TestResyncSharesBindings(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events := 0
	cfg := Config{Users: testUsers(), Profile: "internal", NonceSecret: []byte("test-secret-0123456789abcdef"),
		Algorithms: []string{AlgMD5}, Resync: time.Second}
	n1, err := New(cfg, st, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Notify = func(Event) { events++ }
	n2, err := New(cfg, st, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, n1, registration(t, "a", 1, "1001", "3600", "<sip:1001@127.0.0.1:5001>"))
	if got := n2.Lookup("1001"); len(got) != 0 {
		t.Fatalf("n2 found 1001 before resyncing: %+v", got)
	}
	if err := n2.resync(); err != nil {
		t.Fatal(err)
	}
	if got := n2.Lookup("1001"); len(got) != 1 || got[0].Contact != "sip:1001@127.0.0.1:5001" {
		t.Fatalf("n2 after resync: %+v", got)
	}
	if _, err := n1.Flush("1001"); err != nil {
		t.Fatal(err)
	}
	if err := n2.resync(); err != nil {
		t.Fatal(err)
	}
	if got := n2.Lookup("1001"); len(got) != 0 {
		t.Fatalf("n2 kept a binding n1 removed: %+v", got)
	}
	if events != 0 {
		t.Errorf("n2 sent %d events for n1's bindings", events)
	}
}
