package sip

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/internal/testphone"
)

// A bridged call's two dialogs, taken out as DialogState and through
// JSON (as a cluster node stores them), are ended by ByeDialog: each
// phone gets a BYE in its dialog with the Reason given, and answers 200.
func TestByeDialogEndsAStoredDialog(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	a := x.inboundLeg(t, 0)
	b, ok := x.core.Channel(a.Var("bridge_uuid"))
	if !ok {
		t.Fatal("no bridged B leg")
	}
	var states []DialogState
	for _, c := range []*call.Channel{a, b} {
		d, ok := DialogOf(c)
		if !ok {
			t.Fatalf("no dialog for %s", c.Name())
		}
		js, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back DialogState
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		states = append(states, back)
	}
	const reason = `Q.850;cause=41;text="NORMAL_TEMPORARY_FAILURE"`
	for _, st := range states {
		if err := x.stack.ByeDialog(ctx, st, reason); err != nil {
			t.Fatalf("ByeDialog %s: %v", st.CallID, err)
		}
	}
	for name, c := range map[string]*testphone.Call{"caller": c1, "callee": in} {
		if err := c.WaitEnded(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bye := c.Bye(); bye == nil || bye.GetHeader("Reason") == nil || !strings.Contains(bye.GetHeader("Reason").Value(), "cause=41") {
			t.Fatalf("%s: BYE %v", name, bye)
		}
	}
	if err := x.stack.ByeDialog(ctx, DialogState{Profile: "nope", CallID: "x"}, ""); err == nil {
		t.Error("ByeDialog on an unknown profile succeeded")
	}
	a.Hangup(call.NormalClearing)
	x.waitIdle(t, ctx)
}
