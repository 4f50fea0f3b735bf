package guard

import (
	"net/netip"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBans(c *clock, allow ...string) *Bans {
	p := BanPolicy{MaxFailures: 3, Window: time.Minute, BanTime: 10 * time.Minute, Now: c.now}
	for _, a := range allow {
		p.Allow = append(p.Allow, netip.MustParsePrefix(a))
	}
	return NewBans(p)
}

func TestBanAfterMaxFailures(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	b := newTestBans(c)
	ip := netip.MustParseAddr("192.0.2.7")
	for i := 1; i < 3; i++ {
		if b.Failure(ip) || b.Banned(ip) {
			t.Fatalf("banned after %d failures", i)
		}
	}
	if !b.Failure(ip) || !b.Banned(ip) {
		t.Fatal("not banned after 3 failures")
	}
	// The mapped spelling of the same address is the same source.
	if !b.Banned(netip.MustParseAddr("::ffff:192.0.2.7")) {
		t.Error("mapped address not banned")
	}
	if other := netip.MustParseAddr("192.0.2.8"); b.Banned(other) {
		t.Error("another address banned")
	}
	l := b.List()
	if len(l) != 1 || l[0].Addr != ip || l[0].Failures != 3 || !l[0].Until.Equal(c.t.Add(10*time.Minute)) {
		t.Fatalf("List = %+v", l)
	}
	c.advance(10 * time.Minute)
	if b.Banned(ip) || len(b.List()) != 0 {
		t.Fatal("ban outlived BanTime")
	}
	if b.Failure(ip) {
		t.Fatal("failure count survived the ban")
	}
}

func TestFailuresOutsideWindowDoNotAddUp(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	b := newTestBans(c)
	ip := netip.MustParseAddr("2001:db8::1")
	for i := 0; i < 10; i++ {
		if b.Failure(ip) {
			t.Fatalf("banned at failure %d, spread one per 40 s", i+1)
		}
		c.advance(40 * time.Second)
		if i%2 == 1 {
			c.advance(time.Minute) // a new window every other failure
		}
	}
}

func TestLiftAndBan(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	b := newTestBans(c)
	ip := netip.MustParseAddr("198.51.100.1")
	if b.Lift(ip) {
		t.Error("Lift of an unbanned address reported a ban")
	}
	b.Failure(ip)
	b.Failure(ip)
	b.Failure(ip)
	if !b.Lift(ip) || b.Banned(ip) {
		t.Fatal("Lift did not end the ban")
	}
	if b.Failure(ip) {
		t.Fatal("Lift kept the failures")
	}
	if !b.Ban(ip, c.t.Add(time.Hour)) || !b.Banned(ip) {
		t.Fatal("Ban did not ban")
	}
	if b.Ban(netip.MustParseAddr("198.51.100.2"), c.t) {
		t.Error("a ban that already ended was set")
	}
}

func TestAllowListNeverBanned(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	b := newTestBans(c, "10.0.0.0/8")
	ip := netip.MustParseAddr("10.1.2.3")
	for i := 0; i < 10; i++ {
		b.Failure(ip)
	}
	if b.Banned(ip) || b.Ban(ip, c.t.Add(time.Hour)) {
		t.Fatal("allow-listed address banned")
	}
}

func TestDisabled(t *testing.T) {
	b := NewBans(BanPolicy{})
	ip := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 100; i++ {
		if b.Failure(ip) {
			t.Fatal("banned with MaxFailures 0")
		}
	}
}

func TestTableBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	b := NewBans(BanPolicy{MaxFailures: 2, Window: time.Minute, BanTime: time.Minute, MaxTracked: 4, Now: c.now})
	base := netip.MustParseAddr("192.0.2.0")
	ip := base
	for i := 0; i < 100; i++ {
		ip = ip.Next()
		b.Failure(ip)
	}
	if n, m := b.fails.Len(), len(b.bans); n > 4 || m > 4 {
		t.Fatalf("%d sources counted and %d banned, bound 4 each", n, m)
	}
	// Once the windows are over there is room again.
	c.advance(time.Minute)
	fresh := netip.MustParseAddr("203.0.113.1")
	b.Failure(fresh)
	if !b.Failure(fresh) {
		t.Fatal("no room for a new source after the old windows ended")
	}
}

func TestKeyFailuresBanEachFurtherSource(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	var events []BanEvent
	b := NewBans(BanPolicy{MaxFailures: 10, MaxKeyFailures: 4, Window: time.Minute, BanTime: time.Hour, Now: c.now,
		Notify: func(e BanEvent) { events = append(events, e) }})
	ip := netip.MustParseAddr("192.0.2.0")
	// Four sources guess the same account once each: the fourth failure
	// puts the account over its limit and bans the source that made it.
	for i := 1; i <= 4; i++ {
		ip = ip.Next()
		if got := b.FailureFor(ip, "1001"); got != (i == 4) {
			t.Fatalf("source %d banned=%v", i, got)
		}
	}
	ip = ip.Next()
	if !b.FailureFor(ip, "1001") {
		t.Fatal("a further source guessing the same account was not banned")
	}
	if b.FailureFor(ip.Next(), "1002") {
		t.Fatal("a source guessing another account was banned")
	}
	if len(events) != 2 || events[0].Lifted || events[0].Ban.Addr != netip.MustParseAddr("192.0.2.4") {
		t.Fatalf("events = %+v", events)
	}
	b.Lift(ip)
	if len(events) != 3 || !events[2].Lifted || events[2].Ban.Addr != ip {
		t.Fatalf("lift event = %+v", events)
	}
	// The window passes: the account starts afresh.
	c.advance(time.Minute)
	if b.FailureFor(netip.MustParseAddr("198.51.100.9"), "1001") {
		t.Fatal("account still over its limit after the window")
	}
}

func TestCounterBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	n := NewCounter[int](time.Minute, 3, c.now)
	for i := 0; i < 10; i++ {
		n.Add(i)
	}
	if n.Len() != 3 || n.Add(99) != 0 || n.Add(1) != 2 {
		t.Fatalf("len %d", n.Len())
	}
	c.advance(time.Minute)
	if n.Add(99) != 1 || n.Count(1) != 0 {
		t.Fatal("expired windows did not make room")
	}
}
