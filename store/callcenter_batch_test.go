package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"ccpbx/store/pgtest"
)

// TestApplyCallcenterKeepsOrder: a batch of mixed upserts and deletes
// (repeated upserts that collapse, a delete between two upserts of one
// member, an agent deletion that takes a tier upserted earlier in the
// batch) leaves exactly the rows, in exactly the order, that the same
// writes one at a time leave, with or without notices (a cluster node's
// writes run one by one).
func TestApplyCallcenterKeepsOrder(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		ag := func(name, state string) CallcenterWrite {
			return CallcenterWrite{Kind: UpsertAgentWrite, Agent: AgentRow{Name: name, Type: "callback", State: state, UUIDNull: true}}
		}
		tier := func(q, a string, lvl int64) CallcenterWrite {
			return CallcenterWrite{Kind: UpsertTierWrite, Tier: TierRow{Queue: q, Agent: a, State: "Ready", Level: lvl, Position: 1}}
		}
		mem := func(uuid, state string) CallcenterWrite {
			return CallcenterWrite{Kind: UpsertMemberWrite, Member: MemberRow{Queue: "q", UUID: uuid, State: state}}
		}
		delMem := func(uuid string) CallcenterWrite {
			return CallcenterWrite{Kind: DeleteMemberWrite, Member: MemberRow{UUID: uuid}}
		}
		before := []CallcenterWrite{ag("old", "Waiting"), mem("m0", "Waiting"), mem("gone", "Waiting")}
		batch := []CallcenterWrite{
			ag("a1", "Waiting"), ag("a2", "Waiting"), ag("a1", "Receiving"),
			tier("q", "a1", 1), tier("q", "a2", 1), tier("q", "old", 1),
			{Kind: DeleteAgentWrite, Agent: AgentRow{Name: "a2"}},
			ag("a2", "Idle"), tier("q", "a1", 2),
			{Kind: DeleteTierWrite, Tier: TierRow{Queue: "q", Agent: "old"}},
			mem("m1", "Waiting"), mem("m2", "Waiting"), mem("m1", "Trying"), mem("m3", "Waiting"),
			delMem("m2"), mem("m1", "Answered"), delMem("m3"), mem("m3", "Waiting"), mem("m2", "Trying"),
			mem("m0", "Abandoned"), delMem("gone"), delMem("never"),
			ag("old", "Idle"), ag("a1", "In a queue call"),
		}
		final := func(s *Store) *CallcenterRows {
			t.Helper()
			rows, err := s.LoadCallcenter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		// run applies before, then batch with apply, on a database of
		// its own, and returns the tables.
		run := func(t *testing.T, notices bool, apply func(s *Store, ws []CallcenterWrite) error) *CallcenterRows {
			t.Helper()
			cfg := Config{Driver: b.driver, DataDir: t.TempDir()}
			if b.driver == Postgres {
				cfg.DSN = pgtest.NewDatabase(t)
			}
			s := backend{driver: b.driver, cfg: cfg}.open(t)
			defer s.Close()
			if notices {
				if err := s.EnableNotices("n1"); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.applyEach(ctx, before); err != nil {
				t.Fatal(err)
			}
			if err := apply(s, batch); err != nil {
				t.Fatal(err)
			}
			return final(s)
		}
		// The reference: one write at a time, on a database of its own.
		want := run(t, false, func(s *Store, ws []CallcenterWrite) error { return s.applyEach(ctx, ws) })
		wantAgents := []AgentRow{
			{Name: "old", Type: "callback", State: "Idle", UUIDNull: true},
			{Name: "a1", Type: "callback", State: "In a queue call", UUIDNull: true},
			{Name: "a2", Type: "callback", State: "Idle", UUIDNull: true},
		}
		wantTiers := []TierRow{{Queue: "q", Agent: "a1", State: "Ready", Level: 2, Position: 1}}
		var wantMembers []MemberRow
		for _, w := range []CallcenterWrite{mem("m0", "Abandoned"), mem("m1", "Answered"), mem("m3", "Waiting"), mem("m2", "Trying")} {
			wantMembers = append(wantMembers, w.Member)
		}
		if !reflect.DeepEqual(want.Agents, wantAgents) || !reflect.DeepEqual(want.Tiers, wantTiers) ||
			!reflect.DeepEqual(want.Members, wantMembers) {
			t.Fatalf("one by one:\n%+v\nwant agents %+v tiers %+v members %+v", want, wantAgents, wantTiers, wantMembers)
		}
		// The transaction itself, not its one-by-one fallback.
		got := run(t, false, func(s *Store, ws []CallcenterWrite) error {
			c := collapsers.Get().(*collapser)
			defer putCollapser(c)
			return s.applyBatch(ctx, collapseWrites(c, ws), c)
		})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batched:\n%+v\nwant\n%+v", got, want)
		}
		if b.driver == Postgres {
			got := run(t, true, func(s *Store, ws []CallcenterWrite) error { return s.ApplyCallcenter(ctx, ws) })
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("batched with notices:\n%+v\nwant\n%+v", got, want)
			}
		}
	})
}

