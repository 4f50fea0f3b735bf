package call

import (
	"errors"
	"testing"
)

// bridged starts Bridge(a, b) and returns once CHANNEL_BRIDGE was fired,
// with a channel that gets Bridge's result.
func bridged(t *testing.T, c *Core, a, b *Channel) <-chan error {
	t.Helper()
	events, cancel := c.Bus.Subscribe(8, func(e *Event) bool { return e.Name == "CHANNEL_BRIDGE" })
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- c.Bridge(a, b) }()
	select {
	case e := <-events:
		if e.Get("Bridge-A-Unique-ID") != a.UUID() || e.Get("Bridge-B-Unique-ID") != b.UUID() || e.Get("Unique-ID") != a.UUID() {
			t.Errorf("CHANNEL_BRIDGE headers %v", e.Headers)
		}
	case err := <-res:
		t.Fatalf("Bridge returned before bridging: %v", err)
	}
	return res
}

func TestBridge(t *testing.T) {
	tests := []struct {
		name      string
		hangup    func(a, b *Channel)
		aUp       bool
		aCause    Cause
		bCause    Cause
		lastCause string
	}{
		{
			name:   "A hangs up: B follows with A's cause",
			hangup: func(a, b *Channel) { a.Hangup(ManagerRequest) },
			aCause: ManagerRequest, bCause: ManagerRequest,
		},
		{
			name:   "B hangs up: A stays for its dialplan",
			hangup: func(a, b *Channel) { b.Terminated(UserBusy) },
			aUp:    true, bCause: UserBusy, lastCause: "USER_BUSY",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t)
			unbridges := collect(t, c, "CHANNEL_UNBRIDGE")
			ma, mb := &fakeMedia{}, &fakeMedia{}
			a := c.NewChannel(ChannelSpec{Direction: Inbound, Media: ma, Signalling: &fakeSig{}})
			b := c.NewChannel(ChannelSpec{Direction: Outbound, Media: mb, Signalling: &fakeSig{}})
			res := bridged(t, c, a, b)
			if other, _ := ma.state(); other != mb {
				t.Errorf("A's media bridged to %v, want B's", other)
			}
			if a.Var("bridge_uuid") != b.UUID() || b.Var("bridge_uuid") != a.UUID() {
				t.Errorf("bridge_uuid %q / %q", a.Var("bridge_uuid"), b.Var("bridge_uuid"))
			}
			tt.hangup(a, b)
			if err := <-res; err != nil {
				t.Fatalf("Bridge = %v", err)
			}
			if _, n := ma.state(); n != 1 {
				t.Errorf("unbridged %d times, want 1", n)
			}
			if a.Ready() != tt.aUp || a.Cause() != tt.aCause || b.Cause() != tt.bCause {
				t.Errorf("A up=%v cause=%s, B cause=%s", a.Ready(), a.Cause(), b.Cause())
			}
			if got := a.Var("last_bridge_hangup_cause"); got != tt.lastCause {
				t.Errorf("last_bridge_hangup_cause = %q, want %q", got, tt.lastCause)
			}
			if a.Var("last_bridge_to") != b.UUID() {
				t.Errorf("last_bridge_to = %q", a.Var("last_bridge_to"))
			}
			if tt.aUp && a.Var("bridge_uuid") != "" {
				t.Errorf("bridge_uuid still %q after the bridge", a.Var("bridge_uuid"))
			}
			ev := unbridges()
			if len(ev) != 1 || ev[0].Get("Bridge-B-Unique-ID") != b.UUID() {
				t.Errorf("CHANNEL_UNBRIDGE events %v", ev)
			}
			a.Hangup(NormalClearing)
		})
	}
}

