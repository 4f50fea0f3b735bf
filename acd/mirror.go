package acd

import (
	"context"

	"ccpbx/config"
	"ccpbx/store"
)

// The mirror: other cluster nodes' writes of shared agents, tiers and
// Abandoned members reach this node as notices naming a row; the row is
// read off the loop and applied in it by the claim holder's rule (see
// cluster.go), with the events a local change fires.

// Notice kinds the ACD mirrors (store's notice kinds).
const (
	NoticeAgent  = store.NoticeAgent
	NoticeTier   = store.NoticeTier
	NoticeMember = store.NoticeMember
	NoticeClaim  = store.NoticeClaim
	NoticeResync = store.NoticeResync
)

// Notice mirrors another node's write named by a notice: kind is
// "agent" (key = name), "tier" (key = "queue|agent"), "member" (key =
// uuid), "claim" (key = agent) or "resync" (reload everything mirrored).
// The row is read off the loop, behind this node's queued writes (see
// "Mirror reads" below); from is the sending node (its own notices are
// ignored).
func (a *ACD) Notice(kind, key, from string) {
	if a.cl == nil || (from != "" && from == a.instanceID) {
		return
	}
	switch kind {
	case NoticeAgent:
		if key == "" {
			a.resync()
			return
		}
		a.post(func() { a.mirrorRead(rowKey{kind: rowAgent, a: key}) })
	case NoticeClaim:
		// A claim taken or released elsewhere: an agent held back by a
		// lost claim may be tried again; its row comes with its own notice.
		a.post(func() {
			if ag := a.agents[key]; ag != nil {
				ag.claimNotices++
				if ag.lostUntil != 0 {
					ag.lostUntil = 0
					a.dirty = true
				}
			}
		})
	case NoticeTier:
		if key == "" {
			a.resync()
			return
		}
		queue, agent, ok := store.SplitTierKey(key)
		if !ok {
			return
		}
		a.post(func() { a.mirrorRead(rowKey{kind: rowTier, a: queue, b: agent}) })
	case NoticeResync:
		a.resync()
	case NoticeMember:
		if a.resumeAny.Load() {
			a.post(func() { a.mirrorRead(rowKey{kind: rowMember, a: key}) })
		}
	}
}

// Mirror reads and this node's own writes. The persister writes this
// node's rows behind the loop, so a row read from the database the moment
// a notice arrives can be older than this node's copy of it (its newer
// write still queued): applied, it would bring back an old
// last_offered_call or a tier still Offering, and the dispatcher would
// skip or mis-sort the agent with nothing logged (the cluster test's
// "agent never offered"). So:
//   - a read runs in the persister's queue, behind every write this node
//     queued before it, and reads complete in the order they started (one
//     persister goroutine, one FIFO inbox), so a result never undoes a
//     newer read's;
//   - a result is discarded when this node wrote the row (in memory) after
//     the read started, and the row is read again, behind that write;
//   - one read per row is in flight: notices for a row being read set
//     "again", and one more read follows;
//   - a resync (every agent and tier) follows the same rules row by row.

// rowKind says which shared table a rowKey names.
type rowKind uint8

const (
	rowAgent  rowKind = iota + 1 // a = name
	rowTier                      // a = queue, b = agent
	rowMember                    // a = uuid
)

// rowKey names one shared row (no allocation to build one).
type rowKey struct {
	kind rowKind
	a, b string
}

func (k rowKey) String() string {
	switch k.kind {
	case rowAgent:
		return "agent " + k.a
	case rowTier:
		return "tier " + store.TierKey(k.a, k.b)
	case rowMember:
		return "member " + k.a
	}
	return "?"
}

// rowRead is one mirror read in flight: again when a notice for the row
// arrived since it started.
type rowRead struct{ again bool }

