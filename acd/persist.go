package acd

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"ccpbx/config"
	"ccpbx/store"
)

// persister writes ACD changes to the store in order, off the loop: the
// loop only appends a row (or a closure) to an unbounded queue, so a slow
// disk never delays dispatch; the writer takes what has gathered and
// writes the call-center rows a batch per transaction.
//
// The loop does not wake the writer for each row: it kicks it once a
// message and the dispatch it caused are done, so an offer's agent leg is
// already being placed when the writer starts (its SIP INVITE never waits
// behind the transaction for the rows that offer changed). The writer then
// gathers for up to gatherWait, so a burst of calls is one transaction
// instead of one per message; a cluster claim or release and close end
// the wait at once (their round trip is on a caller's path).
type persister struct {
	st     Store
	log    *slog.Logger
	mu     sync.Mutex
	ops    []persistOp
	queued bool                    // ops queued since the last kick
	batch  []store.CallcenterWrite // the writer's, reused
	stats  []store.StatsRow        // the writer's: this drain's statistics, summed by key
	counts []queueCounters         // the writer's: this drain's queue counters, last per queue
	wake   chan struct{}
	urgent chan struct{}
	closed bool
	done   chan struct{}
}

// gatherWait is how long the writer lets writes gather after a kick
// before it writes them (claims, releases and close do not wait).
const gatherWait = 5 * time.Millisecond

func newPersister(st Store, log *slog.Logger) *persister {
	return &persister{st: st, log: log, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		done: make(chan struct{})}
}

func (p *persister) add(op func(context.Context, Store) error) {
	p.push(persistOp{f: op})
}

// addWrite queues one call-center write (batched with its neighbours).
func (p *persister) addWrite(w store.CallcenterWrite) {
	p.push(persistOp{w: w})
}

// addStats queues a statistics delta; the deltas of one drain are summed
// per row and written together.
func (p *persister) addStats(d store.StatsRow) {
	p.push(persistOp{kind: opStats, stats: d})
}

// addCounters queues a queue's counters (absolute values: the last of a
// drain wins).
func (p *persister) addCounters(queue string, c store.QueueCounters) {
	p.push(persistOp{kind: opCounters, counters: queueCounters{queue, c}})
}

// push queues op without waking the writer: the loop kicks it after the
// message (kick), the writer finds it then.
func (p *persister) push(op persistOp) {
	if p.st == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.ops = append(p.ops, op)
	p.queued = true
	p.mu.Unlock()
}