// TestApplyCallcenterBatchAfterBatch: batches in a row reuse the Store's
// prepared statements and a pooled collapser (its maps and argument
// buffer emptied between batches, a one-row write and a failed batch in
// between); the tables end as the same writes one at a time leave them.
func TestApplyCallcenterBatchAfterBatch(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		var batches [][]CallcenterWrite
		for i := range 5 {
			a := AgentRow{Name: fmt.Sprintf("a%d", i%2), Type: "callback", State: "Waiting", LastOffered: int64(1795664713 + i),
				Contact: fmt.Sprintf("user/%d", i)}
			m := MemberRow{Queue: "q", UUID: fmt.Sprintf("m%d", i), State: "Waiting", JoinedEpoch: int64(1795664713 + i)}
			ws := []CallcenterWrite{{Kind: UpsertMemberWrite, Member: m}, {Kind: UpsertAgentWrite, Agent: a}}
			m.State, a.State = "Trying", "Receiving"
			ws = append(ws, CallcenterWrite{Kind: UpsertMemberWrite, Member: m}, CallcenterWrite{Kind: UpsertAgentWrite, Agent: a},
				CallcenterWrite{Kind: UpsertTierWrite, Tier: TierRow{Queue: "q", Agent: a.Name, State: "Offering", Level: int64(i), Position: 1}})
			if i > 0 {
				ws = append(ws, CallcenterWrite{Kind: DeleteMemberWrite, Member: MemberRow{UUID: fmt.Sprintf("m%d", i-1)}})
			}
			batches = append(batches, ws)
		}
		apply := func(batched bool) *CallcenterRows {
			cfg := b.cfg
			cfg.DataDir = t.TempDir()
			if b.driver == Postgres {
				cfg.DSN = pgtest.NewDatabase(t)
			}
			s := backend{driver: b.driver, cfg: cfg}.open(t)
			defer s.Close()
			for i, ws := range batches {
				var err error
				if batched {
					err = s.ApplyCallcenter(ctx, ws)
				} else {
					err = s.applyEach(ctx, ws)
				}
				if err != nil {
					t.Fatal(err)
				}
				if i == 2 {
					if err := s.UpsertMember(ctx, MemberRow{Queue: "q", UUID: "solo", State: "Waiting"}); err != nil {
						t.Fatal(err)
					}
					// A batch whose transaction cannot begin (a cancelled
					// context) fails and leaves the statements usable.
					cctx, cancel := context.WithCancel(ctx)
					cancel()
					if batched && s.ApplyCallcenter(cctx, ws) == nil {
						t.Fatal("a batch on a cancelled context succeeded")
					}
				}
			}
			rows, err := s.LoadCallcenter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		want, got := apply(false), apply(true)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("batched:\n%+v\nwant\n%+v", got, want)
		}
		if len(want.Agents) != 2 || len(want.Members) != 2 || len(want.Tiers) != 2 {
			t.Fatalf("unexpected reference rows: %+v", want)
		}
	})
}
