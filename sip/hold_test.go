package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestUUIDHoldReinvitesAndPlaysMusic: Channel.SetHold (uuid_hold; its reply strings are tested in api) on either leg of a bridged
// call re-INVITEs that leg's phone with a=sendonly, the phone's recvonly
// answer is taken, the partner hears music instead of the relay, and
// uuid_hold off re-INVITEs with a=sendrecv and two-way audio resumes.
func TestUUIDHoldReinvitesAndPlaysMusic(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 20*time.Second)
	a := x.inboundLeg(t, 0)
	var b *call.Channel
	pbxtest.WaitFor(t, 5*time.Second, func() bool { b = a.Bridged(); return b != nil }, "A leg never bridged")

	// The B leg (we are its UAC) held: its phone is re-INVITEd, the caller
	// hears music.
	holdAndResume(t, ctx, b, in, c1, 0x33, 0x44)
	// The A leg (we are its UAS) held: the callee hears music.
	holdAndResume(t, ctx, a, c1, in, 0x55, 0x66)

	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}

// holdAndResume holds leg (whose phone is held), checks
// partner hears music, then takes it off hold and checks audio both ways
// with two fresh fills.
func holdAndResume(t *testing.T, ctx context.Context, leg *call.Channel, held, partner *testphone.Call, f1, f2 byte) {
	t.Helper()
	n := len(held.Reoffers())
	if err := leg.SetHold(true); err != nil {
		t.Fatalf("hold: %v", err)
	}
	offers := held.Reoffers()
	if len(offers) != n+1 || !strings.Contains(offers[n], "a=sendonly") {
		t.Fatalf("hold re-INVITEs %d, last offer:\n%v", len(offers)-n, offers)
	}
	if !leg.Held() {
		t.Fatal("channel not held after uuid_hold")
	}
	music := partner.Audio.Varied()
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return partner.Audio.Varied() > music+10 }, "partner heard no hold music")

	if err := leg.SetHold(false); err != nil {
		t.Fatalf("unhold: %v", err)
	}
	offers = held.Reoffers()
	if len(offers) != n+2 || !strings.Contains(offers[n+1], "a=sendrecv") {
		t.Fatalf("unhold re-INVITEs %d, offers:\n%v", len(offers)-n, offers)
	}
	if leg.Held() {
		t.Fatal("channel still held after uuid_hold off")
	}
	errs := make(chan error, 2)
	go func() {
		errs <- held.Audio.SendUntil(ctx, f1, func() bool { return partner.Audio.Received(f1) > 0 })
	}()
	go func() {
		errs <- partner.Audio.SendUntil(ctx, f2, func() bool { return held.Audio.Received(f2) > 0 })
	}()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("audio after unhold: %v", err)
		}
	}
}

// TestHoldRefusedByPhone: a phone answering the hold re-INVITE with 491
// is not held: SetHold fails, no hold is recorded, the relay stays up.
func TestHoldRefusedByPhone(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 20*time.Second)
	a := x.inboundLeg(t, 0)
	var b *call.Channel
	pbxtest.WaitFor(t, 5*time.Second, func() bool { b = a.Bridged(); return b != nil }, "A leg never bridged")
	in.RefuseReoffers(491)
	if err := b.SetHold(true); err == nil {
		t.Fatal("hold refused with 491 succeeded")
	}
	if b.Held() {
		t.Fatal("a refused hold marked the channel held")
	}
	if n := len(in.Reoffers()); n != 0 {
		t.Fatalf("refused re-INVITE recorded as answered (%d)", n)
	}
	errs := make(chan error, 2)
	go func() { errs <- c1.Audio.SendUntil(ctx, 0x77, func() bool { return in.Audio.Received(0x77) > 0 }) }()
	go func() { errs <- in.Audio.SendUntil(ctx, 0x78, func() bool { return c1.Audio.Received(0x78) > 0 }) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("audio after a refused hold: %v", err)
		}
	}
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}
