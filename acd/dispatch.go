package acd

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"

	"ccpbx/config"
)

// cand is one agent row of a member's scan: the agent and its tier in the
// member's queue.
type cand struct {
	ag *Agent
	t  *Tier
}

// passCache holds what one dispatch pass computes once per queue.
type passCache struct {
	// byQueue is the pass's candidate rows: the ACD's cached rows
	// (a.cands), or rows of its own for a nested pass.
	byQueue map[string][]cand
	built   bool // byQueue holds this pass's rows
	nested  bool // a pass inside a pass: rows of its own, the cache untouched
	// sorted and ordered are order's buffers (ring-all, random and tier
	// rules sort a member's rows).
	sorted, ordered []cand
	eligible        map[string]bool // queue → some agent could take a call now
}

// candCache is the candidate rows of every queue, kept between passes:
// which tiers name an agent that exists and whose status is offerable,
// in tier order. What a row's eligibility and order read (agent state,
// timers, counters, tier state, level, position) is read through its
// pointers at each pass, so only a change to the set of rows makes it
// stale: an agent added, deleted or replaced, an agent's status, a tier
// added or deleted. Each such change calls rowsChanged; the tests check
// the cache against a fresh build at every pass (checkCands).
type candCache struct {
	byQueue map[string][]cand
	ok      bool // byQueue matches the agents and tiers
}

// checkCands makes every pass compare the cached rows with a fresh build
// and panic on a difference (set by the tests).
var checkCands = false

// rowsChanged marks the candidate rows stale: the next pass rebuilds them.
// A pass already running keeps the rows it took (as when every pass built
// its own).
func (a *ACD) rowsChanged() { a.cands.ok = false }

// dispatchBufs are dispatch's buffers, kept between passes (the loop
// dispatches after most messages) and emptied after each pass so they hold
// no member, agent or tier.
type dispatchBufs struct {
	pc      passCache
	ms      memberHeap
	queues  map[string]*Queue
	running bool // a pass is using them (a nested pass gets its own)
}

// begin returns the buffers for a pass, empty; end gives them back. The
// member heap is the buffers' own (a pointer, so that heap's interface
// calls do not move a copy to the heap at every pass).
func (b *dispatchBufs) begin() (*passCache, *memberHeap, map[string]*Queue) {
	if b.running {
		return &passCache{eligible: map[string]bool{}, nested: true}, new(memberHeap), map[string]*Queue{}
	}
	b.running = true
	if b.pc.eligible == nil {
		b.pc.eligible = map[string]bool{}
		b.queues = map[string]*Queue{}
	}
	b.ms = b.ms[:0]
	return &b.pc, &b.ms, b.queues
}

func (b *dispatchBufs) end(pc *passCache) {
	if pc != &b.pc {
		return
	}
	b.running = false
	clear(b.ms[:cap(b.ms)])
	b.ms = b.ms[:0]
	clear(b.queues)
	clear(b.pc.eligible)
	b.pc.byQueue = nil // the cache's (a.cands), not the pass's
	clear(b.pc.sorted)
	clear(b.pc.ordered)
	b.pc.sorted, b.pc.ordered = b.pc.sorted[:0], b.pc.ordered[:0]
	b.pc.built = false
}

// offerable reports statuses whose agents appear in the candidate rows
// (On Break agents count for tier rules and "an agent exists" but are
// never offered calls).
func offerable(status config.AgentStatus) bool {
	return status == config.StatusAvailable || status == config.StatusOnBreak || status == config.StatusAvailableOnDemand
}

// eligible is the per-row check of §6.2 step 4.
func (a *ACD) eligible(c cand, q *Queue, now int64) bool {
	ok, _ := a.eligibleAt(c, q, now)
	return ok
}

