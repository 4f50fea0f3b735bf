package acd

import (
	"context"
	"errors"
	"strings"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// Cluster mode. Every node runs its own loop for the callers it holds;
// agents and tiers are shared in PostgreSQL, and the one arbiter of "this
// agent rings for this caller" is a claim row there: a node offers an
// agent only after winning its claim, and releases it once the agent is
// free again and its row (state, ready_time, last_bridge_end) is written.
// The claim is a database round trip, so it runs off the loop: launch
// marks the agent as being claimed, the persister's goroutine claims, and
// the result comes back as a message. Nothing of this runs on a single
// box (a.cl is nil): dispatch takes the same path, with no goroutine hop
// and no allocation added.
//
// The claim holder owns the agent's state (state, ready_time, counters,
// last_*); any node may change its status. Notices from other nodes'
// writes are mirrored into the loop's copy by the same rule (mirror.go),
// with the callcenter::info events a local change fires, so ESL
// subscribers of every node see the whole cluster's agents.

// Cluster is what the ACD needs from the other nodes (cmd/ccpbx adapts
// package cluster and store.Cluster to it).
type Cluster interface {
	// Node is this node's id: members' instance_id and serving_system,
	// CC-Agent-System.
	Node() string
	// ClaimAgent makes this node the one that offers agent to member of
	// queue. Errors wrap ErrClaimLost (another node holds the agent, or
	// its row says it may not be offered) or ErrFenced (this node's lease
	// is gone).
	ClaimAgent(ctx context.Context, agent, queue, member string) (epoch int64, err error)
	// ReleaseClaim drops the claim of that epoch (no-op when it is gone).
	ReleaseClaim(ctx context.Context, agent string, epoch int64) error
	// LoadAgent, LoadTier and LoadMember read one shared row (false: no
	// such row).
	LoadAgent(ctx context.Context, name string) (store.AgentRow, bool, error)
	LoadTier(ctx context.Context, queue, agent string) (store.TierRow, bool, error)
	LoadMember(ctx context.Context, uuid string) (store.MemberRow, bool, error)
}

// Claim outcomes a Cluster reports (wrapped): store's.
var (
	ErrClaimLost = store.ErrClaimLost
	ErrFenced    = store.ErrFenced
)

const (
	// claimTimeout bounds one claim round trip.
	claimTimeout = 2 * time.Second
	// lostHold is how long an agent whose claim was lost counts as busy
	// elsewhere when no notice about it arrives (a notice ends it sooner).
	lostHold = 5
)

// claim starts the claim of c.ag for m; claimDone continues in the loop.
// The claim runs in the persister's queue, after this node's writes
// queued before it: the database checks the agent's status, so a status
// this node just set (an agent logging in) must be there first, and a
// release queued earlier precedes the next claim.
func (a *ACD) claim(m *Member, q *Queue, c cand) {
	ag := c.ag
	ag.claiming = true
	ag.claims++
	m.claiming++
	cl, agent, queue, member := a.cl, ag.Name, q.Name, m.UUID
	seen := ag.claimNotices
	a.log.Debug("agent claim sent", "agent", agent, "queue", queue, "member", member)
	a.persist.addEffect(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		epoch, err := cl.ClaimAgent(ctx, agent, queue, member)
		cancel()
		unclaim := func() {
			if err != nil {
				return
			}
			rctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
			if rerr := cl.ReleaseClaim(rctx, agent, epoch); rerr != nil {
				a.log.Warn("claim not released at close", "agent", agent, "err", rerr)
			}
			cancel()
		}
		// Close drains the inbox's claim results before it flushes the
		// persister, so a result that finds the loop stopped here gives
		// its claim back itself.
		select {
		case <-a.quit:
			unclaim()
			return nil
		default:
		}
		select {
		case a.inbox <- message{f: func() { a.claimDone(m, q, c, epoch, err, seen) }, unclaim: unclaim}:
		case <-a.quit:
			unclaim()
		}
		return nil
	})
}

