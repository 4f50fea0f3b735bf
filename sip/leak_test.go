package sip

import (
	"bytes"
	"context"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"ccpbx/internal/testphone"
)

// TestNoGoroutinesLeftAfterCalls runs answered, cancelled and busy calls on
// a PBX, shuts everything down, and checks every goroutine it started has
// ended.
func TestNoGoroutinesLeftAfterCalls(t *testing.T) {
	before := runtime.NumGoroutine()
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
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for runtime.NumGoroutine() > before {
		select {
		case <-ctx.Done():
			var b bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			var ours []string
			for _, g := range strings.Split(b.String(), "\n\n") {
				if strings.Contains(g, "ccpbx/") {
					ours = append(ours, g)
				}
			}
			t.Fatalf("%d goroutines before, %d after; ours:\n%s", before, runtime.NumGoroutine(), strings.Join(ours, "\n\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