// eligibleAt is eligible plus, for an agent held back only by wrap-up or
// ready_time, the second at which that ends (0 otherwise), so dispatch
// can wake up then instead of polling.
func (a *ACD) eligibleAt(c cand, q *Queue, now int64) (bool, int64) {
	ag := c.ag
	if c.t.State != config.TierReady && c.t.State != config.TierNoAnswer {
		return false, 0
	}
	if ag.State != config.StateWaiting || ag.Status == config.StatusOnBreak || !offerable(ag.Status) {
		return false, 0
	}
	if q.SkipAgentsWithExternalCalls && ag.ExternalCallsCount > 0 {
		return false, 0
	}
	var at int64
	if !(ag.LastBridgeEnd < now-ag.WrapUpTime) {
		at = ag.LastBridgeEnd + ag.WrapUpTime + 1
	}
	if ag.ReadyTime > now && ag.ReadyTime > at {
		at = ag.ReadyTime
	}
	if ag.retryAt > now && ag.retryAt > at {
		at = ag.retryAt
	}
	if ag.claiming {
		return false, 0
	}
	if ag.lostUntil > now && ag.lostUntil > at {
		at = ag.lostUntil
	}
	return at == 0, at
}

// rows returns queue q's candidate rows for the pass: the cached rows,
// rebuilt first when stale. The pass takes them once; a change during the
// pass shows at the next one.
func (a *ACD) rows(pc *passCache, q string) []cand {
	if !pc.built {
		pc.built = true
		switch {
		case pc.nested:
			pc.byQueue = a.buildRows(nil)
		case !a.cands.ok:
			a.cands.byQueue = a.buildRows(a.cands.byQueue)
			a.cands.ok = true
			pc.byQueue = a.cands.byQueue
		default:
			if checkCands {
				a.checkRows()
			}
			pc.byQueue = a.cands.byQueue
		}
	}
	return pc.byQueue[q]
}

// buildRows builds every queue's candidate rows into byQueue's slices
// (emptied first; a queue left without rows is dropped).
func (a *ACD) buildRows(byQueue map[string][]cand) map[string][]cand {
	if byQueue == nil {
		byQueue = make(map[string][]cand)
	}
	for q, rows := range byQueue {
		clear(rows)
		byQueue[q] = rows[:0]
	}
	for _, t := range a.tiers {
		ag := a.agents[t.Agent]
		if ag == nil || !offerable(ag.Status) {
			continue
		}
		byQueue[t.Queue] = append(byQueue[t.Queue], cand{ag, t})
	}
	for q, rows := range byQueue {
		if len(rows) == 0 {
			delete(byQueue, q) // a queue no tier names any more
		}
	}
	return byQueue
}

// checkRows panics when the cached rows differ from a fresh build: a
// change to agents or tiers that did not call rowsChanged.
func (a *ACD) checkRows() {
	fresh := a.buildRows(nil)
	same := len(fresh) == len(a.cands.byQueue)
	for q, rows := range fresh {
		if !same {
			break
		}
		same = slices.Equal(rows, a.cands.byQueue[q])
	}
	if !same {
		panic("acd: candidate rows changed without rowsChanged")
	}
}

func (a *ACD) anyEligible(pc *passCache, q *Queue, now int64) bool {
	if v, ok := pc.eligible[q.Name]; ok {
		return v
	}
	v := false
	for _, c := range a.rows(pc, q.Name) {
		ok, at := a.eligibleAt(c, q, now)
		if ok {
			v = true
			break
		}
		if at > 0 {
			a.wakeAt(at)
		}
	}
	pc.eligible[q.Name] = v
	return v
}

// offeredBefore orders agents by when they were last offered a call;
// offerSeq breaks ties within one second, which FreeSWITCH leaves to the
// database.
func offeredBefore(x, y *Agent) bool {
	if x.LastOffered != y.LastOffered {
		return x.LastOffered < y.LastOffered
	}
	return x.offerSeq < y.offerSeq
}

func byLevelPos(x, y cand) int {
	if c := cmp.Compare(x.t.Level, y.t.Level); c != 0 {
		return c
	}
	return cmp.Compare(x.t.Position, y.t.Position)
}

