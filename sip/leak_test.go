package sip

import (
	"bytes"
	"context"
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
	// Only goroutines running our code count: sipgo itself can strand a
	// UDP socket when a datagram read just before a UserAgent closes is
	// answered after its pool was emptied (a library shutdown race that
	// only matters at process exit).
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		ours := ourGoroutines()
		if len(ours) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d goroutines of ours still running:\n%s", len(ours), strings.Join(ours, "\n\n"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ourGoroutines() []string {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	var ours []string
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "ccpbx/") && !strings.Contains(g, "sip.TestNoGoroutinesLeftAfterCalls") && !strings.Contains(g, "testing.tRunner") {
			ours = append(ours, g)
		}
	}
	return ours
}