// mirrorState is the loop's bookkeeping of mirror reads (cluster only).
type mirrorState struct {
	// seq orders this node's writes and the starts of mirror reads.
	seq int64
	// wrote: the seq of this node's last write of a row, kept only while
	// some read is in flight (a write matters only to a read started
	// before it); emptied when none is.
	wrote map[rowKey]int64
	// reading: the one read in flight per row.
	reading map[rowKey]*rowRead
	// inFlight counts reads in flight, the resync included.
	inFlight int
	// resync: one in flight; again (with its afters) when another was
	// asked for meanwhile.
	resyncing   bool
	resyncAgain bool
	resyncAfter []func()
	// discarded counts results dropped because this node's copy was newer
	// (cluster acd).
	discarded int64
}

// queueWrite queues one call-center write and, on a cluster node, notes
// that this node's copy of the row is newer than any read in flight.
func (a *ACD) queueWrite(w store.CallcenterWrite) {
	if a.cl != nil && a.mir.inFlight > 0 {
		var k rowKey
		switch w.Kind {
		case store.UpsertAgentWrite, store.DeleteAgentWrite:
			k = rowKey{kind: rowAgent, a: w.Agent.Name}
		case store.UpsertTierWrite, store.DeleteTierWrite:
			k = rowKey{kind: rowTier, a: w.Tier.Queue, b: w.Tier.Agent}
		case store.UpsertMemberWrite, store.DeleteMemberWrite:
			k = rowKey{kind: rowMember, a: w.Member.UUID}
		}
		a.mir.seq++
		if a.mir.wrote == nil {
			a.mir.wrote = map[rowKey]int64{}
		}
		a.mir.wrote[k] = a.mir.seq
	}
	a.persist.addWrite(w)
}

// newerHere reports whether this node wrote row k after a read started at
// seq s.
func (a *ACD) newerHere(k rowKey, s int64) bool {
	return a.mir.wrote[k] > s
}

// readEnded ends one read's bookkeeping.
func (a *ACD) readEnded() {
	a.mir.inFlight--
	if a.mir.inFlight == 0 {
		clear(a.mir.wrote)
	}
}

// mirrorResult is what a mirror read found.
type mirrorResult struct {
	agent  store.AgentRow
	tier   store.TierRow
	member store.MemberRow
	found  bool
}

// mirrorRead reads row k behind this node's queued writes and mirrors it
// in the loop (mirrorReadDone). In the loop.
func (a *ACD) mirrorRead(k rowKey) {
	if r := a.mir.reading[k]; r != nil {
		r.again = true
		return
	}
	if a.mir.reading == nil {
		a.mir.reading = map[rowKey]*rowRead{}
	}
	a.mir.reading[k] = &rowRead{}
	a.mir.inFlight++
	a.mir.seq++
	s, cl := a.mir.seq, a.cl
	a.persist.addEffect(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		var res mirrorResult
		var err error
		switch k.kind {
		case rowAgent:
			res.agent, res.found, err = cl.LoadAgent(ctx, k.a)
		case rowTier:
			res.tier, res.found, err = cl.LoadTier(ctx, k.a, k.b)
		case rowMember:
			res.member, res.found, err = cl.LoadMember(ctx, k.a)
		}
		cancel()
		a.post(func() { a.mirrorReadDone(k, s, res, err) })
		return nil
	})
}

// mirrorReadDone applies a read of row k started at seq s, unless this
// node wrote the row since (then it reads it again, behind that write).
func (a *ACD) mirrorReadDone(k rowKey, s int64, res mirrorResult, err error) {
	r := a.mir.reading[k]
	delete(a.mir.reading, k)
	again := r != nil && r.again
	switch {
	case err != nil:
		a.log.Warn("cluster: row not reloaded", "row", k.String(), "err", err)
	case a.newerHere(k, s):
		a.mir.discarded++
		a.log.Debug("cluster: mirror read discarded: this node wrote the row since; reading it again", "row", k.String())
		again = true
	default:
		switch k.kind {
		case rowAgent:
			a.mirrorAgent(k.a, res.agent, res.found)
		case rowTier:
			var rows []store.TierRow
			if res.found {
				rows = append(rows, res.tier)
			}
			a.mirrorTiers(store.TierKey(k.a, k.b), rows, nil)
		case rowMember:
			a.mirrorMember(k.a, res.member, res.found)
		}
	}
	a.readEnded()
	if again {
		a.mirrorRead(k)
	}
}