// ordering returns the strategy's row comparison (§6.1) and, for
// top-down and round-robin, the rows that come first: those after the
// member's last agent (§6.6) or the queue's last offered agent (§6.7).
// Ties keep tier insertion order.
func (a *ACD) ordering(q *Queue, m *Member, base []cand) (func(x, y cand) int, func(c cand) bool) {
	levelThen := func(k func(c cand) int64) func(x, y cand) int {
		return func(x, y cand) int {
			if c := cmp.Compare(x.t.Level, y.t.Level); c != 0 {
				return c
			}
			if c := cmp.Compare(k(x), k(y)); c != 0 {
				return c
			}
			return cmp.Compare(x.t.Position, y.t.Position)
		}
	}
	sequential := func(x, y cand) int {
		if c := byLevelPos(x, y); c != 0 {
			return c
		}
		if c := cmp.Compare(x.ag.LastOffered, y.ag.LastOffered); c != 0 {
			return c
		}
		return cmp.Compare(x.ag.offerSeq, y.ag.offerSeq)
	}
	switch q.Strategy {
	case config.StrategyLongestIdleAgent:
		return levelThen(func(c cand) int64 { return c.ag.LastBridgeEnd }), nil
	case config.StrategyAgentWithLeastTalkTime:
		return levelThen(func(c cand) int64 { return c.ag.TalkTime }), nil
	case config.StrategyAgentWithFewestCalls:
		return levelThen(func(c cand) int64 { return c.ag.CallsAnswered }), nil
	case config.StrategyRingAll, config.StrategyRingProgressively:
		return byLevelPos, nil
	case config.StrategyRandom:
		return func(x, y cand) int { return cmp.Compare(x.t.Level, y.t.Level) }, nil
	case config.StrategyTopDown:
		// FreeSWITCH only restarts from the top when no agent at all
		// follows the last one, so a tail of busy agents stalls the member
		// (#1216). Here the scan always continues from the top.
		return sequential, func(c cand) bool {
			return (c.t.Level == m.tdLevel && c.t.Position > m.tdPos) || c.t.Level > m.tdLevel
		}
	case config.StrategyRoundRobin:
		var ref *cand
		for i := range base {
			c := &base[i]
			if c.ag.LastOffered > 0 && (ref == nil || offeredBefore(ref.ag, c.ag)) {
				ref = c
			}
		}
		if ref == nil {
			return sequential, nil
		}
		l, p := ref.t.Level, ref.t.Position
		return sequential, func(c cand) bool { return c.t.Level == l && c.t.Position > p }
	}
	return sequential, nil
}

// order returns the member's candidate rows in the strategy's order: the
// "after" rows first, then every row (so the list wraps). It builds them
// in pc's buffers, good until the next order of the pass.
func (a *ACD) order(pc *passCache, q *Queue, m *Member, base []cand) []cand {
	cmpf, after := a.ordering(q, m, base)
	cs := append(pc.sorted[:0], base...)
	pc.sorted = cs
	if q.Strategy == config.StrategyRandom {
		a.rnd.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	}
	slices.SortStableFunc(cs, cmpf)
	if after == nil {
		return cs
	}
	out := pc.ordered[:0]
	for _, c := range cs {
		if after(c) {
			out = append(out, c)
		}
	}
	out = append(out, cs...)
	pc.ordered = out
	return out
}

// pick is the scan for strategies that offer one agent per pass without
// tier rules: the first eligible row in strategy order, found in one linear
// pass instead of sorting every row.
func (a *ACD) pick(q *Queue, m *Member, base []cand, now int64) (cand, bool) {
	cmpf, after := a.ordering(q, m, base)
	best, found := cand{}, false
	consider := func(keep func(cand) bool) {
		for _, c := range base {
			if keep != nil && !keep(c) {
				continue
			}
			if found && cmpf(c, best) >= 0 {
				continue
			}
			if !a.eligible(c, q, now) {
				continue
			}
			if _, busy := m.offers[c.ag.Name]; busy {
				continue
			}
			best, found = c, true
		}
	}
	if after != nil {
		consider(after)
		if found {
			return best, true
		}
	}
	consider(nil)
	return best, found
}

