package store

import (
	"context"
	"reflect"
	"testing"
)

// TestCallcenterKeepsOrderAndNulls: listings follow insertion order even
// after upserts (FreeSWITCH's SELECT * order), NULL uuid and contact come
// back as NULL, deleting an agent takes its tiers, truncates empty tables;
// all across a reopen.
func TestCallcenterKeepsOrderAndNulls(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		agents := []AgentRow{
			{Name: "zed", InstanceID: "single_box", Type: "callback", Status: "Logged Out", State: "Waiting", UUIDNull: true, ContactNull: true},
			{Name: "amy", InstanceID: "single_box", UUID: "u-1", Type: "uuid-standby", Contact: "user/amy", Status: "Available",
				State: "In a queue call", MaxNoAnswer: 3, WrapUpTime: 10, RejectDelayTime: 20, BusyDelayTime: 30,
				NoAnswerDelayTime: 40, LastBridgeStart: 1795664713, LastBridgeEnd: 1795664799, LastOffered: 1795664700,
				LastStatusChange: 1795664600, NoAnswerCount: 2, CallsAnswered: 5, TalkTime: 300, ReadyTime: 1795664800,
				ExternalCallsCount: 1},
			{Name: "bob", Type: "callback"},
		}
		for _, a := range agents {
			must(s.UpsertAgent(ctx, a))
		}
		agents[0].Status = "Available" // an update keeps zed first
		must(s.UpsertAgent(ctx, agents[0]))
		tiers := []TierRow{{Queue: "q2", Agent: "zed", State: "Ready", Level: 2, Position: 3},
			{Queue: "q1", Agent: "amy", State: "Standby", Level: 1, Position: 1},
			{Queue: "q1", Agent: "bob", State: "Ready", Level: 1, Position: 1}}
		for _, tr := range tiers {
			must(s.UpsertTier(ctx, tr))
		}
		tiers[0].Level = 9
		must(s.UpsertTier(ctx, tiers[0]))
		members := []MemberRow{
			{Queue: "q1", InstanceID: "single_box", UUID: "m2", SessionUUID: "s2", CIDNumber: "5550002", CIDName: "Two",
				SystemEpoch: 1, JoinedEpoch: 1795664700, RejoinedEpoch: 3, BridgeEpoch: 4, AbandonedEpoch: 5, BaseScore: 6,
				SkillScore: 7, ServingAgent: "amy", ServingSystem: "single_box", State: "Answered"},
			{Queue: "q1", UUID: "m1", State: "Waiting"},
		}
		for _, m := range members {
			must(s.UpsertMember(ctx, m))
		}
		members[0].State = "Trying"
		must(s.UpsertMember(ctx, members[0]))
		must(s.DeleteAgent(ctx, "bob"))
		must(s.DeleteMember(ctx, "m1"))
		must(s.DeleteTier(ctx, "q1", "nobody"))
		s.Close()

		s = b.open(t)
		defer s.Close()
		got, err := s.LoadCallcenter(ctx)
		must(err)
		if want := agents[:2]; !reflect.DeepEqual(got.Agents, want) {
			t.Errorf("agents\n got %+v\nwant %+v", got.Agents, want)
		}
		if want := tiers[:2]; !reflect.DeepEqual(got.Tiers, want) {
			t.Errorf("tiers\n got %+v\nwant %+v", got.Tiers, want)
		}
		if want := members[:1]; !reflect.DeepEqual(got.Members, want) {
			t.Errorf("members\n got %+v\nwant %+v", got.Members, want)
		}
		must(s.TruncateAgents(ctx))
		must(s.TruncateTiers(ctx))
		got, err = s.LoadCallcenter(ctx)
		must(err)
		if len(got.Agents)+len(got.Tiers) != 0 || len(got.Members) != 1 {
			t.Errorf("after truncates: %+v", got)
		}
	})
}
