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
// The row is read off the loop; from is the sending node (its own notices
// are ignored).
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
		a.loadAgent(key)
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
		a.loadTier(key)
	case NoticeResync:
		a.resync()
	case NoticeMember:
		if a.resumeAny.Load() {
			a.loadMember(key)
		}
	}
}

func (a *ACD) loadAgent(name string) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
		r, ok, err := a.cl.LoadAgent(ctx, name)
		cancel()
		if err != nil {
			a.log.Warn("cluster: agent not reloaded", "agent", name, "err", err)
			return
		}
		a.post(func() { a.mirrorAgent(name, r, ok) })
	}()
}

// loadTier mirrors the one tier a notice names (key "queue|agent").
func (a *ACD) loadTier(key string) {
	queue, agent, ok := store.SplitTierKey(key)
	if !ok {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
		r, found, err := a.cl.LoadTier(ctx, queue, agent)
		cancel()
		if err != nil {
			a.log.Warn("cluster: tier not reloaded", "tier", key, "err", err)
			return
		}
		var rows []store.TierRow
		if found {
			rows = append(rows, r)
		}
		a.post(func() { a.mirrorTiers(key, rows) })
	}()
}

// resync reloads and mirrors every shared agent and tier (a notice gap, a
// truncate, an adoption, a rejoin).
func (a *ACD) resync() { a.resyncThen(nil) }

// resyncThen is resync, then (in the loop) after.
func (a *ACD) resyncThen(after func()) {
	if a.st == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*claimTimeout)
		rows, err := a.st.LoadCallcenter(ctx)
		cancel()
		if err != nil {
			a.log.Warn("cluster: agents and tiers not reloaded", "err", err)
			return
		}
		a.post(func() {
			seen := map[string]bool{}
			for _, r := range rows.Agents {
				seen[r.Name] = true
				a.mirrorAgent(r.Name, r, true)
			}
			for name := range a.agents {
				if !seen[name] {
					a.mirrorAgent(name, store.AgentRow{}, false)
				}
			}
			a.mirrorTiers("", rows.Tiers)
			if after != nil {
				after()
			}
		})
	}()
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
	if ag == nil {
		a.agentSeq++
		nr.seq = a.agentSeq
		a.agents[name] = nr
		a.fire(nil, "CC-Agent", name, "CC-Agent-Type", nr.Type, "CC-Action", "agent-add")
		a.dirty = true
		return
	}
	ag.lostUntil = 0
	// A status older than this node's own (set here a moment ago) is a
	// stale row: another node wrote its whole agent row before it had
	// mirrored this node's change. The newer status stands, and is
	// written again so every node converges on it.
	if nr.Status != ag.Status && nr.LastStatusChange < ag.LastStatusChange {
		nr.Status, nr.LastStatusChange = ag.Status, ag.LastStatusChange
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

// mirrorTiers applies the shared tier rows: the one named key, or all.
// Level and position always; the state only when this node does not hold
// the agent (its offer sets the tier states).
func (a *ACD) mirrorTiers(key string, rows []store.TierRow) {
	want := map[[2]string]store.TierRow{}
	for _, r := range rows {
		if key == "" || store.TierKey(r.Queue, r.Agent) == key {
			want[[2]string{r.Queue, r.Agent}] = r
		}
	}
	kept := a.tiers[:0]
	for _, t := range a.tiers {
		k := [2]string{t.Queue, t.Agent}
		r, ok := want[k]
		inScope := key == "" || store.TierKey(t.Queue, t.Agent) == key
		ag := a.agents[t.Agent]
		holding := ag != nil && (ag.held || ag.claiming)
		if inScope && !ok && !holding {
			continue // deleted elsewhere
		}
		if ok {
			t.Level, t.Position = r.Level, r.Position
			if !holding {
				t.State = config.TierState(r.State)
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
		t := tierFromRow(r)
		a.tierSeq++
		t.seq = a.tierSeq
		a.tiers = append(a.tiers, t)
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

func (a *ACD) loadMember(uuid string) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
		r, ok, err := a.cl.LoadMember(ctx, uuid)
		cancel()
		if err != nil {
			a.log.Warn("cluster: member not reloaded", "member", uuid, "err", err)
			return
		}
		a.post(func() { a.mirrorMember(uuid, r, ok) })
	}()
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
