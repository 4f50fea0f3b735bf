package sip

import (
	"context"
	"net"
	"net/netip"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// optionsFrom sends a plain OPTIONS to addr from a socket on src and
// returns the final answer.
func optionsFrom(t *testing.T, src, addr, id string) *sipmsg.Response {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDP([]byte(markerOptions(c.LocalAddr().String(), id)), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("OPTIONS from %s: %v", src, err)
		}
		m, err := sipmsg.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := m.(*sipmsg.Response); ok && r.StatusCode >= 200 {
			return r
		}
	}
}

// TestProfileACL: a request from outside the profile's ACL is answered
// 403 before anything else (sofia's apply-inbound-acl); inside, served.
func TestProfileACL(t *testing.T) {
	x := newTestPBXWith(t, Limits{}, func(ps []config.Profile) { ps[1].ACL = []string{"127.0.0.2/32"} })
	if r := optionsFrom(t, "127.0.0.1", x.trunk(), "acl-out"); r.StatusCode != 403 {
		t.Errorf("outside the ACL: %d, want 403", r.StatusCode)
	}
	if r := optionsFrom(t, "127.0.0.2", x.trunk(), "acl-in"); r.StatusCode != 200 {
		t.Errorf("inside the ACL: %d, want 200", r.StatusCode)
	}
	if r := optionsFrom(t, "127.0.0.1", x.internal(), "acl-other-profile"); r.StatusCode != 200 {
		t.Errorf("a profile without ACL: %d, want 200", r.StatusCode)
	}
}

// ringingTrunkCall starts a trunk call that rings agent phone 1002 until
// cancelled, and waits for its 180.
func ringingTrunkCall(t *testing.T, ctx context.Context, x *testPBX, caller *testphone.Phone) *testphone.Call {
	t.Helper()
	c, err := caller.Invite(ctx, x.trunk(), "5551000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitProvisional(ctx); err != nil {
		t.Fatalf("no 180: %v", err)
	}
	return c
}

// refused checks that a trunk call is answered 503 with Retry-After.
func refused(t *testing.T, ctx context.Context, x *testPBX, caller *testphone.Phone, what string) {
	t.Helper()
	c, err := caller.Invite(ctx, x.trunk(), "5551000", "2000")
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.WaitFinal(ctx)
	if err != nil || code != 503 {
		t.Fatalf("%s: call answered %d, %v; want 503", what, code, err)
	}
	if c.Final().GetHeader("Retry-After") == nil {
		t.Errorf("%s: 503 without Retry-After", what)
	}
}

// TestCallLimits: max_calls_per_ip counts a source's calls up at once,
// max_sessions all SIP legs; a call over either is refused with 503 and
// Retry-After, and the slot is usable again once a call ends.
func TestCallLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  Limits
		prof func([]config.Profile)
	}{
		{"max_calls_per_ip", Limits{}, func(ps []config.Profile) { ps[1].MaxCallsPerIP = 1 }},
		// One trunk call is two legs: the caller's and agent 1002's.
		{"max_sessions", Limits{MaxSessions: 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newTestPBXWith(t, tc.lim, tc.prof)
			ctx := testCtx(t, 20*time.Second)
			agent := x.phone(t, "1002")
			agent.SetPlan(testphone.Plan{Rings: 1})
			caller := testphone.New(t)
			first := ringingTrunkCall(t, ctx, x, caller)
			refused(t, ctx, x, caller, "over the limit")
			if err := first.Cancel(ctx); err != nil {
				t.Fatal(err)
			}
			x.waitIdle(t, ctx)
			second := ringingTrunkCall(t, ctx, x, caller)
			if err := second.Cancel(ctx); err != nil {
				t.Fatal(err)
			}
			x.waitIdle(t, ctx)
			if n := x.stack.limited.Load(); n != 1 {
				t.Errorf("%d calls counted as refused by a limit, want 1", n)
			}
		})
	}
}