// claimDone takes a claim's outcome: granted, the offer starts if it still
// can; lost, the agent is busy on another node until a notice about it.
// seen is the agent's count of claim notices when the claim was sent.
func (a *ACD) claimDone(m *Member, q *Queue, c cand, epoch int64, err error, seen int64) {
	ag := c.ag
	ag.claiming = false
	m.claiming--
	a.dirty = true
	now := a.now()
	switch {
	case err == nil:
		ag.held, ag.claimEpoch = true, epoch
		ag.lastClaim = "won"
		if t, ok := a.stillOfferable(m, q, ag, now); ok {
			a.log.Debug("agent claim won", "agent", ag.Name, "queue", q.Name, "member", m.UUID, "epoch", epoch)
			a.offer(m, q, cand{ag, t}, now)
			return
		}
		ag.lastClaim = "won, not offerable any more"
		a.log.Debug("agent claim won, but the caller or the agent is not offerable any more: released", "agent", ag.Name,
			"queue", q.Name, "member", m.UUID, "epoch", epoch, "status", ag.Status, "state", ag.State)
		a.releaseClaim(ag)
	case errors.Is(err, store.ErrAgentUnavailable):
		// The shared row says the agent may not be offered: another node
		// changed its status a moment ago (its notice follows).
		ag.lastClaim = "refused"
		a.log.Debug("agent claim refused: the shared row is not offerable", "agent", ag.Name, "status", ag.Status, "member", m.UUID,
			"retry_at", now+1)
		ag.retryAt = now + 1
		a.wakeAt(ag.retryAt)
	case errors.Is(err, ErrClaimLost):
		ag.lastClaim = "lost"
		if ag.claimNotices != seen {
			// The claim moved while ours was on its way (its notice came
			// first): try again now rather than wait for another.
			a.log.Debug("agent claim lost; its claim moved meanwhile: tried again now", "agent", ag.Name, "member", m.UUID)
			return
		}
		ag.lostUntil = now + lostHold
		a.log.Debug("agent claim lost: busy on another node until a notice about it", "agent", ag.Name, "member", m.UUID,
			"lost_until", ag.lostUntil)
		a.wakeAt(ag.lostUntil)
	case errors.Is(err, ErrFenced):
		// The Fenced event stops dispatch; until it arrives, back off.
		ag.lastClaim = "fenced"
		a.log.Debug("agent claim fenced: this node's lease is gone", "agent", ag.Name, "member", m.UUID, "retry_at", now+1)
		ag.retryAt = now + 1
		a.wakeAt(ag.retryAt)
	default:
		ag.lastClaim = "error"
		a.log.Warn("agent claim failed", "agent", ag.Name, "member", m.UUID, "err", err, "retry_at", now+1)
		ag.retryAt = now + 1
		a.wakeAt(ag.retryAt)
	}
}

// stillOfferable re-checks, after the claim's round trip, what dispatch
// checked before it: the caller still waits, the agent is still eligible.
func (a *ACD) stillOfferable(m *Member, q *Queue, ag *Agent, now int64) (*Tier, bool) {
	if a.closing || a.fenced || a.agents[ag.Name] != ag || a.members[m.UUID] != m || m.app == nil || m.exiting ||
		m.pendingTimeout || (m.ch != nil && !m.ch.Ready()) || a.lookupQueue(m.Queue) != q {
		return nil, false
	}
	if m.State != config.MemberWaiting && (m.State != config.MemberTrying || !ringStrategy(config.Strategy(m.ServingAgent))) {
		return nil, false
	}
	if _, busy := m.offers[ag.Name]; busy {
		return nil, false
	}
	t := a.findTier(q.Name, ag.Name)
	if t == nil || !offerable(ag.Status) || !a.eligible(cand{ag, t}, q, now) {
		return nil, false
	}
	return t, true
}