func TestBridgeWithoutMedia(t *testing.T) {
	c := newTestCore(t)
	bridges := collect(t, c, "CHANNEL_BRIDGE")
	withMedia := c.NewChannel(ChannelSpec{Media: &fakeMedia{}})
	without := c.NewChannel(ChannelSpec{})
	for _, pair := range [][2]*Channel{{withMedia, without}, {without, withMedia}} {
		err := c.Bridge(pair[0], pair[1])
		if !errors.Is(err, IncompatibleDestination) {
			t.Errorf("Bridge = %v, want INCOMPATIBLE_DESTINATION", err)
		}
		if cause, ok := AsCause(err); !ok || cause != IncompatibleDestination {
			t.Errorf("AsCause(%v) = %s", err, cause)
		}
	}
	if len(bridges()) != 0 || !withMedia.Ready() || !without.Ready() {
		t.Error("a failed bridge fired CHANNEL_BRIDGE or hung up a leg")
	}
}

func TestBridgeMediaError(t *testing.T) {
	c := newTestCore(t)
	bridges := collect(t, c, "CHANNEL_BRIDGE")
	boom := errors.New("codec mismatch")
	a := c.NewChannel(ChannelSpec{Media: &fakeMedia{bridgeErr: boom}})
	b := c.NewChannel(ChannelSpec{Media: &fakeMedia{}})
	if err := c.Bridge(a, b); !errors.Is(err, boom) {
		t.Fatalf("Bridge = %v, want it to wrap %v", err, boom)
	}
	if len(bridges()) != 0 || a.Var("bridge_uuid") != "" {
		t.Error("a failed bridge was announced")
	}
}

// TestHangupAfterBridge: the variable decides whether the A leg ends with
// the B leg, and with which cause.
func TestHangupAfterBridge(t *testing.T) {
	for _, tc := range []struct {
		value  string
		bCause Cause
		hungUp bool
		want   Cause
	}{
		{"true", UserBusy, true, UserBusy},
		{"yes", CauseNone, true, NormalClearing},
		{"false", NormalClearing, false, CauseNone},
		{"", NormalClearing, false, CauseNone},
	} {
		c := newTestCore(t)
		a := c.NewChannel(ChannelSpec{Vars: map[string]string{"hangup_after_bridge": tc.value}})
		b := c.NewChannel(ChannelSpec{})
		if tc.bCause != CauseNone {
			b.Hangup(tc.bCause)
		}
		if got := HangupAfterBridge(a, b); got != tc.hungUp {
			t.Errorf("%q: HangupAfterBridge = %v", tc.value, got)
		}
		if a.Cause() != tc.want {
			t.Errorf("%q: a's cause %q, want %q", tc.value, a.Cause(), tc.want)
		}
	}
	// A leg already gone is left alone.
	c := newTestCore(t)
	a := c.NewChannel(ChannelSpec{Vars: map[string]string{"hangup_after_bridge": "true"}})
	a.Hangup(OriginatorCancel)
	if HangupAfterBridge(a, c.NewChannel(ChannelSpec{})) || a.Cause() != OriginatorCancel {
		t.Error("a hung-up A leg was hung up again")
	}
}

// TestTransferLeavesBridge: uuid_transfer of a bridged A leg ends the
// bridge, hangs up the B leg and leaves A up for its new extension, and
// hangup_after_bridge does not hang it up on the way.
func TestTransferLeavesBridge(t *testing.T) {
	c := newTestCore(t)
	a := c.NewChannel(ChannelSpec{Name: "a", Direction: Inbound, Media: &fakeMedia{}, Signalling: &fakeSig{},
		Vars: map[string]string{"destination_number": "3000", "hangup_after_bridge": "true"}})
	defer a.Hangup(NormalClearing)
	b, _ := newLeg(c, "b")
	b.SetMedia(&fakeMedia{})
	bridged, stop := c.Bus.Subscribe(1, func(e *Event) bool { return e.Name == "CHANNEL_BRIDGE" })
	defer stop()
	done := make(chan error, 1)
	go func() { done <- c.Bridge(a, b) }()
	<-bridged
	a.Transfer("4000", "")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	if HangupAfterBridge(a, b) || !a.Ready() || a.Var("destination_number") != "4000" || !a.TakeTransfer() {
		t.Errorf("A after the transfer: ready=%v dest=%q", a.Ready(), a.Var("destination_number"))
	}
}
