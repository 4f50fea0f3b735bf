package main

// Whole-PBX benchmarks: the real binary's wiring in process on 127.0.0.1,
// driven by the SIP test phones. They time what a caller and an agent see,
// SIP stack, dialplan, Lua, ACD and media set-up included, which the
// per-package benchmarks (acd, media) leave out.
//
// Run: go test -run XXX -bench . -benchtime 200x ./cmd/ccpbx/

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// latencies collects one duration per iteration and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B, name string) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i].Microseconds())
	}
	b.ReportMetric(at(0.50), name+"-p50-µs")
	b.ReportMetric(at(0.99), name+"-p99-µs")
	b.ReportMetric(float64(s[len(s)-1].Microseconds()), name+"-max-µs")
}

// benchPBX is testPBX at the shipped log level.
func benchPBX(b *testing.B, edit func(*config.Config)) *pbx {
	b.Helper()
	old := testLogLevel
	testLogLevel = "info"
	defer func() { testLogLevel = old }()
	// sipgo reports the test phones' late 100 Trying (after a 407 ended the
	// transaction) on the default logger, one line per call: keep it out
	// of the benchmark's output and timing unless asked for.
	if os.Getenv("CCPBX_TEST_LOG") == "" {
		prev := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
		b.Cleanup(func() { slog.SetDefault(prev) })
	}
	return testPBX(b, edit)
}

// benchAgents is how many agents BenchmarkJoinToAgentInvite rotates
// through. mod_callcenter offers an agent a call only once the second of its
// last bridge's end has passed (last_bridge_end < now - wrap_up_time, in
// whole seconds), even with wrap-up 0; the benchmark waits out that second
// with its timer stopped whenever every agent has finished a call in the
// current one, so no iteration includes it.
const benchAgents = 8

// addBenchAgents adds directory users and callback agents 2001… on tier 1 of
// 3000@default, Logged Out as the shipped agents are.
func addBenchAgents(n int) func(*config.Config) {
	return func(cfg *config.Config) {
		for i := 0; i < n; i++ {
			id := strconv.Itoa(2001 + i)
			cfg.Directory.Users = append(cfg.Directory.Users, config.User{ID: id,
				Params:    map[string]string{"password": "1234"},
				Variables: map[string]string{"user_context": "default", "effective_caller_id_number": id}})
			cfg.Callcenter.Agents = append(cfg.Callcenter.Agents, config.Agent{Name: id, Type: "callback",
				Contact: "[call_timeout=60]user/" + id, Status: "Logged Out", MaxNoAnswer: 3, WrapUpTime: 10,
				RejectDelayTime: 30, BusyDelayTime: 60, NoAnswerDelayTime: 10})
			cfg.Callcenter.Tiers = append(cfg.Callcenter.Tiers, config.Tier{Agent: id, Queue: "3000@default", Level: 1, Position: 1})
		}
	}
}