// kick wakes the writer if anything was queued since the last kick. The
// loop calls it after each message and its dispatch.
func (p *persister) kick() {
	p.mu.Lock()
	queued := p.queued
	p.queued = false
	p.mu.Unlock()
	if queued {
		signal(p.wake)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// maxBatch bounds the call-center writes of one transaction: a few
// milliseconds of SQLite work, so the queue behind it moves on soon.
const maxBatch = 256

// maxSpare bounds the queue buffer the writer keeps between drains, so a
// burst's backlog does not stay allocated.
const maxSpare = 1024

func (p *persister) run() {
	defer close(p.done)
	var spare []persistOp
	gather := time.NewTimer(gatherWait)
	gather.Stop()
	for {
		p.mu.Lock()
		ops := p.ops
		p.ops = spare
		closed := p.closed
		p.mu.Unlock()
		p.write(ops)
		if closed && len(ops) == 0 {
			return
		}
		clear(ops)
		spare = nil
		if cap(ops) <= maxSpare {
			spare = ops[:0]
		}
		if len(ops) > 0 {
			continue // what came while writing: the backlog gathered already
		}
		select {
		case <-p.wake:
		case <-p.urgent:
			continue
		}
		gather.Reset(gatherWait)
		select {
		case <-gather.C:
		case <-p.urgent:
			gather.Stop()
		}
	}
}

// write runs ops in order: consecutive call-center writes as batches of
// at most maxBatch (one transaction each, store.ApplyCallcenter), the
// statistics deltas summed per row and the queue counters last per queue,
// written after those batches, and any other op (a cluster claim or
// release) after everything queued before it was written.
func (p *persister) write(ops []persistOp) {
	ctx := context.Background()
	flush := func() {
		if len(p.batch) == 0 {
			return
		}
		if err := p.st.ApplyCallcenter(ctx, p.batch); err != nil {
			p.log.Error("acd persistence", "err", err)
		}
		clear(p.batch)
		p.batch = p.batch[:0]
	}
	flushAll := func() {
		flush()
		if len(p.stats) > 0 {
			if err := p.st.AddQueueStats(ctx, p.stats); err != nil {
				p.log.Error("acd persistence", "err", err)
			}
			clear(p.stats)
			p.stats = p.stats[:0]
		}
		for _, c := range p.counts {
			if err := p.st.SaveQueueCounters(ctx, c.queue, c.c); err != nil {
				p.log.Error("acd persistence", "err", err)
			}
		}
		clear(p.counts)
		p.counts = p.counts[:0]
	}
	for i := range ops {
		op := &ops[i]
		switch {
		case op.kind == opStats:
			p.sumStats(&op.stats)
			continue
		case op.kind == opCounters:
			p.setCounters(op.counters)
			continue
		case op.f == nil:
			p.batch = append(p.batch, op.w)
			if len(p.batch) == maxBatch {
				flush()
			}
			continue
		}
		flushAll()
		if err := op.f(ctx, p.st); err != nil {
			p.log.Error("acd persistence", "err", err)
		}
	}
	flushAll()
}

// sumStats adds d to this drain's delta for its row.
func (p *persister) sumStats(d *store.StatsRow) {
	for i := range p.stats {
		r := &p.stats[i]
		if r.IntervalStart == d.IntervalStart && r.Queue == d.Queue && r.Agent == d.Agent {
			mergeStats(r, d)
			return
		}
	}
	p.stats = append(p.stats, *d)
}

func (p *persister) setCounters(c queueCounters) {
	for i := range p.counts {
		if p.counts[i].queue == c.queue {
			p.counts[i] = c
			return
		}
	}
	p.counts = append(p.counts, c)
}

// addEffect queues f after the writes queued so far, with or without a
// store (a cluster claim's release follows the agent's last write), and
// has the writer run it without gathering.
func (p *persister) addEffect(f func(context.Context) error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.ops = append(p.ops, persistOp{f: func(ctx context.Context, _ Store) error { return f(ctx) }, effect: true})
	p.mu.Unlock()
	signal(p.urgent)
}

type opKind uint8

const (
	opRow      opKind = iota // w, or f when set
	opStats                  // stats
	opCounters               // counters
)

type queueCounters struct {
	queue string
	c     store.QueueCounters
}

// persistOp is one queued write: a call-center row (w, when f is nil),
// a statistics delta or queue counters (kind), another write (f), or an
// effect (a cluster claim or release) that must run even when the writes
// are dropped.
type persistOp struct {
	f        func(context.Context, Store) error
	w        store.CallcenterWrite
	kind     opKind
	stats    store.StatsRow
	counters queueCounters
	effect   bool
}

// dropWrites forgets the writes not yet run (a fenced cluster node: a
// survivor adopted its rows, and replaying its older state after it
// rejoins would undo that); effects stay, in order.
func (p *persister) dropWrites() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.ops[:0]
	n := 0
	for _, op := range p.ops {
		if op.effect {
			kept = append(kept, op)
		} else {
			n++
		}
	}
	clear(p.ops[len(kept):])
	p.ops = kept
	return n
}

// close flushes pending writes and stops the writer.
func (p *persister) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	signal(p.urgent)
	<-p.done
}

func (a *ACD) saveAgent(ag *Agent) {
	ag.writes++
	a.queueWrite(store.CallcenterWrite{Kind: store.UpsertAgentWrite, Agent: ag.row()})
}

func (a *ACD) saveTier(t *Tier) {
	a.queueWrite(store.CallcenterWrite{Kind: store.UpsertTierWrite, Tier: t.row()})
}

func (a *ACD) saveMember(m *Member) {
	a.queueWrite(store.CallcenterWrite{Kind: store.UpsertMemberWrite, Member: m.row()})
}

func (a *ACD) dropMember(m *Member) {
	delete(a.members, m.UUID)
	a.queueWrite(store.CallcenterWrite{Kind: store.DeleteMemberWrite, Member: store.MemberRow{UUID: m.UUID}})
}