// dispatch is one pass over the waiting members, highest score first
// (§5, §6.2). It runs in the loop after any message that may let a call
// reach an agent.
func (a *ACD) dispatch() {
	if a.closing || a.fenced {
		return
	}
	now := a.now()
	pc, ms, queues := a.bufs.begin()
	defer a.bufs.end(pc)
	for _, m := range a.members {
		// A member whose max-wait-time passed while agents rang gets no
		// new offers: it leaves once those end unanswered.
		if m.app == nil || m.exiting || m.pendingTimeout || m.InstanceID != a.instanceID {
			continue
		}
		if m.State != config.MemberWaiting && (m.State != config.MemberTrying || !ringStrategy(config.Strategy(m.ServingAgent))) {
			continue
		}
		// A cluster claim in flight stands for the member's one offer.
		if m.claiming > 0 && !ringStrategy(config.Strategy(m.ServingAgent)) {
			continue
		}
		// A caller who hung up stays registered until its app's leave
		// reaches the loop; an offer that ends in between (an agent who
		// answers as the caller goes) must not hand it to another agent.
		// Asked last: it takes the channel's lock, and most members of a
		// busy queue are in a call, not waiting.
		if m.ch != nil && !m.ch.Ready() {
			continue
		}
		q, seen := queues[m.Queue]
		if !seen {
			q = a.lookupQueue(m.Queue)
			queues[m.Queue] = q
		}
		if q == nil {
			// The queue vanished from the configuration: nothing can serve
			// this caller, so let the dialplan go on.
			a.kick(m, config.ReasonBreakOut)
			continue
		}
		*ms = append(*ms, scored{m: m, q: q, score: m.score(now), seq: m.seq})
	}
	// The no-agent bookkeeping of §9.4 is per queue and pass.
	for _, q := range queues {
		if q != nil {
			q.lastAgentExistCheck = now
			if len(a.rows(pc, q.Name)) > 0 {
				q.lastAgentExist = now
			}
		}
	}
	open := func() bool {
		for _, q := range queues {
			if q != nil && a.anyEligible(pc, q, now) {
				return true
			}
		}
		return false
	}
	if !open() {
		return
	}
	// Members are taken highest score first; a heap stops paying for the
	// order as soon as no agent is left to offer.
	heap.Init(ms)
	for ms.Len() > 0 {
		sm := ms.pop()
		m, q := sm.m, sm.q
		a.fixStrategy(m, q)
		if !a.anyEligible(pc, q, now) {
			continue
		}
		if q.Strategy == config.StrategyRingProgressively && m.lastOrig > 0 && now < m.lastOrig+q.progressiveDelay() && len(m.offers) > 0 {
			// Not yet time to add the next agent. FreeSWITCH sleeps the
			// whole dispatcher here; ccpbx schedules a wake-up instead.
			a.wakeAt(m.lastOrig + q.progressiveDelay())
			continue
		}
		if a.scan(pc, m, q, a.rows(pc, q.Name), now) {
			clear(pc.eligible)
			if !open() {
				return
			}
		}
	}
}

// scored is a member in one dispatch pass.
type scored struct {
	m          *Member
	q          *Queue
	score, seq int64
}

// memberHeap orders members by score, highest first, then by arrival.
type memberHeap []scored

func (h memberHeap) Len() int { return len(h) }
func (h memberHeap) Less(i, j int) bool {
	if h[i].score != h[j].score {
		return h[i].score > h[j].score
	}
	return h[i].seq < h[j].seq
}
func (h memberHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *memberHeap) Push(x any)   { *h = append(*h, x.(scored)) }

// pop is heap.Pop without boxing the member into an interface.
func (h *memberHeap) pop() scored {
	n := len(*h) - 1
	h.Swap(0, n)
	x := (*h)[n]
	*h = (*h)[:n]
	if n > 0 {
		heap.Fix(h, 0)
	}
	return x
}

