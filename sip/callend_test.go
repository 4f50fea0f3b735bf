package sip

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/media"
)

// Issue 10, "every call ends" and "no media before consent", over SIP: a
// trunk caller reaches blueivr/3000 (music until it hangs up, a queue
// nobody answers) and is left there in each of the ways that used to keep
// a call up forever or aim music at someone who never asked for it.

// queueCall places a trunk call to 3000 and waits for its 200.
func queueCall(t *testing.T, ctx context.Context, x *testPBX, ph *testphone.Phone, opts ...testphone.CallOption) *testphone.Call {
	t.Helper()
	c, err := ph.Invite(ctx, x.trunk(), "5551234", "3000", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("final %d %v (codes %v)", code, err, c.Codes())
	}
	return c
}

// queueCallWorks proves the switch still serves: a normal trunk call to
// 3000 hears music, then hangs up, and no channel is left.
func queueCallWorks(t *testing.T, ctx context.Context, x *testPBX) {
	t.Helper()
	ph := testphone.New(t)
	c := queueCall(t, ctx, x, ph)
	// A live caller talks, so a test's short media timeout spares it.
	var done atomic.Bool
	sent := make(chan error, 1)
	go func() { sent <- c.Audio.SendUntil(ctx, 0x44, done.Load) }()
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return c.Audio.Packets() > 0 }, "music for the next caller")
	err := c.Hangup(ctx)
	done.Store(true)
	<-sent // (its error is the closed audio socket, once hung up)
	if err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

// byeReason waits for the far side's BYE and returns its Reason.
func byeReason(t *testing.T, ctx context.Context, c *testphone.Call) string {
	t.Helper()
	if err := c.WaitEnded(ctx); err != nil {
		t.Fatalf("call not ended: %v", err)
	}
	bye := c.Bye()
	if bye == nil {
		t.Fatal("the call ended without a BYE from ccpbx")
	}
	r := bye.GetHeader("Reason")
	if r == nil {
		return ""
	}
	return r.Value()
}

// endedBy checks that ccpbx ended call c with a BYE whose Reason contains
// reason, and its inbound channel with cause; it returns the channel.
func endedBy(t *testing.T, ctx context.Context, x *testPBX, c *testphone.Call, reason string, cause call.Cause) *call.Channel {
	t.Helper()
	if got := byeReason(t, ctx, c); !strings.Contains(got, reason) {
		t.Errorf("BYE Reason %q, want %q", got, reason)
	}
	in := x.inboundLeg(t, 0)
	<-in.Done()
	if in.Cause() != cause {
		t.Errorf("hangup cause %s, want %s", in.Cause(), cause)
	}
	return in
}

func shortMediaTimeout(d time.Duration) func(*media.Config) {
	return func(c *media.Config) { c.MediaTimeout = d }
}

// A call set up without any SDP (bodiless INVITE, bodiless ACK) has no RTP
// to time out on; the watch starts at the ACK, so it ends with
// MEDIA_TIMEOUT anyway.
func TestBodilessCallEndsAfterMediaTimeout(t *testing.T) {
	x := newTestPBX(t, shortMediaTimeout(300*time.Millisecond))
	ctx := testCtx(t, 20*time.Second)
	ph := testphone.New(t)
	ph.BareAcks()
	c := queueCall(t, ctx, x, ph, testphone.WithoutSDP())
	endedBy(t, ctx, x, c, "MEDIA_TIMEOUT", call.MediaTimeout)
	if c.Audio.Packets() != 0 {
		t.Errorf("a caller without SDP received %d RTP packets", c.Audio.Packets())
	}
	x.waitIdle(t, ctx)
	queueCallWorks(t, ctx, x)
}

// inactive is an SDP offer that puts the call on hold (a=inactive) at the
// phone's own address.
func inactive(a *testphone.Audio) []byte {
	return []byte(strings.Replace(string(a.SDP()), "a=sendrecv", "a=inactive", 1))
}

