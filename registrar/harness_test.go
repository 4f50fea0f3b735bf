package registrar

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icholy/digest"

	"ccpbx/config"
	"ccpbx/store"
	"ccpbx/store/storetest"
)

// The registrar's tests drive its API the way the sip package does: a
// Registration for an authenticated REGISTER, a DigestRequest for
// credentials. The SIP side of registering (the 401 dance, the headers of
// the answers, real phones and sipp) is tested in package sip.

// fakeClock is the registrar's clock in tests: nonces and bindings expire
// when the test says so, not after real waiting.
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

func testUsers() []config.User {
	return []config.User{
		{ID: "1001", Params: map[string]string{"password": "1234"}},
		{ID: "1002", Params: map[string]string{"password": "1234"}},
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const phoneSource = "127.0.0.1:5999"

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

// contact parses "<uri>[;expires=N]" the way the sip package fills a
// Contact ("*" is the wildcard).
func contact(t testing.TB, s string) Contact {
	t.Helper()
	if s == "*" {
		return Contact{Wildcard: true}
	}
	uri, params, _ := strings.Cut(strings.TrimPrefix(s, "<"), ">")
	c := Contact{URI: uri}
	if v, ok := strings.CutPrefix(params, ";expires="); ok {
		c.Expires, c.HasExpires = v, true
	}
	scheme, rest, _ := strings.Cut(uri, ":")
	c.Scheme = scheme
	rest, uparams, _ := strings.Cut(rest, ";")
	for _, p := range strings.Split(uparams, ";") {
		if v, ok := strings.CutPrefix(p, "transport="); ok {
			c.Transport = v
		}
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		c.User, rest = rest[:at], rest[at+1:]
	}
	host, port, ok := strings.Cut(rest, ":")
	c.Host = host
	if ok {
		n, err := strconv.Atoi(port)
		if err != nil {
			t.Fatalf("contact %q: %v", s, err)
		}
		c.Port = n
	}
	return c
}

// registration is an authenticated REGISTER of user from phoneSource over
// UDP; expires is the Expires header ("" for none).
func registration(t testing.TB, callID string, cseq int, user, expires string, contacts ...string) Registration {
	t.Helper()
	reg := Registration{User: user, Realm: "127.0.0.1", CallID: callID, CSeq: uint32(cseq),
		Source: netip.MustParseAddrPort(phoneSource), Transport: "udp", UserAgent: "test-phone"}
	if expires != "" {
		reg.Expires, reg.HasExpires = expires, true
	}
	for _, c := range contacts {
		reg.Contacts = append(reg.Contacts, contact(t, c))
	}
	return reg
}

func mustRegister(t testing.TB, r *Registrar, reg Registration) Result {
	t.Helper()
	res := r.Register(reg)
	if res.Code != 200 {
		t.Fatalf("register %+v: %d %s", reg, res.Code, res.Reason)
	}
	return res
}

// testSource is the client address of signed requests.
var testSource = netip.MustParseAddr("127.0.0.1")

// signed is a DigestRequest for method from user with credentials
// computed by an independent digest implementation from a challenge the
// registrar issued.
func signed(t testing.TB, r *Registrar, method, user, pass, alg string) DigestRequest {
	t.Helper()
	dr := DigestRequest{Method: method, Domain: "127.0.0.1", RequestHost: "127.0.0.1", Source: testSource}
	dr.Credentials = []string{credentials(t, r, dr, user, pass, alg)}
	return dr
}

func credentials(t testing.TB, r *Registrar, dr DigestRequest, user, pass, alg string) string {
	t.Helper()
	var chal *digest.Challenge
	for _, v := range r.Challenge(r.Realm(dr.Domain), dr.Source, false) {
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
	uri := "sip:" + dr.RequestHost
	if dr.RequestUser != "" {
		uri = "sip:" + dr.RequestUser + "@" + dr.RequestHost
	}
	cred, err := digest.Digest(chal, digest.Options{Method: dr.Method, URI: uri, Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// storeHarness is a registrar on a store in a directory, so a test can
// restart the process.
type storeHarness struct {
	t   testing.TB
	dir string
	st  *store.Store
	// backend, when set, is the database instead of SQLite in dir.
	backend *storetest.Backend
	r       *Registrar
	clock   *fakeClock
	events  chan Event
}

func newStoreHarness(t testing.TB) *storeHarness { return newStoreHarnessOn(t, nil) }

// newStoreHarnessOn is newStoreHarness on b's database (nil: SQLite).
func newStoreHarnessOn(t testing.TB, b *storetest.Backend) *storeHarness {
	h := &storeHarness{t: t, dir: t.TempDir(), backend: b, clock: &fakeClock{t: time.Now()}, events: make(chan Event, 100)}
	h.open()
	return h
}

func (h *storeHarness) open() {
	h.t.Helper()
	var st *store.Store
	if h.backend != nil {
		st = h.backend.Open(h.t)
	} else {
		var err error
		if st, err = store.Open(h.dir); err != nil {
			h.t.Fatal(err)
		}
	}
	h.st = st
	r, err := New(Config{
		Users: testUsers(), Hostname: "testhost", Profile: "internal", NonceSecret: []byte("test-secret-0123456789abcdef"),
		Algorithms: []string{AlgMD5, AlgSHA256}, Clock: h.clock.Now,
		Notify: func(e Event) {
			select {
			case h.events <- e:
			default:
			}
		},
	}, st, quietLog())
	if err != nil {
		h.t.Fatal(err)
	}
	h.r = r
	h.t.Cleanup(func() {
		r.Close(context.Background())
		st.Close()
	})
}

// restart simulates a clean process restart: close the registrar (its
// queued writes land) and the store, open both again.
func (h *storeHarness) restart() {
	h.t.Helper()
	if err := h.r.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// rows is what the store holds once the queued writes have landed.
func (h *storeHarness) rows() []store.Registration {
	h.t.Helper()
	if err := h.r.sync(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	rows, err := h.st.Registrations(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return rows
}
