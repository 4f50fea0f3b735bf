package acd

import (
	"testing"

	"ccpbx/call"
)

// TestViewCopiesTheLoopState: View reports a waiting caller and then the
// bridged agent "In a queue call", and what it returns is a copy that later
// changes do not touch.
func TestViewCopiesTheLoopState(t *testing.T) {
	h := newHarness(t, queueCfg("", nil), nil, baseEpoch)
	h.agents("a")
	c := h.call("5550001", q1, nil)
	v, err := h.acd.View()
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Queues) != 1 || v.Queues[0].Name != q1 {
		t.Fatalf("queues = %+v", v.Queues)
	}
	if len(v.Members) != 1 || v.Members[0].CIDNumber != "5550001" || v.Members[0].JoinedEpoch != baseEpoch {
		t.Fatalf("members = %+v", v.Members)
	}
	before := v.Members[0].State
	h.bridged(h.nextDial())
	after, err := h.acd.View()
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "copy untouched", v.Members[0].State, before)
	var state string
	for _, ag := range after.Agents {
		if ag.Name == "a" {
			state = ag.State
		}
	}
	eq(t, "agent state", state, "In a queue call")
	eq(t, "member state", after.Members[0].State, "Answered")
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
}