// A call put on hold by re-INVITE a=inactive, whose phone then sends
// nothing, ends after the hold timeout (the media timeout is long here,
// so only the hold timeout can end it).
func TestHeldCallEndsAfterHoldTimeout(t *testing.T) {
	x := newTestPBX(t, func(c *media.Config) {
		c.MediaTimeout = time.Hour
		c.HoldTimeout = 300 * time.Millisecond
	})
	ctx := testCtx(t, 20*time.Second)
	ph := testphone.New(t)
	c := queueCall(t, ctx, x, ph)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return c.Audio.Packets() > 0 }, "music after the ACK")
	res, err := c.Reinvite(ctx, inactive(c.Audio))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("hold re-INVITE: %v %v", res, err)
	}
	in := endedBy(t, ctx, x, c, "MEDIA_TIMEOUT", call.MediaTimeout)
	if k := in.Media().(*legMedia).leg.TimedOut(); k != media.HoldTimeout {
		t.Errorf("timed out by %s, want the hold timeout", k)
	}
	x.waitIdle(t, ctx)
	queueCallWorks(t, ctx, x)
}

// A 200 OK never ACKed: ccpbx sends no RTP to the SDP address (forged
// INVITEs carrying a victim's address must not turn into RTP floods), and
// at Timer H (64*T1, here the profile's timer_t1x64) it ends the call with
// a BYE, as sofia-sip does: Reason SIP;cause=408 "ACK Timeout", hangup
// cause RECOVERY_ON_TIMER_EXPIRE.
func TestUnackedAnswerGetsByeAtTimerH(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			x := newTestPBXProfiles(t, func(p *config.Profile) { p.TimerT1X64.Duration = time.Second })
			ctx := testCtx(t, 20*time.Second)
			var opts []testphone.Option
			if transport == "tcp" {
				opts = append(opts, testphone.WithTCP())
			}
			ph := testphone.New(t, opts...)
			ph.SkipAcks(1000)
			c := queueCall(t, ctx, x, ph)
			endedBy(t, ctx, x, c, ackTimeoutReason, call.RecoveryOnTimerExpire)
			// The music ran for the whole second, to nobody.
			if n := c.Audio.Packets(); n != 0 {
				t.Errorf("the SDP address of a never-ACKed call received %d RTP packets", n)
			}
			x.waitIdle(t, ctx)
			queueCallWorks(t, ctx, x)
		})
	}
}

// A re-INVITE that moves media to another host (a third party that never
// asked for it) gets no RTP there: ccpbx sends nowhere until RTP arrives
// from the new address or the SIP source, and when the phone speaks from
// its own address the music comes back to it.
func TestReinviteCannotAimMediaAtThirdParty(t *testing.T) {
	x := newTestPBX(t)
	ctx := testCtx(t, 20*time.Second)
	ph := testphone.New(t)
	c := queueCall(t, ctx, x, ph)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return c.Audio.Packets() > 0 }, "music after the ACK")

	victim, err := testphone.NewAudio(netip.MustParseAddr("127.0.0.9"))
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	res, err := c.Reinvite(ctx, victim.SDP())
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("re-INVITE: %v %v", res, err)
	}
	leg := x.inboundLeg(t, 0).Media().(*legMedia).leg
	// The answer is applied before the 200 goes out: from here on the leg
	// sends to nobody.
	if st := leg.Stats(); st.Remote.IsValid() {
		t.Fatalf("after the re-INVITE the leg sends to %v", st.Remote)
	}
	// The phone speaks from its own (the SIP source's) address: music
	// follows it back.
	before := c.Audio.Packets()
	if err := c.Audio.SendUntil(ctx, 0x33, func() bool { return c.Audio.Packets() > before+10 }); err != nil {
		t.Fatalf("music did not come back to the phone: %v", err)
	}
	if n := victim.Packets(); n != 0 {
		t.Errorf("the third party named in the re-INVITE received %d RTP packets", n)
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
	queueCallWorks(t, ctx, x)
}

// A call the dialplan answers and hangs up before the caller's ACK (here
// the first ACK is lost): ccpbx keeps resending its 200, and the BYE
// follows the ACK of a resent 200, not Timer H (a minute here, longer
// than the test may take).
func TestHangupBeforeAckByesAfterTheAck(t *testing.T) {
	x := newTestPBXProfiles(t, func(p *config.Profile) { p.TimerT1X64.Duration = time.Minute })
	ctx := testCtx(t, 20*time.Second)
	ph := testphone.New(t)
	ph.SkipAcks(1)
	c, err := ph.Invite(ctx, x.trunk(), "5551234", "3001")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("final %d %v", code, err)
	}
	endedBy(t, ctx, x, c, "NORMAL_CLEARING", call.NormalClearing)
	if c.Retransmitted200() == 0 {
		t.Error("the 200 was not resent after the hangup, yet the BYE came")
	}
	x.waitIdle(t, ctx)
}
