package sip

import (
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/internal/testphone"
	"ccpbx/media"
)

// How calls end: the PBX closing, media timeouts, prompts followed by a
// hangup, and the Q.850 cause taken from a Reason header.

func TestCloseHangsUpLiveCalls(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	x.stack.Close()
	if err := c1.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if c1.Bye() == nil || in.Bye() == nil {
		t.Fatal("a phone got no BYE")
	}
	x.waitIdle(t, ctx)
}

func TestMediaTimeoutHangsUp(t *testing.T) {
	x := newTestPBX(t, func(c *media.Config) { c.MediaTimeout = 500 * time.Millisecond })
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	// The phones stop sending after exchangeAudio; the PBX must notice.
	if err := c1.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
	// Whichever leg noticed first is hung up with MEDIA_TIMEOUT; its
	// bridge peer follows with an ordinary clearing.
	reasons := ""
	for _, c := range []*testphone.Call{c1, in} {
		if b := c.Bye(); b != nil {
			if r := b.GetHeader("Reason"); r != nil {
				reasons += r.Value() + " "
			}
		}
	}
	if !strings.Contains(reasons, "MEDIA_TIMEOUT") {
		t.Errorf("no BYE says MEDIA_TIMEOUT: %s", reasons)
	}
}

func TestPromptIsPlayedThenHungUp(t *testing.T) {
	x := newTestPBX(t)
	p1 := x.phone(t, "1001")
	ctx := testCtx(t, 15*time.Second)
	c, err := p1.Dial(ctx, "300")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if err := c.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Bye() == nil {
		t.Fatal("PBX did not hang up after the prompt")
	}
	if n := c.Audio.Packets(); n < 10 {
		t.Fatalf("heard %d RTP packets of the prompt", n)
	}
	x.waitIdle(t, ctx)
}

func TestCauseFromReason(t *testing.T) {
	cases := map[string]call.Cause{
		`Q.850;cause=17;text="USER_BUSY"`: call.UserBusy,
		`q.850 ; cause=16`:                call.NormalClearing,
		`SIP;cause=200;text="elsewhere"`:  call.CauseNone,
		`Q.850;cause=abc`:                 call.NormalClearing,
	}
	for v, want := range cases {
		req := sipmsg.NewRequest(sipmsg.BYE, sipmsg.Uri{Scheme: "sip", Host: "x"})
		req.AppendHeader(sipmsg.NewHeader("Reason", v))
		got, _ := causeFromReason(req)
		if got != want {
			t.Errorf("%q → %s, want %s", v, got, want)
		}
	}
}

func FuzzCauseFromReason(f *testing.F) {
	f.Add(`Q.850;cause=17;text="USER_BUSY"`)
	f.Add(`Q.850;cause=;;=`)
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\r\n") {
			return
		}
		req := sipmsg.NewRequest(sipmsg.BYE, sipmsg.Uri{Scheme: "sip", Host: "x"})
		req.AppendHeader(sipmsg.NewHeader("Reason", v))
		if c, ok := causeFromReason(req); ok && c.Q850() == 0 && c != call.PickedOff {
			t.Fatalf("%q gave cause %q without a Q.850 code", v, c)
		}
	})
}
