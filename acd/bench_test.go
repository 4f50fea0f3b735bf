package acd

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// instantSwitch reports each originate on a channel and then rings until
// cancelled, so benchmarks measure the ACD, not a phone.
type instantSwitch struct{ dialed chan time.Time }

func (s *instantSwitch) Originate(ctx context.Context, dial string, o call.OriginateOptions) (*call.Channel, error) {
	select {
	case s.dialed <- time.Now():
	default:
	}
	<-ctx.Done()
	return nil, call.OriginatorCancel
}

func (s *instantSwitch) Bridge(a, b *call.Channel) error { return nil }

// ringingEndpoint is a "user/" endpoint that reports when it is asked to
// place a leg (where sip would send the INVITE) and rings until cancelled.
type ringingEndpoint struct{ dialed chan time.Time }

func (e *ringingEndpoint) Dial(ctx context.Context, target string, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	select {
	case e.dialed <- time.Now():
	default:
	}
	<-ctx.Done()
	return nil, call.OriginatorCancel
}

// BenchmarkJoinToOriginate measures a member joining a queue with an idle
// agent (the callcenter app's join message) until the switch core's "user"
// endpoint is asked to place the agent's leg, through the real
// call.Core.Originate: the step FreeSWITCH takes up to 100 ms for, on its
// dispatcher poll. It reports p50/p99.
func BenchmarkJoinToOriginate(b *testing.B) {
	defer benchRows()()
	core := call.NewCore("bench", quietLog())
	ep := &ringingEndpoint{dialed: make(chan time.Time, 1)}
	core.RegisterEndpoint("user", ep)
	a, err := New(queueCfg("longest-idle-agent", nil), core, nil, Options{Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	a.command("agent add a Callback")
	a.command("agent set contact a [call_timeout=60]user/a")
	a.command("tier add " + q1 + " a")
	a.command("agent set status a Available")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ch := core.NewChannel(call.ChannelSpec{Name: "bench", Vars: map[string]string{"caller_id_number": "1"}})
		ch.MarkAnswered()
		start := time.Now()
		var m *Member
		a.do(func() { m = a.join(ch, q1).m })
		at := <-ep.dialed
		lat = append(lat, at.Sub(start))
		b.StopTimer()
		a.do(func() { a.leave(m, config.ReasonBreakOut); a.dropMember(m) })
		ch.Hangup(call.NormalClearing)
		for state := config.AgentState(""); state != config.StateWaiting; {
			a.do(func() { state = a.agents["a"].State })
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkDispatchDecision measures one dispatch pass with 1,000 waiting
// members and 500 agents in one queue, one of whom has just become free.
func BenchmarkDispatchDecision(b *testing.B) {
	defer benchRows()()
	core := call.NewCore("bench", quietLog())
	sw := &instantSwitch{dialed: make(chan time.Time, 1)}
	a, err := New(queueCfg("longest-idle-agent", func(q *config.Queue) {}), core, nil, Options{Log: quietLog(), Switch: sw})
	if err != nil {
		b.Fatal(err)
	}
	a.addQueue(a.lookupQueue(q1))
	// Start's loadStats, without a store.
	a.stats = map[statKey]*store.StatsRow{}
	close(a.quit) // no loop: the benchmark drives dispatch itself
	defer func() {
		for _, m := range a.members {
			for _, o := range m.offers {
				o.cancel(call.OriginatorCancel)
			}
		}
	}()
	for i := 0; i < 500; i++ {
		n := fmt.Sprintf("agent%03d", i)
		a.agentAdd(n, "Callback")
		a.agents[n].Contact = "user/" + n
		a.agents[n].Status = config.StatusAvailable
		a.agents[n].State = config.StateInAQueueCall
		a.addTier(q1, n, int64(1+i%3), int64(i))
	}
	now := a.now()
	for i := 0; i < 1000; i++ {
		a.memberSeq++
		m := &Member{MemberRow: store.MemberRow{Queue: q1, InstanceID: a.instanceID, UUID: fmt.Sprintf("m%04d", i),
			JoinedEpoch: now - int64(i%300)}, State: config.MemberWaiting, seq: a.memberSeq,
			app:    &memberApp{found: make(chan *offer, 1), exit: make(chan config.CancelReason, 1)},
			offers: map[string]*offer{}}
		a.members[m.UUID] = m
	}
	free := a.agents["agent250"]
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		free.State = config.StateWaiting
		for _, t := range a.tiers {
			t.State = config.TierReady
		}
		for _, m := range a.members {
			for _, o := range m.offers {
				o.cancel(call.OriginatorCancel)
			}
			m.State, m.ServingAgent, m.offers = config.MemberWaiting, "", map[string]*offer{}
		}
		b.StartTimer()
		start := time.Now()
		a.dispatch()
		lat = append(lat, time.Since(start))
		if free.State != config.StateReceiving {
			b.Fatal("the free agent was not offered a call")
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

// BenchmarkFireMemberEvent builds and publishes a member's callcenter::info
// event (bridge-agent-start, with a trunk caller's ~60 variables) to the
// subscribers a PBX without ESL clients has (bare: metrics, wallboard) and
// to a full one (an ESL client, which gets the channel headers too).
func BenchmarkFireMemberEvent(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := "bare"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			core := call.NewCore("bench", quietLog())
			a, err := New(queueCfg("longest-idle-agent", nil), core, nil, Options{Log: quietLog()})
			if err != nil {
				b.Fatal(err)
			}
			vars := map[string]string{"caller_id_number": "5550001", "caller_id_name": "Caller",
				"destination_number": "3000", "context": "blueivr", "network_addr": "127.0.0.1"}
			for i := range 55 {
				vars["cc_variable_"+fmt.Sprint(i)] = "value-" + fmt.Sprint(i)
			}
			ch := core.NewChannel(call.ChannelSpec{Name: "sofia/blueivr/5550001@127.0.0.1:5080",
				Direction: call.Inbound, Vars: vars})
			defer ch.Hangup(call.NormalClearing)
			n := 0
			count := func(*call.Event) { n++ }
			kinds := call.Kinds("CUSTOM " + Subclass)
			defer core.Bus.ObserveBare(kinds, nil, count)()
			defer core.Bus.ObserveBare(kinds, nil, count)()
			if full {
				defer core.Bus.ObserveKinds(kinds, nil, count)()
			}
			b.ReportAllocs()
			for b.Loop() {
				a.fire(ch, "CC-Queue", "3000@default", "CC-Action", "bridge-agent-start", "CC-Agent", "1001",
					"CC-Agent-UUID", "agent-uuid", "CC-Member-UUID", "member-uuid", "CC-Member-Session-UUID", ch.UUID(),
					"CC-Member-Joined-Time", "1700000000", "CC-Agent-Answered-Time", "1700000012")
			}
			if n == 0 {
				b.Fatal("no event delivered")
			}
		})
	}
}

// BenchmarkDispatchPass measures the dispatch passes the loop runs at
// 160 calls/s with 1,000 agents on a round-robin queue (bench/load.sh):
// 700 members with live channels, 690 of them bridged. "no-waiting": no
// member waits (most passes: a message about a call in progress).
// "one-waiting": one member has just joined and 300 agents are free; the
// pass offers it one (the offer is undone between iterations).
func BenchmarkDispatchPass(b *testing.B) {
	defer benchRows()()
	for _, waiting := range []bool{false, true} {
		name := "no-waiting"
		if waiting {
			name = "one-waiting"
		}
		b.Run(name, func(b *testing.B) {
			core := call.NewCore("bench", quietLog())
			sw := &instantSwitch{dialed: make(chan time.Time, 1)}
			a, err := New(queueCfg("round-robin", nil), core, nil, Options{Log: quietLog(), Switch: sw})
			if err != nil {
				b.Fatal(err)
			}
			a.addQueue(a.lookupQueue(q1))
			a.stats = map[statKey]*store.StatsRow{}
			close(a.quit)
			var chans []*call.Channel
			defer func() {
				for _, m := range a.members {
					for _, o := range m.offers {
						o.cancel(call.OriginatorCancel)
					}
				}
				for _, ch := range chans {
					ch.Hangup(call.NormalClearing)
				}
			}()
			now := a.now()
			for i := 0; i < 1000; i++ {
				n := fmt.Sprintf("%d", 2000+i)
				a.agentAdd(n, "Callback")
				ag := a.agents[n]
				ag.Contact = "user/" + n
				ag.Status = config.StatusAvailable
				ag.State = config.StateWaiting
				ag.LastOffered = now - 10
				if i < 700 {
					ag.State = config.StateInAQueueCall
				}
				a.addTier(q1, n, 1, 1)
			}
			var joiner *Member
			for i := 0; i < 700; i++ {
				ch := core.NewChannel(call.ChannelSpec{Name: "bench", Vars: map[string]string{"caller_id_number": "1"}})
				chans = append(chans, ch)
				a.memberSeq++
				m := &Member{MemberRow: store.MemberRow{Queue: q1, InstanceID: a.instanceID, UUID: fmt.Sprintf("m%04d", i),
					JoinedEpoch: now - 2}, State: config.MemberAnswered, seq: a.memberSeq, ch: ch,
					app:    &memberApp{found: make(chan *offer, 1), exit: make(chan config.CancelReason, 1)},
					offers: map[string]*offer{}}
				if i < 10 {
					m.State = config.MemberTrying
					m.ServingAgent = fmt.Sprintf("%d", 2000+i)
				}
				a.members[m.UUID] = m
				joiner = m
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if waiting {
					b.StopTimer()
					for _, o := range joiner.offers {
						o.cancel(call.OriginatorCancel)
						o.ag.State = config.StateWaiting
					}
					for _, t := range a.tiers {
						t.State = config.TierReady
					}
					joiner.State, joiner.ServingAgent, joiner.offers = config.MemberWaiting, "", map[string]*offer{}
					b.StartTimer()
				}
				a.dispatch()
				if waiting && joiner.State != config.MemberTrying {
					b.Fatal("the waiting member was not offered an agent")
				}
			}
		})
	}
}

// benchRows turns the tests' candidate-row check (checkCands) off for a
// benchmark: it measures the cache, not the check.
func benchRows() (restore func()) {
	old := checkCands
	checkCands = false
	return func() { checkCands = old }
}
