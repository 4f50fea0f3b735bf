package acd

import (
	"context"
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
	"ccpbx/store/storetest"
)

// What survives a restart (§3).

func TestC27Restart(t *testing.T) { storetest.Each(t, testC27Restart) }

func testC27Restart(t *testing.T, b storetest.Backend) {
	st := b.Open(t)
	defer st.Close()
	cfg := observedConfig()
	h := newHarness(t, cfg, st, baseEpoch)
	h.mustOK("agent add x Callback")
	h.mustOK("agent set contact x user/x")
	h.mustOK("tier add 3000@default x 2 3")
	h.mustOK("agent set status x Available")
	h.mustOK("agent set status 1001 Available")
	h.mustOK("tier set level 3000@default 1001 7")
	c := h.call("5550001", "3000@default", nil)
	h.nextDial() // x (the only Available agent) rings
	h.acd.Close()
	c.ch.Hangup(call.NormalClearing)

	h2 := newHarness(t, cfg, st, baseEpoch+10)
	eq(t, "API agent kept, status kept, state reset",
		[]string{h2.get("status", "x"), h2.get("state", "x")}, []string{"Available", "Waiting"})
	eq(t, "config status re-applied", h2.get("status", "1001"), "Logged Out")
	eq(t, "tiers", h2.api("tier list"), "queue|agent|state|level|position\n"+
		"3000@default|1001|Ready|1|1\n3000@default|1002|Ready|1|1\n3000@default|x|Ready|2|3\n+OK\n")
	rows := h2.api("queue list members 3000@default")
	eq(t, "member abandoned", strings.Contains(rows, "|Abandoned|"), true)
}

// TestRowsKeepTypedColumns: the typed Status/State fields shadow the store
// rows' columns; a row read back and written again is unchanged, even with
// a spelling ccpbx would not write, and nothing is left in the shadowed
// columns to be read by mistake.
func TestRowsKeepTypedColumns(t *testing.T) {
	ar := store.AgentRow{Name: "a", Status: "available", State: "In a queue call", Type: "Callback"}
	ag := agentFromRow(ar)
	eq(t, "agent status", ag.Status, config.AgentStatus("available"))
	eq(t, "agent shadowed", ag.AgentRow.Status+ag.AgentRow.State, "")
	eq(t, "agent row", ag.row(), ar)
	tr := store.TierRow{Queue: q1, Agent: "a", State: "Standby", Level: 2, Position: 3}
	tier := tierFromRow(tr)
	eq(t, "tier state", tier.State, config.TierStandby)
	eq(t, "tier shadowed", tier.TierRow.State, "")
	eq(t, "tier row", tier.row(), tr)
	mr := store.MemberRow{Queue: q1, UUID: "m", State: "Abandoned"}
	m := memberFromRow(mr)
	eq(t, "member state", m.State, config.MemberAbandoned)
	eq(t, "member shadowed", m.MemberRow.State, "")
	eq(t, "member row", m.row(), mr)
}

// TestPersisterBatchesInOrder: the writer writes queued call-center rows
// in batches of at most maxBatch, and a statistics write or a cluster
// effect runs only after the batch queued before it was written; the
// rows all land.
func TestPersisterBatchesInOrder(t *testing.T) {
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var log []string
	ls := &batchLogStore{Store: st, log: &log}
	p := newPersister(ls, quietLog())
	write := func(n int, from int) {
		for i := range n {
			p.addWrite(store.CallcenterWrite{Kind: store.UpsertMemberWrite,
				Member: store.MemberRow{Queue: "q", UUID: "m" + itoa(int64(from+i)), State: "Waiting"}})
		}
	}
	// Everything is queued before the writer starts: one drain.
	write(maxBatch+44, 0)
	p.add(func(ctx context.Context, s Store) error {
		log = append(log, "stats")
		return nil
	})
	p.addEffect(func(context.Context) error {
		log = append(log, "effect")
		return nil
	})
	write(2, maxBatch+44)
	go p.run()
	p.close()
	eq(t, "order", log, []string{"batch " + itoa(maxBatch), "batch 44", "stats", "effect", "batch 2"})
	rows, err := st.LoadCallcenter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "members", len(rows.Members), maxBatch+46)
	eq(t, "last member", rows.Members[len(rows.Members)-1].UUID, "m"+itoa(int64(maxBatch+45)))
}

// batchLogStore logs the batches it is given (the writer's goroutine
// alone calls it).
type batchLogStore struct {
	*store.Store
	log *[]string
}

func (s *batchLogStore) ApplyCallcenter(ctx context.Context, ws []store.CallcenterWrite) error {
	*s.log = append(*s.log, "batch "+itoa(int64(len(ws))))
	return s.Store.ApplyCallcenter(ctx, ws)
}
