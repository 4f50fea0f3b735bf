package sip

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestNoGoroutinesLeftAfterCalls runs answered, cancelled and busy calls on
// a PBX, shuts everything down, and checks every goroutine it started has
// ended: ccpbx's and sipgo's alike.
func TestNoGoroutinesLeftAfterCalls(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Run("calls", func(t *testing.T) {
		x := newTestPBX(t)
		c1, in := answered(t, x)
		ctx := testCtx(t, 10*time.Second)
		if err := c1.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.WaitEnded(ctx); err != nil {
			t.Fatal(err)
		}
		p1, p3 := x.phone(t, "1001"), x.phone(t, "1003")
		c, err := p1.Dial(ctx, "1003")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p3.Incoming(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitProvisional(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitFinal(ctx); err != nil {
			t.Fatal(err)
		}
		p3.SetPlan(testphone.Plan{Status: 486})
		c, err = p1.Dial(ctx, "1003")
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := c.WaitFinal(ctx); code != 486 {
			t.Fatalf("busy final %d", code)
		}
		x.waitIdle(t, ctx)
	})
	pbxtest.CheckLeaks(t, before)
}

// TestMain fails the package's run if any test left a goroutine running.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }
