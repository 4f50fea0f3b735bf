package store

import (
	"context"
	"testing"
)

func TestCDRsRoundTripAndSurviveReopen(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) {
		s := b.open(t)
		ctx := context.Background()
		if got, err := s.RecentCDRs(ctx, 10); err != nil || len(got) != 0 {
			t.Fatalf("empty table: %v %v", got, err)
		}
		recs := []CDR{
			{UUID: "a", BlegUUID: "b", Direction: "inbound", CallerIDName: `Smith, "Bob"`, CallerIDNumber: "5550001",
				DestinationNumber: "3000", Context: "blueivr", StartStamp: "2026-12-02 10:00:00", StartUepoch: 1795664713000001,
				AnswerUepoch: 1795664714000002, EndUepoch: 1795664725000003, Duration: 12, Billsec: 11, HangupCause: "NORMAL_CLEARING",
				HangupCauseQ850: 16, ReadCodec: "PCMU", WriteCodec: "PCMU", CCQueue: "3000@default", CCAgent: "1001",
				CCSide: "member", CCQueueJoined: 1795664713, CCQueueAnswered: 1795664714, CCCause: "answered",
				Switchname: "box"},
			{UUID: "b", Direction: "outbound", CCSide: "agent"},
			{UUID: "c", HangupCause: "ORIGINATOR_CANCEL", CCCause: "cancel", CCCancelReason: "BREAK_OUT"},
		}
		if err := s.InsertCDRs(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if recs[0].ID == 0 || recs[1].ID <= recs[0].ID || recs[2].ID <= recs[1].ID {
			t.Fatalf("ids %d %d %d", recs[0].ID, recs[1].ID, recs[2].ID)
		}
		s.Close()
		s = b.open(t)
		defer s.Close()
		got, err := s.RecentCDRs(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0] != recs[1] || got[1] != recs[2] {
			t.Fatalf("last 2 = %+v\nwant %+v", got, recs[1:])
		}
		all, err := s.RecentCDRs(ctx, 100)
		if err != nil || len(all) != 3 || all[0] != recs[0] {
			t.Fatalf("all = %+v %v", all, err)
		}
		// A failed batch writes nothing.
		bad := []CDR{{UUID: "d"}, {UUID: "e\x00"}}
		if b.driver == SQLite {
			bad[1].UUID = "e" // SQLite stores NUL; cancel instead
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			ctx = cctx
		}
		if err := s.InsertCDRs(ctx, bad); err == nil {
			t.Fatal("bad batch accepted")
		}
		if all, _ := s.RecentCDRs(context.Background(), 100); len(all) != 3 {
			t.Fatalf("after a failed batch: %d rows", len(all))
		}
	})
}
