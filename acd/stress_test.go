package acd

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
)

// TestRandomTrafficSettles drives every strategy with random caller and
// agent behaviour in virtual time (answers, rejections, timeouts, caller
// hangups, status changes) and checks that once every call has ended
// nothing is left stuck: agents Waiting, tiers Ready or No Answer, no
// live member, no offer in flight.
func TestRandomTrafficSettles(t *testing.T) {
	for _, strategy := range config.Strategies {
		t.Run(strategy.String(), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(7, uint64(len(strategy))))
			h := newHarness(t, queueCfg(strategy, func(q *config.Queue) { q.MaxWaitTime = 90 }), nil, baseEpoch)
			names := []string{"a:1:1", "b:1:2", "c:2:1", "d:2:2"}
			h.agents(names...)
			for _, n := range []string{"a", "b", "c", "d"} {
				h.mustOK("agent set busy_delay_time " + n + " 3")
				h.mustOK("agent set no_answer_delay_time " + n + " 2")
				h.mustOK("agent set wrap_up_time " + n + " 1")
			}
			var callers []*caller
			var legs []*call.Channel
			for step := 0; step < 60; step++ {
				switch rnd.IntN(6) {
				case 0, 1:
					callers = append(callers, h.call(fmt.Sprintf("55%04d", step), q1, nil))
				case 2:
					h.advance(int64(1 + rnd.IntN(5)))
				case 3:
					if len(callers) > 0 {
						i := rnd.IntN(len(callers))
						callers[i].ch.Hangup(call.NormalClearing)
					}
				case 4:
					if len(legs) > 0 {
						legs[rnd.IntN(len(legs))].Hangup(call.NormalClearing)
					}
				case 5:
					n := []string{"a", "b", "c", "d"}[rnd.IntN(4)]
					st := []string{"Available", "On Break", "Available"}[rnd.IntN(3)]
					h.mustOK("agent set status " + n + " '" + st + "'")
				}
				// Answer or fail whatever rings now.
				for {
					var r *dialReq
					if len(h.pending) > 0 {
						r, h.pending = h.pending[0], h.pending[1:]
					} else {
						select {
						case r = <-h.sw.reqs:
						default:
						}
					}
					if r == nil {
						break
					}
					switch rnd.IntN(4) {
					case 0:
						legs = append(legs, r.answer())
					case 1:
						r.fail(call.UserBusy)
					case 2:
						r.fail(call.NoAnswer)
					case 3:
						r.fail(call.CallRejected)
					}
				}
				h.acd.settle()
			}
			// End everything.
			for _, c := range callers {
				c.ch.Hangup(call.NormalClearing)
			}
			for _, l := range legs {
				l.Hangup(call.NormalClearing)
			}
			for _, c := range callers {
				c.wait(t)
			}
			// Offers still ringing were cancelled by the callers' hangups;
			// their goroutines report back asynchronously. Until they have,
			// fail any originate that still arrives and let virtual time
			// run out the agents' delays (busy, no answer, wrap-up), one
			// second per poll. The bound only stops a hung test: if it
			// passes, the checks below say what is stuck.
			settled := func() bool {
				ok := true
				h.acd.do(func() {
					for _, ag := range h.acd.agents {
						ok = ok && ag.State == config.StateWaiting
					}
				})
				return ok
			}
			pbxtest.Until(10*time.Second, func() bool {
				if settled() {
					return true
				}
				select {
				case r := <-h.sw.reqs:
					r.fail(call.NoAnswer)
				default:
				}
				h.advance(1)
				return settled()
			})
			h.acd.do(func() {
				for _, ag := range h.acd.agents {
					if ag.State != config.StateWaiting {
						t.Errorf("agent %s left %s (status %s)", ag.Name, ag.State, ag.Status)
					}
				}
				for _, tr := range h.acd.tiers {
					if tr.State != config.TierReady && tr.State != config.TierNoAnswer {
						t.Errorf("tier %s left %s", tr.Agent, tr.State)
					}
				}
				for _, m := range h.acd.members {
					if m.app != nil || len(m.offers) > 0 {
						t.Errorf("member %s still live (%s, %d offers)", m.CIDNumber, m.State, len(m.offers))
					}
				}
				if len(h.acd.legs) > 0 {
					t.Errorf("%d agent legs still tracked", len(h.acd.legs))
				}
			})
		})
	}
}

// TestNoGoroutineLeak: after calls and Close, the goroutines this test
// started (the ACD's loop, offers, the callers' apps) are gone. TestMain
// checks the whole package; this names the test that leaked.
func TestNoGoroutineLeak(t *testing.T) {
	before := goleak.IgnoreCurrent()
	func() {
		h := newHarness(t, queueCfg("ring-all", nil), nil, baseEpoch)
		h.agents("a", "b")
		c := h.call("5550001", q1, nil)
		leg := h.bridged(h.nextDial())
		c2 := h.call("5550002", q1, nil)
		h.nextDial() // b rings for the second caller
		c.ch.Hangup(call.NormalClearing)
		c.wait(t)
		_ = leg
		h.acd.Close()
		c2.ch.Hangup(call.NormalClearing)
		c2.wait(t)
		h.stopEv()
	}()
	pbxtest.CheckLeaks(t, before)
}