// BenchmarkJoinToAgentInvite times a queued caller to an agent's phone
// ringing: from the callcenter::info member-queue-start event (the member
// joining 3000@default, right after the PBX answered the trunk call) to the
// INVITE arriving at a registered, Available, idle agent. FreeSWITCH's
// mod_callcenter polls its members every 100 ms, so it takes up to that;
// the target here is p99 < 5 ms. ns/op is one whole call cycle (trunk
// INVITE, answer, join, agent offered, answers, caller hangs up, agent back
// to Waiting), without the waits for a new second described at benchAgents.
func BenchmarkJoinToAgentInvite(b *testing.B) {
	p := benchPBX(b, addBenchAgents(benchAgents))

	// The agents' INVITEs are stamped the moment their phone hands them
	// over, whatever the benchmark loop is waiting for at the time.
	type ring struct {
		agent string
		c     *testphone.Call
		at    time.Time
	}
	rings := make(chan ring, benchAgents)
	for i := 0; i < benchAgents; i++ {
		id := strconv.Itoa(2001 + i)
		ph := agentPhone(b, p, id)
		for _, cmd := range []string{
			"callcenter_config agent set status " + id + " Available",
			"callcenter_config agent set wrap_up_time " + id + " 0",
		} {
			if r := p.api(b, cmd); r != "+OK\n" {
				b.Fatalf("%s: %q", cmd, r)
			}
		}
		go func() {
			for {
				c, err := ph.Incoming(ph.Context())
				if err != nil {
					return
				}
				rings <- ring{id, c, time.Now()}
			}
		}()
	}
	joins, unsub := p.core.Bus.Subscribe(64, func(e *call.Event) bool {
		return e.Subclass == "callcenter::info" && e.Get("CC-Action") == "member-queue-start"
	})
	defer unsub()
	// Everything the ACD and the channels report, kept for the diagnosis
	// of an extra offer.
	all, unsubAll := p.core.Bus.Subscribe(4096, func(e *call.Event) bool {
		return e.Subclass == "callcenter::info" || e.Name == "CHANNEL_HANGUP"
	})
	defer unsubAll()

	trunk := testphone.New(b)
	var lat latencies
	extraOffers := 0
	var usedSecond int64 // the second the last calls ended in
	used := 0            // how many agents ended a call in usedSecond
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if now := time.Now(); now.Unix() == usedSecond && used >= benchAgents {
			b.StopTimer()
			// A real sleep, not synchronisation: the ACD's rule is about the
			// wall clock's second (see benchAgents), so only the clock moving
			// on makes an agent offerable again. The timer is stopped.
			time.Sleep(time.Unix(usedSecond+1, 0).Sub(now) + time.Millisecond)
			b.StartTimer()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		// A number per call: the agent's INVITE carries it (From), which
		// tells this call's offer from a late one of an earlier call.
		caller := fmt.Sprintf("555%07d", i)
		cust, err := trunk.Invite(ctx, p.sip.Addr("blueivr").String(), caller, "3000")
		if err != nil {
			b.Fatal(err)
		}
		var join *call.Event
		select {
		case join = <-joins:
		case <-ctx.Done():
			b.Fatalf("call %d: no member-queue-start", i)
		}
		var r ring
		for r.c == nil {
			select {
			case r = <-rings:
			case <-ctx.Done():
				b.Fatalf("call %d: no agent rang\n%s", i, p.api(b, "callcenter_config agent list"))
			}
			if from := r.c.Request().From(); from == nil || from.Address.User != caller {
				extraOffers++
				b.Logf("call %d: an earlier call's offer reached %s %v after this call's join", i, r.agent, r.at.Sub(join.Time))
				r.c = nil
			}
		}
		lat = append(lat, r.at.Sub(join.Time))

		if err := r.c.Answer(); err != nil {
			b.Fatalf("call %d: agent %s's call cannot be answered (cancelled %v, caller ended %v): %v\nevents since the join:\n%s",
				i, r.agent, r.c.Cancelled(), cust.Ended(), err, drainEvents(all, join.Time))
		}
		if err := r.c.WaitAcked(ctx); err != nil {
			b.Fatal(err)
		}
		if code, err := cust.WaitFinal(ctx); err != nil || code != 200 {
			b.Fatalf("call %d: caller final %d %v", i, code, err)
		}
		if err := cust.Hangup(ctx); err != nil {
			b.Fatal(err)
		}
		if err := r.c.WaitEnded(ctx); err != nil {
			b.Fatalf("call %d: agent leg not ended: %v", i, err)
		}
		cancel()
		waitAgentWaiting(b, p, r.agent)
		// A second INVITE for the same member (seen about once in a few
		// hundred calls here) must not be taken for the next call's. It is
		// counted and shown with the call's events, for acd; one that
		// arrives later still is recognised by its caller number above.
		events := drainEvents(all, join.Time)
		for len(rings) > 0 {
			extra := <-rings
			extraOffers++
			b.Logf("call %d: member offered to %s too (INVITE %v after the join; cancelled %v); events since the join:\n%s",
				i, extra.agent, extra.at.Sub(join.Time), extra.c.Cancelled(), events)
		}
		// Read the clock after the agent is Waiting: the ACD stamped the
		// bridge's end no later than this second.
		if s := time.Now().Unix(); s != usedSecond {
			usedSecond, used = s, 0
		}
		used++
	}
	b.StopTimer()
	lat.report(b, "join-to-invite")
	b.ReportMetric(float64(extraOffers), "extra-offers")
}

// drainEvents empties events and lists those since t, one line each.
func drainEvents(events <-chan *call.Event, t time.Time) string {
	var lines []string
	for len(events) > 0 {
		e := <-events
		if e.Time.Before(t.Add(-10 * time.Millisecond)) {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s agent=%s cause=%s dest=%s uuid=%s", e.Time.Format("15:04:05.000000"),
			e.Name, e.Get("CC-Action"), e.Get("CC-Agent"), e.Get("Hangup-Cause"), e.Get("Caller-Destination-Number"), e.Get("Unique-ID")))
	}
	return strings.Join(lines, "\n")
}

// waitAgentWaiting waits for agent to be Waiting again. The cycle time is
// part of what the benchmark reports: pbxtest.Until checks at once and then
// from 1 ms, so an agent that is back within a few milliseconds, as it is
// here, is seen about as soon as it is.
func waitAgentWaiting(b *testing.B, p *pbx, agent string) {
	b.Helper()
	if !pbxtest.Until(10*time.Second, func() bool { return agentField(b, p, agent, "state") == "Waiting" }) {
		b.Fatalf("agent %s never back to Waiting: %s", agent, p.api(b, "callcenter_config agent list"))
	}
}

// BenchmarkExtensionCall times an internal call, 1001 dialling 1002 (the
// Local_Extension bridge): from sending the INVITE (digest challenge
// included, as a phone does it) to 1002 ringing, and to the caller's 200 OK.
// 1002 answers at once; 1001 hangs up and 1002's leg must end.
func BenchmarkExtensionCall(b *testing.B) {
	p := benchPBX(b, nil)
	caller := agentPhone(b, p, "1001")
	callee := agentPhone(b, p, "1002")
	callee.SetPlan(testphone.Plan{}) // the loop answers, after stamping the INVITE

	var toRing, toAnswer latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		t0 := time.Now()
		c, err := caller.Dial(ctx, "1002")
		if err != nil {
			b.Fatal(err)
		}
		in, err := callee.Incoming(ctx)
		if err != nil {
			b.Fatalf("call %d: 1002 never rang: %v", i, err)
		}
		toRing = append(toRing, time.Since(t0))
		if err := in.Answer(); err != nil {
			b.Fatal(err)
		}
		if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
			b.Fatalf("call %d: final %d %v", i, code, err)
		}
		toAnswer = append(toAnswer, time.Since(t0))
		if err := in.WaitAcked(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Hangup(ctx); err != nil {
			b.Fatal(err)
		}
		if err := in.WaitEnded(ctx); err != nil {
			b.Fatalf("call %d: 1002's leg not ended: %v", i, err)
		}
		cancel()
	}
	b.StopTimer()
	toRing.report(b, "invite-to-ring")
	toAnswer.report(b, "invite-to-200")
}
