package dialplan

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
)

func TestCallerHangsUpWhileBLegRings(t *testing.T) {
	h, ep := bridgeHarness(t, "bridge fake/noanswer", "rec after")
	ch, _ := h.channel(map[string]string{"context": "default", "destination_number": "x"})
	done := make(chan error, 1)
	go func() { done <- h.dp.Route(ch.Context(), ch) }()
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		ep.mu.Lock()
		defer ep.mu.Unlock()
		return len(ep.calls) > 0
	}, "the B leg to be dialled")
	ch.Terminated(call.OriginatorCancel) // the caller's CANCEL
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("bridge kept ringing after the caller left")
	}
	if ch.Cause() != call.OriginatorCancel {
		t.Errorf("cause %s", ch.Cause())
	}
}

func TestBridgeErrorDialString(t *testing.T) {
	h, _ := bridgeHarness(t, "bridge error/user_busy")
	ch := h.call(map[string]string{"context": "default", "destination_number": "x"})
	if ch.Cause() != call.UserBusy {
		t.Errorf("cause %s, want USER_BUSY", ch.Cause())
	}
}

// TestBlockingAppsEndTheirGoroutines runs calls through every blocking app
// and checks that their goroutines are all gone afterwards. (TestMain checks
// the whole package too; this test names the apps when they leak.)
func TestBlockingAppsEndTheirGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	func() {
		h, _ := bridgeHarness(t, "set hangup_after_bridge=true", "bridge fake/$1")
		stop := hangupBOnBridge(h, call.NormalClearing)
		h.call(map[string]string{"context": "default", "destination_number": "ok"})
		h.call(map[string]string{"context": "default", "destination_number": "early"})
		h.call(map[string]string{"context": "default", "destination_number": "busy"})
		stop()
		lh := luaHarness(t, map[string]string{"s.lua": `session:answer() session:sleep(1)`}, "s.lua")
		lh.call(map[string]string{"context": "default", "destination_number": "1"})
		for _, c := range []*call.Core{h.core, lh.core} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c.Shutdown(ctx)
			cancel()
		}
	}()
	pbxtest.CheckLeaks(t, before)
}