// resync reloads and mirrors every shared agent and tier (a notice gap, a
// truncate, an adoption, a rejoin).
func (a *ACD) resync() { a.resyncThen(nil) }

// resyncThen is resync, then (in the loop) after. Not in the loop.
func (a *ACD) resyncThen(after func()) {
	if a.st == nil {
		return
	}
	a.post(func() { a.startResync(after) })
}

// startResync reads every agent and tier behind this node's queued
// writes; a resync asked for while one is in flight follows it. In the
// loop.
func (a *ACD) startResync(after func()) {
	if after != nil {
		a.mir.resyncAfter = append(a.mir.resyncAfter, after)
	}
	if a.mir.resyncing {
		a.mir.resyncAgain = true
		return
	}
	a.mir.resyncing = true
	a.mir.inFlight++
	a.mir.seq++
	s, st := a.mir.seq, a.st
	afters := a.mir.resyncAfter
	a.mir.resyncAfter = nil
	a.persist.addEffect(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*claimTimeout)
		rows, err := st.LoadCallcenter(ctx)
		cancel()
		a.post(func() { a.resyncDone(s, rows, err, afters) })
		return nil
	})
}

// resyncDone mirrors a resync started at seq s: every row this node has
// not written since (those are read again one by one).
func (a *ACD) resyncDone(s int64, rows *store.CallcenterRows, err error, afters []func()) {
	a.mir.resyncing = false
	if err != nil {
		a.log.Warn("cluster: agents and tiers not reloaded", "err", err)
		// What waited for this resync waits for the next one.
		a.mir.resyncAfter = append(afters, a.mir.resyncAfter...)
	} else {
		var reread []rowKey
		fresh := func(k rowKey) bool {
			if a.newerHere(k, s) {
				a.mir.discarded++
				reread = append(reread, k)
				return false
			}
			return true
		}
		seen := map[string]bool{}
		for _, r := range rows.Agents {
			seen[r.Name] = true
			if fresh(rowKey{kind: rowAgent, a: r.Name}) {
				a.mirrorAgent(r.Name, r, true)
			}
		}
		for name := range a.agents {
			if !seen[name] && fresh(rowKey{kind: rowAgent, a: name}) {
				a.mirrorAgent(name, store.AgentRow{}, false)
			}
		}
		a.mirrorTiers("", rows.Tiers, func(queue, agent string) bool {
			return !fresh(rowKey{kind: rowTier, a: queue, b: agent})
		})
		if len(reread) > 0 {
			a.log.Debug("cluster: resync kept this node's newer rows; reading them again", "rows", len(reread))
		}
		for _, k := range reread {
			a.mirrorRead(k)
		}
		for _, f := range afters {
			f()
		}
	}
	a.readEnded()
	if a.mir.resyncAgain {
		a.mir.resyncAgain = false
		a.startResync(nil)
	}
}