// TestUnhealthyRefusesCalls: while Healthy says no (a cluster node that
// lost its lease), new calls get 503 with Retry-After so the proxy tries
// another node; registrations and OPTIONS are served.
func TestUnhealthyRefusesCalls(t *testing.T) {
	var healthy atomic.Bool
	x := newTestPBXWith(t, Limits{Healthy: healthy.Load}, nil)
	ctx := testCtx(t, 20*time.Second)
	agent := x.phone(t, "1002") // REGISTER: 200 even while unhealthy
	agent.SetPlan(testphone.Plan{Rings: 1})
	if r := optionsFrom(t, "127.0.0.1", x.trunk(), "unhealthy-options"); r.StatusCode != 200 {
		t.Errorf("OPTIONS while unhealthy: %d, want 200", r.StatusCode)
	}
	caller := testphone.New(t)
	refused(t, ctx, x, caller, "INVITE while unhealthy")
	healthy.Store(true)
	c := ringingTrunkCall(t, ctx, x, caller)
	if err := c.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

// TestOverloadSheds: while the overload meter says so, new calls and
// registrations get 503 with Retry-After and no digest work; requests of
// calls already up are served; shedding ends with the overload.
func TestOverloadSheds(t *testing.T) {
	x := newTestPBXWith(t, Limits{OverloadDelay: time.Hour}, nil)
	ctx := testCtx(t, 20*time.Second)
	x.stack.overload.on.Store(true)
	p := testphone.New(t)
	res, err := p.Register(ctx, x.internal(), "1001", "1234", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("REGISTER while overloaded: %d (Retry-After %v), want 503 with Retry-After", res.StatusCode, res.GetHeader("Retry-After"))
	}
	if r := optionsFrom(t, "127.0.0.1", x.trunk(), "overload-options"); r.StatusCode != 200 {
		t.Errorf("OPTIONS while overloaded: %d, want 200 (only new calls and registrations are shed)", r.StatusCode)
	}
	refused(t, ctx, x, testphone.New(t), "INVITE while overloaded")
	x.stack.overload.on.Store(false)
	x.phone(t, "1001") // registers: 200
	// Over UDP both were answered from the read loop, before sipgo made
	// a transaction.
	if o := x.stack.overload; o.shed.Load() != 2 || o.early.Load() != 2 {
		t.Errorf("shed %d (%d from the read loop), want 2 (2)", o.shed.Load(), o.early.Load())
	}
}

// TestOverloadMeter: the meter reads the scheduler's latency histogram
// and takes the 90th percentile of what it gained in the interval.
func TestOverloadMeter(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{0, 0.001, 0.01, 0.1, 1},
		Counts:  []uint64{100, 10, 5, 0},
	}
	prev := []uint64{100, 0, 0, 0}
	// Gained: 10 in 1-10 ms, 5 in 10-100 ms; the 90th percentile of 15
	// samples is the 14th, so the 10-100 ms bucket's upper bound.
	if d := percentileDelta(h, prev, 0.9); d != 100*time.Millisecond {
		t.Errorf("p90 = %v, want 100ms", d)
	}
	if d := percentileDelta(h, h.Counts, 0.9); d != 0 {
		t.Errorf("no samples: %v", d)
	}
	o := newOverload(time.Hour)
	var prevH [64]uint64
	for range 9 {
		o.observe(time.Millisecond)
	}
	o.observe(300 * time.Millisecond)
	o.observe(300 * time.Millisecond)
	// 11 handling times, the 10th and 11th 300 ms: p90 falls in the bucket
	// up to 2^29 ns (537 ms).
	if d := o.handlingP90(&prevH); d != 1<<29 {
		t.Errorf("handling p90 = %v, want %v", d, time.Duration(1<<29))
	}
	if d := o.handlingP90(&prevH); d != 0 {
		t.Errorf("handling p90 with nothing new = %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.run(ctx, nil) }()
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return o.last.Load() > 0 }, "a measured delay")
	cancel()
	<-done
	if o.shedding() {
		t.Error("shedding under an hour's limit")
	}
}

func TestRateTable(t *testing.T) {
	rt := newRateTable(2)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0)
	for i := range 2 {
		if !rt.take(a, t0) {
			t.Fatalf("take %d of a burst of 2 refused", i+1)
		}
	}
	if rt.take(a, t0) {
		t.Fatal("third in the same instant allowed")
	}
	if !rt.take(b, t0) {
		t.Fatal("another source shares the bucket")
	}
	if !rt.take(a, t0.Add(500*time.Millisecond)) {
		t.Fatal("no token after half a second at 2/s")
	}
	if rt.take(a, t0.Add(500*time.Millisecond)) {
		t.Fatal("two tokens after half a second at 2/s")
	}
}

// TestRegisterAllowance: the REGISTER concurrency limit refuses beyond
// its allowance, shrinks by a quarter after a slow interval and grows
// after a fast one that used it all.
func TestRegisterAllowance(t *testing.T) {
	o := newOverload(100 * time.Millisecond)
	for range initialAllowed {
		if !o.acquire() {
			t.Fatal("refused within the allowance")
		}
	}
	if o.acquire() {
		t.Fatal("admitted beyond the allowance")
	}
	o.adjust(time.Second)
	if got := o.allowed.Load(); got != initialAllowed*3/4 {
		t.Fatalf("after a slow interval: %d", got)
	}
	for range initialAllowed {
		o.release()
	}
	o.acquire()
	o.adjust(time.Millisecond) // fast, but the allowance was not used up
	if got := o.allowed.Load(); got != initialAllowed*3/4 {
		t.Fatalf("after a fast interval with room: %d", got)
	}
	o.full.Store(true)
	o.adjust(time.Millisecond)
	if got := o.allowed.Load(); got != initialAllowed*3/4+allowedStep {
		t.Fatalf("after a fast full interval: %d", got)
	}
}
