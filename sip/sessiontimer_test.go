package sip

import (
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/testphone"
)

func TestGrantSessionInterval(t *testing.T) {
	const ours = 1800 * time.Second
	cases := []struct {
		name     string
		ours     time.Duration
		ask      sessionAsk
		want     time.Duration
		tooSmall bool
	}{
		{"off", 0, sessionAsk{supported: true, expires: 600 * time.Second}, 0, false},
		{"caller supports timers", ours, sessionAsk{supported: true}, ours, false},
		{"caller asks for less", ours, sessionAsk{supported: true, expires: 600 * time.Second}, 600 * time.Second, false},
		{"caller asks for more", ours, sessionAsk{supported: true, expires: 7200 * time.Second}, ours, false},
		{"caller's Min-SE wins", 120 * time.Second, sessionAsk{supported: true, minSE: 300 * time.Second}, 300 * time.Second, false},
		{"below RFC 4028's Min-SE", ours, sessionAsk{supported: true, expires: 30 * time.Second}, 0, true},
		{"caller cannot refresh", ours, sessionAsk{}, 0, false},
		{"proxy-inserted Session-Expires, caller cannot refresh", ours, sessionAsk{expires: 600 * time.Second}, 0, false},
		{"caller wants us to refresh", ours, sessionAsk{supported: true, refresher: "uas"}, 0, false},
		{"caller refreshes", ours, sessionAsk{supported: true, refresher: "uac", expires: 900 * time.Second}, 900 * time.Second, false},
	}
	for _, c := range cases {
		got, small := grant(c.ours, c.ask)
		if got != c.want || small != c.tooSmall {
			t.Errorf("%s: grant = %v, %v; want %v, %v", c.name, got, small, c.want, c.tooSmall)
		}
	}
}

// A Session-Expires below 90 s is refused with 422 and Min-SE: 90.
func TestSessionIntervalTooSmall(t *testing.T) {
	x := newTestPBXProfiles(t, func(p *config.Profile) { p.SessionTimeout.Duration = 1800 * time.Second })
	ctx := testCtx(t, 10*time.Second)
	c, err := testphone.New(t).Invite(ctx, x.trunk(), "5551234", "3000",
		testphone.WithHeader("Supported", "timer"), testphone.WithHeader("Session-Expires", "30"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 422 {
		t.Fatalf("final %d, want 422", code)
	}
	if h := c.Final().GetHeader("Min-SE"); h == nil || h.Value() != "90" {
		t.Errorf("Min-SE %v, want 90", h)
	}
	x.waitIdle(t, ctx)
}

// shortSessions lets a test run sessions of seconds (RFC 4028's floor is
// 90 s).
func shortSessions(t *testing.T) {
	old := minSessionExpires
	minSessionExpires = time.Second
	t.Cleanup(func() { minSessionExpires = old })
}

func sessionCall(t *testing.T, x *testPBX) (*testphone.Call, func() string) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	c := queueCall(t, ctx, x, testphone.New(t), testphone.WithHeader("Supported", "timer"))
	se := func() string {
		if h := c.Final().GetHeader("Session-Expires"); h != nil {
			return h.Value()
		}
		return ""
	}
	return c, se
}

// A caller that supports timers but never refreshes is hung up before
// its session expires, with sofia-sip's Reason.
func TestSessionNotRefreshedEnds(t *testing.T) {
	shortSessions(t)
	x := newTestPBXProfiles(t, func(p *config.Profile) { p.SessionTimeout.Duration = 2 * time.Second })
	ctx := testCtx(t, 20*time.Second)
	c, se := sessionCall(t, x)
	if se() != "2;refresher=uac" {
		t.Errorf("200 Session-Expires %q, want 2;refresher=uac", se())
	}
	if h := c.Final().GetHeader("Require"); h == nil || !strings.Contains(h.Value(), "timer") {
		t.Errorf("200 Require %v, want timer", h)
	}
	endedBy(t, ctx, x, c, sessionTimeoutReason, call.RecoveryOnTimerExpire)
	x.waitIdle(t, ctx)
	queueCallWorks(t, ctx, x)
}

// A caller that refreshes with re-INVITEs keeps its call past the
// interval, and each refresh's 200 repeats the session timer.
func TestSessionRefreshedStaysUp(t *testing.T) {
	shortSessions(t)
	x := newTestPBXProfiles(t, func(p *config.Profile) { p.SessionTimeout.Duration = 3 * time.Second })
	ctx := testCtx(t, 30*time.Second)
	c, _ := sessionCall(t, x)
	// The phone refreshes every 400 ms (its behaviour, not
	// synchronisation), ten times: 4 s, past the 3 s interval.
	for i := range 10 {
		res, err := c.Reinvite(ctx, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("refresh %d: %v %v", i, res, err)
		}
		if h := res.GetHeader("Session-Expires"); h == nil || h.Value() != "3;refresher=uac" {
			t.Fatalf("refresh %d: Session-Expires %v", i, h)
		}
		time.Sleep(400 * time.Millisecond)
	}
	if c.Ended() {
		t.Fatalf("a refreshed session was ended (BYE %v)", c.Bye())
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}
