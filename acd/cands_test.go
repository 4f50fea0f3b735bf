package acd

import (
	"testing"

	"ccpbx/call"
)

// TestCandidateRowsFollowChanges: dispatch keeps each queue's candidate
// rows between passes (candCache). For every input a row's selection
// depends on, a caller waits through a pass that used the rows (noDial),
// the input changes, and the next pass must see it: the agent it makes
// eligible is offered, the one it removes is not, the order it changes is
// followed. Inputs that the rows read through their pointers (agent state
// and timers, tier state, level and position) are also poked directly,
// without rowsChanged: checkCands (on in this package's tests) would panic
// if the cache had kept a copy of them.
func TestCandidateRowsFollowChanges(t *testing.T) {
	const ready = baseEpoch + 5
	readyAt := func(h *harness, names ...string) {
		for _, n := range names {
			h.mustOK("agent set ready_time " + n + " " + itoa(ready))
		}
	}
	cases := []struct {
		name   string
		setup  func(h *harness)
		change func(h *harness)
		want   string // agent offered after the change; "" none
	}{
		{"status to Available", func(h *harness) {
			h.agents("a")
			h.mustOK("agent set status a 'Logged Out'")
		}, func(h *harness) { h.mustOK("agent set status a Available") }, "a"},
		{"status to On Break", func(h *harness) {
			h.agents("a")
			readyAt(h, "a")
		}, func(h *harness) { h.mustOK("agent set status a 'On Break'"); h.advance(5) }, ""},
		{"state", func(h *harness) {
			h.agents("a")
			h.mustOK("agent set state a Idle")
		}, func(h *harness) { h.mustOK("agent set state a Waiting") }, "a"},
		{"state poked", func(h *harness) {
			h.agents("a")
			h.mustOK("agent set state a Idle")
		}, func(h *harness) {
			h.acd.do(func() { h.acd.agents["a"].State = "Waiting"; h.acd.dirty = true })
		}, "a"},
		{"tier state", func(h *harness) {
			h.agents("a")
			h.mustOK("tier set state " + q1 + " a Standby")
		}, func(h *harness) { h.mustOK("tier set state " + q1 + " a Ready") }, "a"},
		{"tier added", func(h *harness) {
			h.mustOK("agent add a Callback")
			h.mustOK("agent set contact a user/a")
			h.mustOK("agent set status a Available")
		}, func(h *harness) { h.mustOK("tier add " + q1 + " a 1 1") }, "a"},
		{"tier deleted", func(h *harness) {
			h.agents("a")
			readyAt(h, "a")
		}, func(h *harness) { h.mustOK("tier del " + q1 + " a"); h.advance(5) }, ""},
		{"agent deleted", func(h *harness) {
			h.agents("a")
			readyAt(h, "a")
		}, func(h *harness) { h.mustOK("agent del a"); h.advance(5) }, ""},
		{"agent deleted and added again", func(h *harness) {
			h.agents("a")
			readyAt(h, "a")
		}, func(h *harness) {
			h.mustOK("agent del a")
			h.mustOK("agent add a Callback")
			h.mustOK("agent set contact a user/a2")
			h.mustOK("agent set status a Available")
			h.mustOK("tier add " + q1 + " a 1 1")
		}, "a2"},
		{"level", func(h *harness) {
			h.agents("a:1:1", "b:1:2")
			readyAt(h, "a", "b")
		}, func(h *harness) { h.mustOK("tier set level " + q1 + " a 2"); h.advance(5) }, "b"},
		{"position", func(h *harness) {
			h.agents("a:1:1", "b:1:2")
			readyAt(h, "a", "b")
		}, func(h *harness) { h.mustOK("tier set position " + q1 + " a 3"); h.advance(5) }, "b"},
		{"position poked", func(h *harness) {
			h.agents("a:1:1", "b:1:2")
			readyAt(h, "a", "b")
		}, func(h *harness) {
			h.acd.do(func() { h.acd.findTier(q1, "a").Position = 3 })
			h.advance(5)
		}, "b"},
		{"ready_time", func(h *harness) {
			h.agents("a")
			readyAt(h, "a")
		}, func(h *harness) { h.advance(5) }, "a"},
		{"ready_time cleared", func(h *harness) {
			h.agents("a")
			readyAt(h, "a")
		}, func(h *harness) { h.mustOK("agent set ready_time a 0") }, "a"},
		{"wrap-up", func(h *harness) {
			h.agents("a")
			h.acd.do(func() { h.acd.agents["a"].LastBridgeEnd = baseEpoch })
			h.mustOK("agent set wrap_up_time a 10")
		}, func(h *harness) { h.advance(11) }, "a"},
		{"external calls", func(h *harness) {
			h.agents("a")
			h.acd.do(func() { h.acd.agents["a"].ExternalCallsCount = 1 })
		}, func(h *harness) {
			h.acd.do(func() { h.acd.agents["a"].ExternalCallsCount = 0; h.acd.dirty = true })
		}, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, queueCfg("agent-with-fewest-calls", nil), nil, baseEpoch)
			c.setup(h)
			h.call("5550001", q1, nil)
			h.noDial()
			c.change(h)
			if c.want == "" {
				h.noDial()
				// No offer was launched either (its originate may not
				// have reached the switch yet).
				h.acd.do(func() {
					for _, m := range h.acd.members {
						if len(m.offers) > 0 || m.State != "Waiting" {
							t.Errorf("member %s: %s with %d offers", m.UUID, m.State, len(m.offers))
						}
					}
				})
				return
			}
			eq(t, "offered", dialed(h.nextDial()), c.want)
		})
	}
	// The no-answer back-off: a failed offer holds the agent for
	// no-answer-delay-time, then the same rows offer it again.
	t.Run("no-answer delay", func(t *testing.T) {
		h := newHarness(t, queueCfg("agent-with-fewest-calls", nil), nil, baseEpoch)
		h.agents("a")
		h.mustOK("agent set no_answer_delay_time a 5")
		h.call("5550001", q1, nil)
		h.nextDial().fail(call.NoAnswer)
		h.waitAction("bridge-agent-fail")
		h.noDial()
		h.advance(5)
		eq(t, "offered again", dialed(h.nextDial()), "a")
	})
}