func (h *memberHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// fixStrategy keeps a member consistent with its queue's current strategy
// (§4.3).
func (a *ACD) fixStrategy(m *Member, q *Queue) {
	ring := ringStrategy(q.Strategy)
	switch {
	case ringStrategy(config.Strategy(m.ServingAgent)) && ring && m.ServingAgent != string(q.Strategy):
		m.ServingAgent = string(q.Strategy)
		a.saveMember(m)
	case ringStrategy(config.Strategy(m.ServingAgent)) && !ring && len(m.offers) == 0:
		m.ServingAgent = ""
		m.State = config.MemberWaiting
		a.saveMember(m)
	case !ringStrategy(config.Strategy(m.ServingAgent)) && ring && m.State == config.MemberWaiting && m.ServingAgent == "":
		m.ServingAgent = string(q.Strategy)
		a.saveMember(m)
	}
}

// scan walks the member's candidate rows and launches offers. It reports
// whether an offer was launched.
func (a *ACD) scan(pc *passCache, m *Member, q *Queue, base []cand, now int64) bool {
	if !q.TierRulesApply && q.Strategy != config.StrategyRingAll && q.Strategy != config.StrategyRandom {
		c, ok := a.pick(q, m, base, now)
		if ok {
			a.launch(m, q, c, now)
		}
		return ok
	}
	cs := a.order(pc, q, m, base)
	var tierLevel, avail int64
	launched := false
	for _, c := range cs {
		if q.TierRulesApply && c.t.Level > tierLevel {
			waited := now - m.JoinedEpoch
			switch {
			case q.TierRuleNoAgentNoWait && avail == 0:
				tierLevel = c.t.Level
			case q.TierRuleWaitMultiplyLevel && waited >= c.t.Level*q.TierRuleWaitSecond:
				tierLevel, avail = c.t.Level, 0
			case !q.TierRuleWaitMultiplyLevel && waited >= q.TierRuleWaitSecond:
				tierLevel, avail = c.t.Level, 0
			default:
				if q.TierRuleWaitMultiplyLevel {
					a.wakeAt(m.JoinedEpoch + c.t.Level*q.TierRuleWaitSecond)
				} else {
					a.wakeAt(m.JoinedEpoch + q.TierRuleWaitSecond)
				}
				return launched
			}
		}
		avail++
		if !a.eligible(c, q, now) {
			continue
		}
		if _, busy := m.offers[c.ag.Name]; busy {
			continue
		}
		a.launch(m, q, c, now)
		launched = true
		if q.Strategy != config.StrategyRingAll {
			return true
		}
	}
	return launched
}

// launch claims the member and the agent and starts the offer (§6.2 steps
// 6-8). A cluster node first claims the agent (cluster.go), off the loop.
func (a *ACD) launch(m *Member, q *Queue, c cand, now int64) {
	if a.cl != nil {
		a.claim(m, q, c)
		return
	}
	a.offer(m, q, c, now)
}

// offer is launch once the agent is this node's to offer.
func (a *ACD) offer(m *Member, q *Queue, c cand, now int64) {
	ag := c.ag
	if a.cfg.Settings.ReserveAgents {
		// The claim below cannot fail inside the loop, so the reservation
		// never leaks as it can in FreeSWITCH (#2540).
		a.setState(ag, config.StateReserved)
	}
	if ringStrategy(q.Strategy) {
		m.ServingAgent = string(q.Strategy)
		m.State = config.MemberTrying
	} else {
		m.ServingAgent = ag.Name
		m.ServingSystem = a.system
		m.State = config.MemberTrying
	}
	a.saveMember(m)
	switch q.Strategy {
	case config.StrategyRingProgressively:
		m.lastOrig = now
		if m.ch != nil {
			m.ch.SetVar("cc_last_originated_call", itoa(now))
		}
		a.wakeAt(now + q.progressiveDelay())
	case config.StrategyTopDown:
		m.tdLevel, m.tdPos = c.t.Level, c.t.Position
		if m.ch != nil {
			m.ch.SetVar("cc_last_agent_tier_level", itoa(c.t.Level))
			m.ch.SetVar("cc_last_agent_tier_position", itoa(c.t.Position))
		}
	}
	a.offerSeq++
	ag.offerSeq = a.offerSeq
	ag.LastOffered = now
	a.setState(ag, config.StateReceiving)
	c.t.State = config.TierOffering
	a.saveTier(c.t)
	for _, t := range a.tiers {
		if t.Agent == ag.Name && t != c.t && t.State == config.TierReady {
			t.State = config.TierStandby
			a.saveTier(t)
		}
	}
	a.startOffer(m, q, ag, now)
}

// releaseTiers ends an offer or call on the agent's tiers (§8.2).
func (a *ACD) releaseTiers(ag *Agent, queue string, state config.TierState) {
	for _, t := range a.tiers {
		if t.Agent != ag.Name {
			continue
		}
		switch {
		case t.Queue == queue && (t.State == config.TierActiveInbound || t.State == config.TierStandby || t.State == config.TierOffering):
			t.State = state
			a.saveTier(t)
		case t.Queue != queue && t.State == config.TierStandby:
			t.State = config.TierReady
			a.saveTier(t)
		}
	}
}

// kick tells a waiting member's app to leave with reason.
func (a *ACD) kick(m *Member, reason config.CancelReason) {
	if m.exiting || m.app == nil {
		return
	}
	m.exiting = true
	select {
	case m.app.exit <- reason:
	default:
	}
}

// checkMembers applies max-wait-time and max-wait-time-with-no-agent
// (§9.4) to every live member.
func (a *ACD) checkMembers() {
	now := a.now()
	for _, m := range a.members {
		if m.app == nil || m.exiting || (m.State != config.MemberWaiting && m.State != config.MemberTrying) {
			continue
		}
		q := a.lookupQueue(m.Queue)
		if q == nil {
			continue
		}
		if q.MaxWaitTime > 0 && now-m.t0 >= q.MaxWaitTime {
			if len(m.offers) > 0 {
				// An agent is ringing; FreeSWITCH waits for the outcome
				// before timing the caller out.
				m.pendingTimeout = true
			} else {
				a.kick(m, config.ReasonTimeout)
			}
			continue
		}
		mw := q.MaxWaitTimeWithNoAgent
		if mw <= 0 {
			continue
		}
		check, exist := q.lastAgentExistCheck, q.lastAgentExist
		if check > exist && m.t0 <= check && check-exist >= mw {
			if q.MaxWaitTimeWithNoAgentReach > 0 {
				if check-m.t0 >= mw+q.MaxWaitTimeWithNoAgentReach {
					a.kick(m, config.ReasonNoAgentTimeout)
				} else {
					a.wakeAt(m.t0 + mw + q.MaxWaitTimeWithNoAgentReach)
				}
			} else {
				a.kick(m, config.ReasonNoAgentTimeout)
			}
		} else if exist+mw > now {
			a.wakeAt(exist + mw)
		}
	}
}

// discardAbandoned deletes Abandoned rows older than discard-abandoned-after.
func (a *ACD) discardAbandoned() {
	now := a.now()
	for _, m := range a.members {
		if m.State != config.MemberAbandoned || m.app != nil {
			continue
		}
		if a.cl != nil && m.InstanceID != a.instanceID {
			// Another node's caller, kept for resume: its row is its
			// node's to delete.
			continue
		}
		q := a.lookupQueue(m.Queue)
		if q == nil {
			a.dropMember(m)
			continue
		}
		base := m.AbandonedEpoch
		if base == 0 {
			base = m.JoinedEpoch
		}
		if base+q.DiscardAbandonedAfter < now {
			a.dropMember(m)
		} else {
			a.wakeAt(base + q.DiscardAbandonedAfter + 1)
		}
	}
}

// expandVars replaces ${name} with the member channel's variables, as
// FreeSWITCH expands contacts and templates against the member session.
func expandVars(s string, get func(string) string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(get(s[i+2 : i+j]))
		s = s[i+j+1:]
	}
}