// mirrorAgent applies another node's agent row: configuration columns and
// the status always, the state and its bookkeeping only when this node
// does not hold the agent's claim (the holder owns them).
func (a *ACD) mirrorAgent(name string, r store.AgentRow, found bool) {
	ag := a.agents[name]
	if !found {
		if ag == nil || ag.held || ag.claiming {
			return
		}
		delete(a.agents, name)
		a.rowsChanged()
		kept := a.tiers[:0]
		for _, t := range a.tiers {
			if t.Agent != name {
				kept = append(kept, t)
			}
		}
		clear(a.tiers[len(kept):])
		a.tiers = kept
		// As a local `agent del`, which fires no event (§13.2 has none).
		a.cancelAgentOffers(ag)
		return
	}
	nr := agentFromRow(r)
	if ag != nil {
		ag.mirrored++
	}
	if ag == nil {
		a.agentSeq++
		nr.seq = a.agentSeq
		a.agents[name] = nr
		a.rowsChanged()
		a.fire(nil, "CC-Agent", name, "CC-Agent-Type", nr.Type, "CC-Action", "agent-add")
		a.dirty = true
		return
	}
	ag.lostUntil = 0
	// A status older than this node's own (set here a moment ago) is a
	// stale row: another node wrote its whole agent row before it had
	// mirrored this node's change. The newer status stands, and is
	// written again so every node converges on it.
	rewrite := false
	if nr.Status != ag.Status && nr.LastStatusChange < ag.LastStatusChange {
		nr.Status, nr.LastStatusChange = ag.Status, ag.LastStatusChange
		rewrite = true
	}
	// The claim holder owns the state columns: a row from another node
	// that differs in them was written from an older copy (a node seeding
	// the agent at its start, a status set elsewhere before that node had
	// mirrored this node's offer). This node's stand, and are written
	// again, or the shared row (and every node that mirrors it) would keep
	// the agent Waiting while it is in a call here.
	if ag.held && holderColumnsDiffer(ag, nr) {
		rewrite = true
	}
	if rewrite {
		defer a.saveAgent(ag)
	}
	ag.Type, ag.MaxNoAnswer, ag.WrapUpTime = nr.Type, nr.MaxNoAnswer, nr.WrapUpTime
	ag.RejectDelayTime, ag.BusyDelayTime, ag.NoAnswerDelayTime = nr.RejectDelayTime, nr.BusyDelayTime, nr.NoAnswerDelayTime
	if ag.Contact != nr.Contact || ag.ContactNull != nr.ContactNull {
		ag.Contact, ag.ContactNull = nr.Contact, nr.ContactNull
		a.fire(nil, "CC-Agent", ag.Name, "CC-Action", "agent-contact-change", "CC-Agent-Contact", ag.Contact)
	}
	now := a.now()
	if !ag.held && !ag.claiming {
		// Another node offered the agent more recently than this node
		// knows: within one second (last_offered_call's unit) it now sorts
		// after every offer this node made, as it would on that node.
		if nr.LastOffered > ag.LastOffered {
			a.offerSeq++
			ag.offerSeq = a.offerSeq
		}
		ag.InstanceID, ag.UUID, ag.UUIDNull = nr.InstanceID, nr.UUID, nr.UUIDNull
		ag.LastBridgeStart, ag.LastBridgeEnd, ag.LastOffered = nr.LastBridgeStart, nr.LastBridgeEnd, nr.LastOffered
		ag.NoAnswerCount, ag.CallsAnswered, ag.TalkTime = nr.NoAnswerCount, nr.CallsAnswered, nr.TalkTime
		ag.ReadyTime, ag.ExternalCallsCount = nr.ReadyTime, nr.ExternalCallsCount
		ag.LastStatusChange = nr.LastStatusChange
		if ag.State != nr.State {
			ag.State = nr.State
			a.fireState(ag)
		}
		if ag.ReadyTime > now {
			a.wakeAt(ag.ReadyTime)
		}
		if ag.WrapUpTime > 0 && ag.LastBridgeEnd+ag.WrapUpTime >= now {
			a.wakeAt(ag.LastBridgeEnd + ag.WrapUpTime + 1)
		}
	}
	if ag.Status != nr.Status {
		ag.Status = nr.Status
		a.rowsChanged()
		ag.LastStatusChange = nr.LastStatusChange
		// As a local `agent set status`: leaving Available cancels the
		// agent's ringing offer here too (§7.3); the queue_log line is the
		// changing node's.
		if ag.Status != config.StatusAvailable && ag.Status != config.StatusAvailableOnDemand {
			a.cancelAgentOffers(ag)
		}
		a.fireStatus(ag)
	}
	a.dirty = true
}