// load reads the database and applies mod_callcenter's restart reset
// (§3.3): agents keep their status but go back to Waiting with no uuid and
// no external calls, tiers go back to Ready, and this box's members are
// Abandoned because their callers' channels died with the old process.
func (a *ACD) load(ctx context.Context) error {
	if a.st == nil {
		return nil
	}
	rows, err := a.st.LoadCallcenter(ctx)
	if err != nil {
		return err
	}
	a.rowsChanged()
	if a.cl != nil {
		if a.cfg.Settings.TruncateTiersOnLoad || a.cfg.Settings.TruncateAgentsOnLoad {
			// One node's start must not empty the tables every node serves.
			a.log.Warn("cluster: truncate-agents-on-load and truncate-tiers-on-load are ignored on a cluster node")
		}
		return a.clusterLoad(rows)
	}
	if a.cfg.Settings.TruncateTiersOnLoad {
		if err := a.st.TruncateTiers(ctx); err != nil {
			return err
		}
		rows.Tiers = nil
	}
	if a.cfg.Settings.TruncateAgentsOnLoad {
		if err := a.st.TruncateAgents(ctx); err != nil {
			return err
		}
		rows.Agents = nil
	}
	for _, r := range rows.Agents {
		ag := agentFromRow(r)
		if ag.InstanceID == singleBox || ag.InstanceID == "" {
			ag.State = config.StateWaiting
			ag.UUID, ag.UUIDNull = "", false
			ag.ExternalCallsCount = 0
		}
		a.agentSeq++
		ag.seq = a.agentSeq
		a.agents[ag.Name] = ag
		if err := a.st.UpsertAgent(ctx, ag.row()); err != nil {
			return err
		}
	}
	for _, r := range rows.Tiers {
		t := tierFromRow(r)
		if _, ok := a.agents[t.Agent]; ok {
			t.State = config.TierReady
		}
		a.tierSeq++
		t.seq = a.tierSeq
		a.tiers = append(a.tiers, t)
		if err := a.st.UpsertTier(ctx, t.row()); err != nil {
			return err
		}
	}
	for _, r := range rows.Members {
		m := memberFromRow(r)
		if m.InstanceID == a.instanceID {
			m.State = config.MemberAbandoned
			m.SessionUUID = ""
		}
		a.memberSeq++
		m.seq = a.memberSeq
		a.members[m.UUID] = m
		if err := a.st.UpsertMember(ctx, m.row()); err != nil {
			return err
		}
	}
	return nil
}

// seedConfig adds the configured agents and tiers the shared tables do
// not have yet (a cluster node): one node's restart must not reset an
// agent every node is serving (FreeSWITCH #3091).
func (a *ACD) seedConfig() {
	for _, c := range a.cfg.Agents {
		if c.Name == "" || c.Type == "" || a.agents[c.Name] != nil {
			continue
		}
		a.applyConfigAgent(c)
	}
	for _, c := range a.cfg.Tiers {
		if a.findTier(c.Queue, c.Agent) == nil {
			a.applyConfigTiers(c.Queue, c.Agent)
		}
	}
}

// applyConfigAgents re-applies the configured agents (all, or only name),
// the way mod_callcenter imports XML agents at every load (§3.4): a
// missing agent is added, then every attribute goes through `agent set`,
// with its events. It reports how many agents were applied.
func (a *ACD) applyConfigAgents(name string) int {
	n := 0
	for _, c := range a.cfg.Agents {
		if name != "" && c.Name != name {
			continue
		}
		if c.Name == "" || c.Type == "" {
			continue
		}
		n++
		a.applyConfigAgent(c)
	}
	return n
}

func (a *ACD) applyConfigAgent(c config.Agent) {
	if _, ok := a.agents[c.Name]; !ok {
		if res := a.agentAdd(c.Name, c.Type.String()); res != okReply {
			a.log.Warn("config agent not added", "agent", c.Name, "reply", res)
			return
		}
	} else {
		a.agentSet("type", c.Name, c.Type.String())
	}
	if c.Contact != "" {
		a.agentSet("contact", c.Name, c.Contact)
	}
	if c.Status != "" {
		a.agentSet("status", c.Name, c.Status.String())
	}
	a.agentSet("max_no_answer", c.Name, itoa(int64(c.MaxNoAnswer)))
	a.agentSet("wrap_up_time", c.Name, itoa(int64(c.WrapUpTime)))
	a.agentSet("reject_delay_time", c.Name, itoa(int64(c.RejectDelayTime)))
	a.agentSet("busy_delay_time", c.Name, itoa(int64(c.BusyDelayTime)))
	a.agentSet("no_answer_delay_time", c.Name, itoa(int64(c.NoAnswerDelayTime)))
}

// applyConfigTiers re-applies configured tiers matching queue ("" or "all"
// = any) and agent ("" = any): missing tiers are created Ready, existing
// ones get level and position overwritten (1 when unset). It reports how
// many were applied.
func (a *ACD) applyConfigTiers(queue, agent string) int {
	n := 0
	for _, c := range a.cfg.Tiers {
		if queue != "" && queue != "all" && c.Queue != queue {
			continue
		}
		if agent != "" && c.Agent != agent {
			continue
		}
		level, pos := int64(c.Level), int64(c.Position)
		if level == 0 {
			level = 1
		}
		if pos == 0 {
			pos = 1
		}
		if t := a.findTier(c.Queue, c.Agent); t != nil {
			t.Level, t.Position = level, pos
			a.saveTier(t)
			n++
			continue
		}
		if a.lookupQueue(c.Queue) == nil || a.agents[c.Agent] == nil {
			continue
		}
		a.addTier(c.Queue, c.Agent, level, pos)
		n++
	}
	return n
}

// Store is what the ACD keeps in the database (SQLite or PostgreSQL):
// mod_callcenter's tables and the queue statistics.
type Store interface {
	store.Callcenter
	store.Statistics
}

// pending is the number of ops queued and not yet taken by the writer.
func (p *persister) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ops)
}
