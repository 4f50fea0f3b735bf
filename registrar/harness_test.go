package registrar

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
	"ccpbx/store"
)

// TestMain silences sipgo's package logger (TCP connection bookkeeping
// warnings during restarts are noise here).
func TestMain(m *testing.M) {
	sipmsg.SetDefaultLogger(quietLog())
	os.Exit(m.Run())
}

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

// harness is a registrar behind a real sipgo server on 127.0.0.1:0.
type harness struct {
	t      testing.TB
	dir    string
	st     *store.Store
	r      *Registrar
	clock  *fakeClock
	udp    string // server address for phones
	tcp    string
	events chan Event
	secret []byte

	rmu sync.Mutex // guards r against the server goroutines during restart
}

// reg is the current registrar.
func (h *harness) reg() *Registrar {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	return h.r
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: &fakeClock{t: time.Now()}, events: make(chan Event, 100),
		secret: []byte("test-secret-0123456789abcdef")}
	h.open()
	h.serve()
	return h
}

func (h *harness) config() Config {
	return Config{
		Users: testUsers(), Hostname: "testhost", Profile: "internal", NonceSecret: h.secret,
		Algorithms: []string{AlgMD5, AlgSHA256},
		Notify: func(e Event) {
			select {
			case h.events <- e:
			default:
			}
		},
	}
}

// open (re)opens the store and builds a registrar on it, as a process
// start does.
func (h *harness) open() {
	h.t.Helper()
	st, err := store.Open(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	r, err := newWithClock(h.config(), st, h.clock.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	h.rmu.Lock()
	h.r = r
	h.rmu.Unlock()
	h.t.Cleanup(func() { st.Close() })
}

// restart simulates a process restart: drop the registrar, close the
// store, open both again.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// serve starts a sipgo server whose REGISTER handler is whatever h.r is
// at the time of the request (so restart swaps it).
func (h *harness) serve() {
	h.t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("ccpbx-test"))
	if err != nil {
		h.t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quietLog()))
	if err != nil {
		h.t.Fatal(err)
	}
	srv.OnRegister(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		h.reg().HandleRegister(req, tx)
	})
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.udp = pc.LocalAddr().String()
	h.tcp = ln.Addr().String()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = srv.ServeUDP(pc) }()
	go func() { defer wg.Done(); _ = srv.ServeTCP(ln) }()
	h.t.Cleanup(func() {
		ua.Close()
		pc.Close()
		ln.Close()
		wg.Wait()
	})
}

func newWithClock(cfg Config, st *store.Store, now func() time.Time) (*Registrar, error) {
	return newRegistrar(cfg, st, quietLog(), now)
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// fakeTx records responses; it lets tests drive HandleRegister and
// Authenticate with hand-made (also malformed) requests.
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