// holderColumnsDiffer reports whether row differs from ag in a column
// the claim holder owns.
func holderColumnsDiffer(ag, row *Agent) bool {
	return ag.State != row.State || ag.LastOffered != row.LastOffered || ag.LastBridgeStart != row.LastBridgeStart ||
		ag.LastBridgeEnd != row.LastBridgeEnd || ag.ReadyTime != row.ReadyTime || ag.UUID != row.UUID ||
		ag.NoAnswerCount != row.NoAnswerCount || ag.CallsAnswered != row.CallsAnswered || ag.TalkTime != row.TalkTime
}

// mirrorTiers applies the shared tier rows: the one named key, or all.
// Level and position always; the state only when this node does not hold
// the agent (its offer sets the tier states). mine, when set, names the
// tiers whose copy here is newer than rows: they are left as they are.
func (a *ACD) mirrorTiers(key string, rows []store.TierRow, mine func(queue, agent string) bool) {
	want := map[[2]string]store.TierRow{}
	for _, r := range rows {
		if key == "" || store.TierKey(r.Queue, r.Agent) == key {
			want[[2]string{r.Queue, r.Agent}] = r
		}
	}
	before, added := len(a.tiers), false
	kept := a.tiers[:0]
	for _, t := range a.tiers {
		k := [2]string{t.Queue, t.Agent}
		r, ok := want[k]
		inScope := key == "" || store.TierKey(t.Queue, t.Agent) == key
		if inScope && mine != nil && mine(t.Queue, t.Agent) {
			delete(want, k)
			kept = append(kept, t)
			continue
		}
		ag := a.agents[t.Agent]
		holding := ag != nil && (ag.held || ag.claiming)
		held := ag != nil && ag.held
		if inScope && !ok && !holding {
			continue // deleted elsewhere
		}
		if ok {
			t.Level, t.Position = r.Level, r.Position
			switch {
			case !holding:
				t.State = config.TierState(r.State)
			case held && config.TierState(r.State) != t.State:
				// The holder's offer set it: an older copy was written
				// over it elsewhere (as for the agent's state).
				a.saveTier(t)
			}
			delete(want, k)
		}
		kept = append(kept, t)
	}
	clear(a.tiers[len(kept):])
	a.tiers = kept
	for _, r := range rows {
		k := [2]string{r.Queue, r.Agent}
		if _, ok := want[k]; !ok || a.agents[r.Agent] == nil {
			continue
		}
		delete(want, k)
		if mine != nil && mine(r.Queue, r.Agent) {
			continue // deleted here since
		}
		t := tierFromRow(r)
		a.tierSeq++
		t.seq = a.tierSeq
		a.tiers = append(a.tiers, t)
		added = true
	}
	if added || len(a.tiers) != before {
		a.rowsChanged() // a tier deleted or added; level, position and state are read live
	}
	a.dirty = true
}

// anyResume reports whether a configured queue allows abandoned-resume
// (only then do other nodes' Abandoned callers matter here).
func anyResume(cfg config.Callcenter) bool {
	for _, q := range cfg.Queues {
		if q.AbandonedResumeAllowed {
			return true
		}
	}
	return false
}

// mirrorMember keeps other nodes' Abandoned members, so a caller who
// calls back to this node resumes its place (abandoned-resume-allowed);
// other nodes' live members are theirs and not kept here.
//
// Another node's write is the newer truth, also for a row this node kept
// Abandoned: a caller it adopted who called back to another node is that
// node's now, and this node must not discard (delete) the row later.
func (a *ACD) mirrorMember(uuid string, r store.MemberRow, found bool) {
	m := a.members[uuid]
	if m != nil && m.app != nil {
		return // a caller in this node's queue
	}
	if found && r.InstanceID == a.instanceID {
		return // this node's row
	}
	if !found || r.State != string(config.MemberAbandoned) {
		if m != nil {
			delete(a.members, uuid)
		}
		return
	}
	if m != nil {
		m.MemberRow = r
		m.MemberRow.State = ""
		m.State = config.MemberAbandoned
		return
	}
	m = memberFromRow(r)
	a.memberSeq++
	m.seq = a.memberSeq
	a.members[uuid] = m
	a.dirty = true
}
