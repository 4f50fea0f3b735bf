package acd

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"ccpbx/store"
)

// drainStore records what the persister writes, in order.
type drainStore struct {
	Store // only the methods below are called
	mu    sync.Mutex
	log   []string
	stats [][]store.StatsRow
}

func (s *drainStore) note(what string) {
	s.mu.Lock()
	s.log = append(s.log, what)
	s.mu.Unlock()
}

func (s *drainStore) ApplyCallcenter(_ context.Context, ws []store.CallcenterWrite) error {
	for _, w := range ws {
		s.note("row " + w.Member.UUID + w.Agent.Name)
	}
	return nil
}

func (s *drainStore) AddQueueStats(_ context.Context, ds []store.StatsRow) error {
	s.mu.Lock()
	s.stats = append(s.stats, append([]store.StatsRow(nil), ds...))
	s.mu.Unlock()
	s.note("stats")
	return nil
}

func (s *drainStore) SaveQueueCounters(_ context.Context, q string, c store.QueueCounters) error {
	s.note("counters " + q + " " + itoa(c.CallsAnswered))
	return nil
}

// TestPersisterSumsStatsPerDrain: the statistics deltas of one drain are
// summed per row and written in one call after the rows, the counters
// last per queue; an effect (a cluster claim) runs after everything
// queued before it was written; close writes what is left.
func TestPersisterSumsStatsPerDrain(t *testing.T) {
	st := &drainStore{}
	p := newPersister(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Queued before the writer runs: one drain.
	p.addWrite(store.CallcenterWrite{Kind: store.UpsertMemberWrite, Member: store.MemberRow{UUID: "m1"}})
	for i := 0; i < 5; i++ {
		p.addStats(store.StatsRow{IntervalStart: 900, Queue: "q", Offered: 1, WaitMax: int64(i)})
	}
	p.addStats(store.StatsRow{IntervalStart: 900, Queue: "q", Agent: "a", Answered: 1})
	p.addCounters("q", store.QueueCounters{CallsAnswered: 1})
	p.addCounters("q", store.QueueCounters{CallsAnswered: 2})
	p.addWrite(store.CallcenterWrite{Kind: store.UpsertAgentWrite, Agent: store.AgentRow{Name: "a"}})
	ran := make(chan []string, 1)
	p.addEffect(func(context.Context) error {
		st.mu.Lock()
		ran <- append([]string(nil), st.log...)
		st.mu.Unlock()
		return nil
	})
	go p.run()
	before := <-ran // the effect needs no kick: it ends the wait itself
	eq(t, "written before the effect", before, []string{"row m1", "row a", "stats", "counters q 2"})
	eq(t, "stats summed per row", st.stats, [][]store.StatsRow{{
		{IntervalStart: 900, Queue: "q", Offered: 5, WaitMax: 4},
		{IntervalStart: 900, Queue: "q", Agent: "a", Answered: 1},
	}})

	// Rows queued by the loop wait for its kick (or close).
	p.addStats(store.StatsRow{IntervalStart: 900, Queue: "q", Abandoned: 1})
	p.addWrite(store.CallcenterWrite{Kind: store.DeleteMemberWrite, Member: store.MemberRow{UUID: "m1"}})
	p.kick()
	p.close()
	st.mu.Lock()
	defer st.mu.Unlock()
	eq(t, "after close", st.log[len(before):], []string{"row m1", "stats"})
	eq(t, "second drain's stats", st.stats[1], []store.StatsRow{{IntervalStart: 900, Queue: "q", Abandoned: 1}})
}