// releaseClaim gives the agent's claim back once the writes queued before
// it (the agent's new state and ready_time) are done: the persister runs
// them in order, so another node that wins the agent next reads them.
func (a *ACD) releaseClaim(ag *Agent) {
	if a.cl == nil || !ag.held {
		return
	}
	ag.held = false
	cl, name, epoch, log := a.cl, ag.Name, ag.claimEpoch, a.log
	log.Debug("agent claim release queued", "agent", name, "epoch", epoch, "state", ag.State)
	a.persist.addEffect(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, claimTimeout)
		defer cancel()
		err := cl.ReleaseClaim(ctx, name, epoch)
		if err == nil {
			log.Debug("agent claim released", "agent", name, "epoch", epoch)
		}
		return err
	})
}

// Adopted takes what this node adopted from a dead one: its callers, now
// Abandoned here with their joined_epoch kept, resume their place when they
// call back; its agents, released, are reloaded (Waiting again, tiers
// Ready).
func (a *ACD) Adopted(members []store.MemberRow, agents []string) {
	if a.cl == nil {
		return
	}
	a.post(func() {
		for _, r := range members {
			if m := a.members[r.UUID]; m != nil && m.app != nil {
				continue
			}
			m := memberFromRow(r)
			a.memberSeq++
			m.seq = a.memberSeq
			a.members[r.UUID] = m
			if q := a.lookupQueue(m.Queue); q != nil {
				a.wakeAt(m.AbandonedEpoch + q.DiscardAbandonedAfter + 1)
			}
		}
	})
	if len(agents) == 0 {
		return
	}
	// The adoption reset their rows and the tiers of their offers in one
	// transaction; its notices are this node's own, so read them back.
	// Their tiers in other queues may still be Standby (an offer puts
	// them there and its end, on the dead node, never came): Ready again.
	a.resyncThen(func() {
		adopted := map[string]bool{}
		for _, name := range agents {
			adopted[name] = true
		}
		for _, t := range a.tiers {
			if adopted[t.Agent] && t.State == config.TierStandby {
				if ag := a.agents[t.Agent]; ag != nil && (ag.held || ag.claiming) {
					continue
				}
				t.State = config.TierReady
				a.saveTier(t)
			}
		}
	})
}

// Fenced stops offers: a survivor declared this node dead (or a newer
// incarnation superseded it), so its claims were released and its
// members adopted. Its queue calls end: ringing offers are cancelled,
// bridged agents are hung up without touching their shared rows (the
// adopter set them Waiting; another node may be offering them already),
// and waiting callers are hung up (they resume their place when they call
// back, on any node).
func (a *ACD) Fenced() {
	if a.cl == nil {
		return
	}
	a.post(func() {
		if a.fenced {
			return
		}
		a.fenced = true
		a.log.Warn("cluster: fenced (declared dead or superseded): queue calls end, no offers until the node rejoins",
			"dropped_writes", a.persist.dropWrites())
		for _, m := range a.members {
			for _, o := range m.offers {
				o.orphan = true
				o.ag.held = false
				switch o.state {
				case offerRinging:
					o.cancel(call.OriginatorCancel)
				case offerHandedOff, offerBridged:
					if o.leg != nil {
						o.leg.Hangup(call.NormalTemporaryFailure)
					}
				}
			}
			if m.app != nil && m.ch != nil {
				m.ch.Hangup(call.NormalTemporaryFailure)
			}
		}
	})
}

