package store

import (
	"context"
	"reflect"
	"testing"
)

// TestQueueStatsAddUpAndSurviveReopen: deltas add into their row (wait_max
// keeps the larger), other intervals and agents stay apart, and rows and
// counters are there after the database is closed and opened again.
func TestQueueStatsAddUpAndSurviveReopen(t *testing.T) {
	eachDriver(t, func(t *testing.T, b backend) { testQueueStats(t, b) })
}

func testQueueStats(t *testing.T, b backend) {
	s := b.open(t)
	ctx := context.Background()
	add := []StatsRow{
		{IntervalStart: 900, Queue: "q", Offered: 1, Answered: 1, AnsweredWithinSL: 1, WaitAnswered: 4, WaitMax: 4},
		{IntervalStart: 900, Queue: "q", Agent: "a", Answered: 1, Handled: 1, TalkTime: 30, WrapUpTime: 10},
	}
	if err := s.AddQueueStats(ctx, add); err != nil {
		t.Fatal(err)
	}
	if err := s.AddQueueStats(ctx, []StatsRow{
		{IntervalStart: 900, Queue: "q", Offered: 1, Abandoned: 1, ShortAbandoned: 1, WaitAbandoned: 2, WaitMax: 2},
		{IntervalStart: 1800, Queue: "q", Offered: 1},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveQueueCounters(ctx, "q", QueueCounters{CallsAnswered: 1, CallsAbandoned: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveQueueCounters(ctx, "q", QueueCounters{CallsAnswered: 2, CallsAbandoned: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = b.open(t)
	defer s.Close()
	got, err := s.QueueStats(ctx, 900)
	if err != nil {
		t.Fatal(err)
	}
	want := []StatsRow{
		{IntervalStart: 900, Queue: "q", Offered: 2, Answered: 1, AnsweredWithinSL: 1, Abandoned: 1, ShortAbandoned: 1,
			WaitAnswered: 4, WaitAbandoned: 2, WaitMax: 4},
		{IntervalStart: 900, Queue: "q", Agent: "a", Answered: 1, Handled: 1, TalkTime: 30, WrapUpTime: 10},
		{IntervalStart: 1800, Queue: "q", Offered: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n got %+v\nwant %+v", got, want)
	}
	if later, _ := s.QueueStats(ctx, 1000); len(later) != 1 || later[0].IntervalStart != 1800 {
		t.Errorf("since 1000: %+v", later)
	}
	c, err := s.LoadQueueCounters(ctx)
	if err != nil || c["q"] != (QueueCounters{CallsAnswered: 2, CallsAbandoned: 1}) {
		t.Errorf("counters %+v %v", c, err)
	}
}
