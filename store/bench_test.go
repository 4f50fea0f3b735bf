package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ccpbx/store/pgtest"
)

// The writes ccpbx makes on its hot paths, one call each: the ACD's
// persister saving a member (every state change of a waiting caller), the
// registrar saving one binding (every REGISTER), package cdr writing a
// batch of two legs (every finished call). Each runs on both engines.
func BenchmarkStore(b *testing.B) {
	b.Run("driver=sqlite", func(b *testing.B) {
		benchWrites(b, func(b *testing.B) *Store {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
	b.Run("driver=postgres", func(b *testing.B) {
		benchWrites(b, func(b *testing.B) *Store {
			s, err := OpenConfig(context.Background(), Config{Driver: Postgres, DSN: pgtest.NewDatabase(b), DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			return s
		})
	})
}

func benchWrites(b *testing.B, open func(*testing.B) *Store) {
	ctx := context.Background()
	b.Run("op=UpsertMember", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		m := MemberRow{Queue: "3000@default", InstanceID: "single_box", UUID: "m", SessionUUID: "s",
			CIDNumber: "5550001", CIDName: "Caller", JoinedEpoch: 1795664713, State: "Waiting"}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m.UUID = fmt.Sprintf("m%d", i%100)
			if err := s.UpsertMember(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The ACD persister's drain of 256 queued member upserts (64 callers,
	// 4 state changes each): one store call per write, as the persister
	// made before batching, against one ApplyCallcenter (one
	// transaction, a statement prepared once, repeated upserts
	// collapsed), and the same batch of 256 distinct members (no
	// collapsing). ns/op is per drain; ns/write divides by 256.
	b.Run("op=MemberDrain256", func(b *testing.B) {
		const n, callers = 256, 64
		drain := make([]CallcenterWrite, n)
		distinct := make([]CallcenterWrite, n)
		states := []string{"Waiting", "Trying", "Answered", "Abandoned"}
		for i := range drain {
			m := MemberRow{Queue: "3000@default", InstanceID: "single_box", UUID: fmt.Sprintf("m%d", i%callers), SessionUUID: "s",
				CIDNumber: "5550001", CIDName: "Caller", JoinedEpoch: 1795664713, State: states[i/callers]}
			drain[i] = CallcenterWrite{Kind: UpsertMemberWrite, Member: m}
			m.UUID = fmt.Sprintf("d%d", i)
			distinct[i] = CallcenterWrite{Kind: UpsertMemberWrite, Member: m}
		}
		run := func(name string, ws []CallcenterWrite, apply func(s *Store, ws []CallcenterWrite) error) {
			b.Run(name, func(b *testing.B) {
				s := open(b)
				defer s.Close()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := apply(s, ws); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ws)), "ns/write")
			})
		}
		oneByOne := func(s *Store, ws []CallcenterWrite) error {
			for _, w := range ws {
				if err := s.UpsertMember(ctx, w.Member); err != nil {
					return err
				}
			}
			return nil
		}
		batched := func(s *Store, ws []CallcenterWrite) error { return s.ApplyCallcenter(ctx, ws) }
		run("write=one-by-one", drain, oneByOne)
		run("write=batch", drain, batched)
		run("write=batch-distinct", distinct, batched)
	})
	// What the ACD persister writes at 160 calls/s: a drain of 8 calls,
	// each joining (member Waiting), offered (member Trying, agent
	// Receiving, tier Offering), answered (agent In a queue call, tier
	// Active Inbound, member Answered) and ended (agent Waiting with its
	// counters, tier Ready, member deleted), over 1,000 agents, then the
	// drain's statistics (a queue row and 8 agent rows). ns/op is per
	// drain; ns/call divides by 8.
	b.Run("op=CallDrain8", func(b *testing.B) {
		const calls = 8
		s := open(b)
		defer s.Close()
		for i := 0; i < 1000; i++ {
			n := fmt.Sprintf("%d", 2000+i)
			if err := s.UpsertAgent(ctx, AgentRow{Name: n, InstanceID: "single_box", Type: "callback", Contact: "user/" + n,
				Status: "Available", State: "Waiting", MaxNoAnswer: 3, RejectDelayTime: 30, BusyDelayTime: 60,
				NoAnswerDelayTime: 10}); err != nil {
				b.Fatal(err)
			}
			if err := s.UpsertTier(ctx, TierRow{Queue: "3000@default", Agent: n, State: "Ready", Level: 1, Position: 1}); err != nil {
				b.Fatal(err)
			}
		}
		ws := make([]CallcenterWrite, 0, calls*10)
		stats := make([]StatsRow, 0, calls+1)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ws, stats = ws[:0], stats[:0]
			stats = append(stats, StatsRow{IntervalStart: 1795664700, Queue: "3000@default", Offered: calls, Answered: calls})
			for c := 0; c < calls; c++ {
				k := i*calls + c
				ag := AgentRow{Name: fmt.Sprintf("%d", 2000+k%1000), InstanceID: "single_box", Type: "callback",
					Contact: fmt.Sprintf("user/%d", 2000+k%1000), Status: "Available", MaxNoAnswer: 3,
					RejectDelayTime: 30, BusyDelayTime: 60, NoAnswerDelayTime: 10, LastOffered: 1795664713 + int64(k)}
				tier := TierRow{Queue: "3000@default", Agent: ag.Name, Level: 1, Position: 1}
				m := MemberRow{Queue: "3000@default", InstanceID: "single_box", UUID: fmt.Sprintf("m%d", k), SessionUUID: "s",
					CIDNumber: "5550001", CIDName: "Caller", JoinedEpoch: 1795664713, State: "Waiting"}
				up := func(kind CallcenterWriteKind) {
					ws = append(ws, CallcenterWrite{Kind: kind, Agent: ag, Tier: tier, Member: m})
				}
				up(UpsertMemberWrite)
				m.State, m.ServingAgent, m.ServingSystem = "Trying", ag.Name, "single_box"
				up(UpsertMemberWrite)
				ag.State, tier.State = "Receiving", "Offering"
				up(UpsertAgentWrite)
				up(UpsertTierWrite)
				ag.State, ag.LastBridgeStart, tier.State = "In a queue call", 1795664714+int64(k), "Active Inbound"
				up(UpsertAgentWrite)
				up(UpsertTierWrite)
				m.State, m.BridgeEpoch = "Answered", 1795664714
				up(UpsertMemberWrite)
				ag.State, ag.LastBridgeEnd, ag.CallsAnswered, ag.TalkTime, tier.State = "Waiting", 1795664718+int64(k), 1, 4, "Ready"
				up(UpsertAgentWrite)
				up(UpsertTierWrite)
				up(DeleteMemberWrite)
				stats = append(stats, StatsRow{IntervalStart: 1795664700, Queue: "3000@default", Agent: ag.Name, Offered: 1,
					Answered: 1, Handled: 1, TalkTime: 4})
			}
			if err := s.ApplyCallcenter(ctx, ws); err != nil {
				b.Fatal(err)
			}
			if err := s.AddQueueStats(ctx, stats); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*calls), "ns/call")
	})
	b.Run("op=ApplyRegistrations", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		now := time.Now()
		r := Registration{User: "1001", Realm: "pbx", Contact: "sip:1001@192.0.2.1:5060", CallID: "c", CSeq: 1,
			Expires: now.Add(time.Hour), Registered: now, Source: "192.0.2.1:5060", Transport: "udp",
			UserAgent: "bench", Profile: "internal"}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r.Key = fmt.Sprintf("sip:1001@192.0.2.%d:5060", i%100)
			if err := s.ApplyRegistrations(ctx, []Registration{r}, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=InsertCDRs", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		recs := []CDR{{UUID: "a", Direction: "inbound", HangupCause: "NORMAL_CLEARING", StartUepoch: 1795664713000000},
			{UUID: "b", Direction: "outbound", HangupCause: "NORMAL_CLEARING", StartUepoch: 1795664713000000}}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.InsertCDRs(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCluster times what cluster mode adds on PostgreSQL: the claim
// on every offer's path (ClaimAgent, then ReleaseClaim), a node's lease
// renewal with two peers, and the persister's member write when it
// carries its notice (compare BenchmarkStore's UpsertMember).
func BenchmarkCluster(b *testing.B) {
	ctx := context.Background()
	open := func(b *testing.B) (*Store, NodeFence) {
		s, err := OpenConfig(ctx, Config{Driver: Postgres, DSN: pgtest.NewDatabase(b), DataDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		f, err := s.JoinCluster(ctx, "n1", "")
		if err != nil {
			b.Fatal(err)
		}
		return s, f
	}
	b.Run("op=ClaimAgent+ReleaseClaim", func(b *testing.B) {
		s, f := open(b)
		defer s.Close()
		if err := s.UpsertAgent(ctx, AgentRow{Name: "1001", Status: "Available"}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			epoch, err := s.ClaimAgent(ctx, f, Claim{Agent: "1001", Queue: "3000@default", MemberUUID: "m"})
			if err != nil {
				b.Fatal(err)
			}
			if err := s.ReleaseClaim(ctx, f, "1001", epoch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=Heartbeat", func(b *testing.B) {
		s, f := open(b)
		defer s.Close()
		for _, peer := range []string{"n2", "n3"} {
			if _, err := s.JoinCluster(ctx, peer, ""); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.Heartbeat(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=UpsertMember+notice", func(b *testing.B) {
		s, _ := open(b)
		defer s.Close()
		if err := s.EnableNotices("n1"); err != nil {
			b.Fatal(err)
		}
		m := MemberRow{Queue: "3000@default", InstanceID: "n1", UUID: "m", SessionUUID: "s",
			CIDNumber: "5550001", CIDName: "Caller", JoinedEpoch: 1795664713, State: "Waiting"}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			m.UUID = fmt.Sprintf("m%d", i%100)
			if err := s.UpsertMember(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