// Rejoined resumes offers under a new incarnation. What the old one held
// may have been adopted meanwhile: a caller whose member row moved to
// another node is hung up (that node resumes it when it calls back), and
// a bridged agent is claimed again, or its call is hung up if another node
// has it now, so no agent is served twice.
func (a *ACD) Rejoined() {
	if a.cl == nil {
		return
	}
	type live struct {
		uuid string
		ch   *call.Channel
	}
	type bridged struct {
		o                    *offer
		agent, queue, member string
	}
	var ms []live
	var bs []bridged
	if !a.do(func() {
		for _, m := range a.members {
			if m.app != nil && m.ch != nil {
				ms = append(ms, live{m.UUID, m.ch})
			}
			for _, o := range m.offers {
				if o.state == offerBridged || o.state == offerHandedOff {
					bs = append(bs, bridged{o, o.ag.Name, o.q.Name, m.UUID})
				}
			}
		}
	}) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*claimTimeout)
	defer cancel()
	for _, l := range ms {
		r, ok, err := a.cl.LoadMember(ctx, l.uuid)
		if err == nil && (!ok || r.InstanceID != a.instanceID) {
			a.log.Warn("cluster: caller adopted by another node while fenced; hanging up", "member", l.uuid)
			l.ch.Hangup(call.NormalTemporaryFailure)
		}
	}
	type reclaimed struct {
		b     bridged
		epoch int64
		err   error
	}
	var rs []reclaimed
	for _, b := range bs {
		epoch, err := a.cl.ClaimAgent(ctx, b.agent, b.queue, b.member)
		rs = append(rs, reclaimed{b, epoch, err})
	}
	a.do(func() {
		for _, r := range rs {
			o, ag := r.b.o, r.b.o.ag
			if r.err == nil {
				a.log.Debug("cluster: bridged agent claimed again after the rejoin", "agent", ag.Name, "epoch", r.epoch)
				ag.held, ag.claimEpoch = true, r.epoch
				ag.lastClaim = "won again at rejoin"
				continue
			}
			a.log.Debug("cluster: bridged agent not claimed again after the rejoin", "agent", ag.Name, "err", r.err)
			if errors.Is(r.err, ErrClaimLost) && o.state != offerDone {
				// Another node serves this agent now: its call here ends
				// without touching the shared row.
				a.log.Warn("cluster: bridged agent claimed elsewhere while fenced; hanging up", "agent", ag.Name)
				ag.held = false
				o.orphan = true
				if o.leg != nil {
					o.leg.Hangup(call.NormalTemporaryFailure)
				}
			}
		}
		a.fenced = false
		a.dirty = true
	})
	// Notices may have been missed while fenced.
	a.resync()
}

// clusterLoad is load's cluster variant: shared agents and tiers are
// taken as they are (another node may be serving them; a restart of this
// one resets nothing, unlike FreeSWITCH #3091), this node's own members
// become Abandoned (restart recovery) and other nodes' Abandoned members
// are kept for resume; their live members are theirs.
func (a *ACD) clusterLoad(rows *store.CallcenterRows) error {
	a.rowsChanged()
	for _, r := range rows.Agents {
		ag := agentFromRow(r)
		a.agentSeq++
		ag.seq = a.agentSeq
		a.agents[ag.Name] = ag
	}
	for _, r := range rows.Tiers {
		t := tierFromRow(r)
		a.tierSeq++
		t.seq = a.tierSeq
		a.tiers = append(a.tiers, t)
	}
	for _, r := range rows.Members {
		m := memberFromRow(r)
		switch {
		case m.InstanceID == a.instanceID:
			if m.State != config.MemberAbandoned {
				m.State = config.MemberAbandoned
				m.SessionUUID = ""
				a.saveMember(m)
			}
		case m.State != config.MemberAbandoned:
			continue
		}
		a.memberSeq++
		m.seq = a.memberSeq
		a.members[m.UUID] = m
	}
	return nil
}

// seedOnly reports whether the configured agents and tiers only seed the
// shared tables (a cluster node) instead of being re-applied at start.
func (a *ACD) seedOnly() bool { return a.cl != nil }

// nodeOf is the system that serves through this ACD, for listings and
// events: the node id in a cluster, FreeSWITCH's single_box otherwise.
func nodeOf(cl Cluster) string {
	if cl == nil {
		return singleBox
	}
	if n := strings.TrimSpace(cl.Node()); n != "" {
		return n
	}
	return singleBox
}
