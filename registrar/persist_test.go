package registrar

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/store"
	"ccpbx/store/storetest"
)

// gatedStore is a store whose writes wait for open (closed channel: no
// wait), so a test can keep changes in flight; it counts what it is asked.
type gatedStore struct {
	inner store.Registrations
	gate  chan struct{}
	// entered counts writes that reached the gate, calls those past it.
	entered, calls, saves atomic.Int64
	// failFirst writes fail before reaching the store.
	failFirst atomic.Int64
}

func (g *gatedStore) ApplyRegistrations(ctx context.Context, save []store.Registration, del []store.RegistrationKey) error {
	g.entered.Add(1)
	<-g.gate
	g.calls.Add(1)
	if g.failFirst.Add(-1) >= 0 {
		return errors.New("test: store unavailable")
	}
	g.saves.Add(int64(len(save)))
	return g.inner.ApplyRegistrations(ctx, save, del)
}

func (g *gatedStore) Registrations(ctx context.Context) ([]store.Registration, error) {
	return g.inner.Registrations(ctx)
}

func manyUsers(n int) []config.User {
	users := make([]config.User, n)
	for i := range users {
		users[i] = config.User{ID: fmt.Sprintf("u%d", i), Params: map[string]string{"password": "1234"}}
	}
	return users
}

// fields is what a binding keeps across a restart (the store has
// millisecond times).
func fields(b Binding) string {
	return fmt.Sprintf("%s|%s|%s|%s|%d|%d|%d|%s|%s|%s|%s|%s", b.User, b.Realm, b.Contact, b.CallID, b.CSeq,
		b.Expires.UnixMilli(), b.Registered.UnixMilli(), b.Source, b.Transport, b.UserAgent, b.Profile, b.Path)
}

func bindingSet(bs []Binding) map[string]bool {
	m := make(map[string]bool, len(bs))
	for _, b := range bs {
		m[fields(b)] = true
	}
	return m
}

// Many REGISTERs, refreshes and unregisters from concurrent phones, all
// in flight while the store is held back, then a clean stop: the next
// start sees exactly the bindings memory had, and the repeated changes of
// one binding cost one row.
func TestWriteBehindRestartSeesFinalBindings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		clock := &fakeClock{t: time.Now()}
		cfg := Config{Users: manyUsers(20), Profile: "internal", MaxContacts: 3, Clock: clock.Now}
		st := b.Open(t)
		gs := &gatedStore{inner: st, gate: make(chan struct{})}
		r, err := New(cfg, gs, quietLog())
		if err != nil {
			t.Fatal(err)
		}

		const phones, ops = 8, 300
		var wg sync.WaitGroup
		var accepted atomic.Int64
		for p := range phones {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(p), 1))
				for i := range ops {
					user := fmt.Sprintf("u%d", rng.IntN(20))
					port := 5000 + rng.IntN(5)
					// Each phone keeps one Call-ID per contact, its CSeq
					// rising with every request.
					callID := fmt.Sprintf("p%d-%s-%d", p, user, port)
					uri := fmt.Sprintf("<sip:%s@127.0.0.%d:%d>", user, p+1, port)
					var reg Registration
					switch rng.IntN(10) {
					case 0, 1:
						reg = registration(t, callID, i+1, user, "0", uri) // unregister
					case 2:
						reg = registration(t, callID, i+1, user, "0", "*") // all of the user's
					default:
						reg = registration(t, callID, i+1, user, fmt.Sprint(60+rng.IntN(3600)), uri)
					}
					reg.UserAgent = fmt.Sprintf("phone-%d-%d", p, i)
					if res := r.Register(reg); res.Code == 200 {
						accepted.Add(1)
					} else if res.Code != 400 { // a wildcard racing another phone's binding
						t.Errorf("register: %d %s", res.Code, res.Reason)
					}
				}
			}()
		}
		wg.Wait()
		want := r.Bindings()
		close(gs.gate)
		if err := r.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if calls, saves := gs.calls.Load(), gs.saves.Load(); saves >= accepted.Load() || calls > 3 {
			t.Errorf("%d changes written in %d transactions with %d saves: not coalesced", accepted.Load(), calls, saves)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		st2 := b.Open(t)
		defer st2.Close()
		r2, err := New(cfg, st2, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Close(context.Background())
		got := r2.Bindings()
		if len(want) == 0 {
			t.Fatal("the load left no binding; the test checks nothing")
		}
		w, g := bindingSet(want), bindingSet(got)
		for k := range w {
			if !g[k] {
				t.Errorf("lost over the restart: %s", k)
			}
		}
		for k := range g {
			if !w[k] {
				t.Errorf("back after the restart: %s", k)
			}
		}
	})
}

// The queue is bounded: with the store held back and the queue full, a
// REGISTER of a new binding waits; once the store moves it completes and
// everything lands.
func TestWriteBehindQueueBounded(t *testing.T) {
	h := newStoreHarness(t)
	gs := &gatedStore{inner: h.st, gate: make(chan struct{})}
	r, err := newRegistrar(Config{Users: manyUsers(10), Profile: "internal", Clock: h.clock.Now}, gs, quietLog(), h.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.writes.maxPending = 3
	reg := func(user string) Registration {
		return registration(t, "c-"+user, 1, user, "3600", "<sip:"+user+"@127.0.0.1:5000>")
	}
	// u0 is taken by the writer, which then waits at the gate; u1-u3
	// fill the queue.
	mustRegister(t, r, reg("u0"))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return gs.entered.Load() == 1 }, "the writer never took u0")
	for i := 1; i < 4; i++ {
		mustRegister(t, r, reg(fmt.Sprintf("u%d", i)))
	}
	done := make(chan Result, 1)
	go func() { done <- r.Register(reg("u4")) }()
	select {
	case res := <-done:
		t.Fatalf("REGISTER beyond a full queue answered at once: %d", res.Code)
	default:
	}
	close(gs.gate)
	if res := <-done; res.Code != 200 {
		t.Fatalf("REGISTER after the store moved: %d %s", res.Code, res.Reason)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rows := h.rows(); len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
}

// A failing store delays the writes, it does not lose them: the batch is
// retried (behind newer changes of the same bindings) until it lands.
func TestWriteBehindRetriesFailedBatch(t *testing.T) {
	h := newStoreHarness(t)
	gs := &gatedStore{inner: h.st, gate: make(chan struct{})}
	close(gs.gate)
	gs.failFirst.Store(2)
	r, err := newRegistrar(Config{Users: testUsers(), Profile: "internal", Clock: h.clock.Now}, gs, quietLog(), h.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, r, registration(t, "a", 1, "1001", "3600", "<sip:1001@127.0.0.1:5001>"))
	mustRegister(t, r, registration(t, "b", 1, "1002", "3600", "<sip:1002@127.0.0.1:5002>"))
	mustRegister(t, r, registration(t, "b", 2, "1002", "0", "<sip:1002@127.0.0.1:5002>"))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := h.rows()
	if len(rows) != 1 || rows[0].User != "1001" || gs.calls.Load() < 3 {
		t.Fatalf("after %d attempts rows %+v, want only 1001's", gs.calls.Load(), rows)
	}
}
