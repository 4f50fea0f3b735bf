package store

import (
	"context"
	"testing"
	"time"
)

func TestBansSurviveReopenAndExpire(t *testing.T) {
	eachDriver(t, testBans)
}

func testBans(t *testing.T, b backend) {
	s := b.open(t)
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	for _, b := range []Ban{
		{Source: "sip", Addr: "192.0.2.1", Until: now.Add(time.Hour), Failures: 10},
		{Source: "event_socket", Addr: "192.0.2.1", Until: now.Add(time.Hour), Failures: 5},
		{Source: "sip", Addr: "192.0.2.2", Until: now.Add(-time.Second)},
		{Source: "sip", Addr: "192.0.2.1", Until: now.Add(2 * time.Hour), Failures: 10}, // replaces the first
	} {
		if err := s.SaveBan(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteBan(ctx, "sip", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = b.open(t)
	defer s.Close()
	got, err := s.Bans(ctx, now)
	want := []Ban{
		{Source: "event_socket", Addr: "192.0.2.1", Until: now.Add(time.Hour), Failures: 5},
		{Source: "sip", Addr: "192.0.2.1", Until: now.Add(2 * time.Hour), Failures: 10},
	}
	if err != nil || len(got) != 2 || !got[0].Until.Equal(want[0].Until) || got[0].Source != want[0].Source ||
		got[1].Addr != want[1].Addr || !got[1].Until.Equal(want[1].Until) || got[1].Failures != 10 {
		t.Fatalf("bans = %+v %v\nwant %+v", got, err, want)
	}
	if err := s.DeleteBan(ctx, "sip", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Bans(ctx, now); len(got) != 1 {
		t.Fatalf("after delete: %+v", got)
	}
}
