package cluster

import (
	"context"
	"errors"
	"time"

	"ccpbx/store"
)

// liveness is the renewal loop's own state (only its goroutine touches
// it). The grace rule (R4) reads it: a peer is dead when
//   - this node's own renewals have succeeded without a break for at
//     least a TTL (since windowStart): the database was there for
//     everyone all along, so a live peer renewed meanwhile;
//   - the peer's renew_seq has not moved since this window's first
//     renewal that saw it (seqs);
//   - and the database says its row is at least a TTL old (Age, on the
//     database's clock), which dates its last renewal: the death is seen
//     at the first renewal after TTL, not a renewal period later.
type liveness struct {
	// seqs are the peers' renew_seq as first seen in this window.
	seqs map[string]int64
	// windowStart is the send time of the first renewal of the current
	// unbroken run; prevOK says the previous attempt succeeded, at
	// prevSent. A failure, or a gap longer than half a TTL (this process
	// stalled), ends the run.
	windowStart time.Time
	prevOK      bool
	prevSent    time.Time
	// hashes are the peers' config hashes already reported as different
	// from this node's.
	hashes map[string]string
}

// restart begins a new window of unbroken renewals at sent.
func (lv *liveness) restart(sent time.Time) {
	clear(lv.seqs)
	lv.windowStart = sent
}

// renewLoop renews the lease every Renew until ctx ends.
func (n *Node) renewLoop(ctx context.Context) {
	joined := n.lastOKTime()
	lv := &liveness{seqs: map[string]int64{}, windowStart: joined, prevOK: true, prevSent: joined, hashes: map[string]string{}}
	t := time.NewTicker(n.cfg.Renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
		n.renew(ctx, lv)
	}
}

func (n *Node) lastOKTime() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastOK
}

// renew is one renewal and what follows from it.
func (n *Node) renew(ctx context.Context, lv *liveness) {
	n.mu.Lock()
	f, fenced, superseded := n.fence, n.fenced, n.superseded
	n.mu.Unlock()
	if superseded {
		return
	}
	if fenced {
		n.rejoin(ctx, lv)
		return
	}
	// A renewal that takes longer than the self-fencing bound is worth
	// nothing: give up on it then.
	rctx, cancel := context.WithTimeout(ctx, n.selfFenceAfter())
	sent := n.now()
	states, err := n.st.Heartbeat(rctx, f)
	took := n.now().Sub(sent)
	cancel()
	switch {
	case errors.Is(err, store.ErrFenced):
		n.m.renewFailures.Add(1)
		n.m.fencedWrites.Add(1)
		// Superseded by a live newer incarnation: another process runs
		// with this node id (or this one was restarted while it
		// stalled). The newest wins: rejoining would fence it in turn,
		// and the two would take turns forever.
		other := false
		for _, s := range states {
			if s.Node == f.Node && !s.Dead && s.Incarnation > f.Incarnation {
				other = true
			}
		}
		n.mu.Lock()
		n.fenced, n.superseded = true, other
		n.status = states
		n.mu.Unlock()
		n.q.push(Event{Kind: Fenced, Node: n.cfg.Node}, &n.m.eventsDropped)
		lv.prevOK = false
		if other {
			n.log.Error("cluster: another process joined with this node id; this one stays fenced (unhealthy) until it is stopped",
				"incarnation", f.Incarnation)
			return
		}
		n.log.Warn("cluster: fenced: this node was declared dead", "incarnation", f.Incarnation)
		n.rejoin(ctx, lv)
		return
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		n.m.renewFailures.Add(1)
		if lv.prevOK {
			n.log.Warn("cluster: lease renewal failed", "err", err)
		}
		lv.prevOK = false
		return
	}
	n.m.renewed(took)
	n.mu.Lock()
	if !lv.prevOK {
		n.log.Info("cluster: lease renewed again", "unrenewed_for", sent.Sub(n.lastOK).Round(time.Millisecond))
	}
	n.lastOK = sent
	n.status = states
	n.mu.Unlock()
	if !lv.prevOK || sent.Sub(lv.prevSent) > n.cfg.TTL/2 {
		lv.restart(sent)
	}
	lv.prevOK, lv.prevSent = true, sent
	n.judge(ctx, f, states, sent, lv)
	n.retryAbandons()
	n.retryReleases()
}

// judge applies the grace rule to every peer and adopts the dead ones.
func (n *Node) judge(ctx context.Context, f store.NodeFence, states []store.NodeState, sent time.Time, lv *liveness) {
	seen := make(map[string]bool, len(states))
	for _, s := range states {
		if s.Node == n.cfg.Node {
			continue
		}
		seen[s.Node] = true
		if s.ConfigHash != n.cfg.ConfigHash && lv.hashes[s.Node] != s.ConfigHash {
			lv.hashes[s.Node] = s.ConfigHash
			n.log.Warn("cluster: a peer runs another configuration", "peer", s.Node, "peer_hash", s.ConfigHash, "hash", n.cfg.ConfigHash)
		}
		if s.Dead {
			delete(lv.seqs, s.Node)
			if !s.Adopted {
				// Declared dead by someone who did not adopt it (yet, or
				// ever): whoever comes first does.
				n.adopt(ctx, f, s.Node, false)
			}
			continue
		}
		seq, ok := lv.seqs[s.Node]
		if !ok || seq != s.RenewSeq {
			lv.seqs[s.Node] = s.RenewSeq
			continue
		}
		if sent.Sub(lv.windowStart) < n.cfg.TTL || s.Age < n.cfg.TTL {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, n.selfFenceAfter())
		won, err := n.st.MarkDead(dctx, f, s.Node, s.RenewSeq)
		cancel()
		if err != nil {
			if errors.Is(err, store.ErrFenced) {
				n.m.fencedWrites.Add(1)
			}
			n.log.Warn("cluster: declaring a peer dead failed", "peer", s.Node, "err", err)
			continue
		}
		delete(lv.seqs, s.Node)
		if !won {
			continue // renewed at the last moment, or another survivor was first
		}
		n.m.nodesDeclaredDead.Add(1)
		n.log.Warn("cluster: peer declared dead", "peer", s.Node, "renew_seq", s.RenewSeq, "age", s.Age)
		n.q.push(Event{Kind: NodeDead, Node: s.Node}, &n.m.eventsDropped)
		n.adopt(ctx, f, s.Node, true)
	}
	for id := range lv.seqs {
		if !seen[id] {
			delete(lv.seqs, id)
		}
	}
	for id := range lv.hashes {
		if !seen[id] {
			delete(lv.hashes, id)
		}
	}
}

// adopt takes over a dead peer; declared says this node declared it, so
// the event goes out even when there was nothing to take.
func (n *Node) adopt(ctx context.Context, f store.NodeFence, dead string, declared bool) {
	// Bounded like a renewal: the next renewal must not wait on a
	// database that stopped answering.
	actx, cancel := context.WithTimeout(ctx, n.selfFenceAfter())
	defer cancel()
	start := time.Now()
	res, err := n.st.AdoptNode(actx, f, dead, time.Now().Unix())
	if err != nil {
		if errors.Is(err, store.ErrFenced) {
			n.m.fencedWrites.Add(1)
		}
		n.log.Warn("cluster: adoption failed (retried at the next renewal)", "peer", dead, "err", err)
		return
	}
	if !declared && len(res.Members) == 0 && len(res.Agents) == 0 {
		return
	}
	n.m.adopted(len(res.Members), time.Since(start))
	n.log.Warn("cluster: adopted a dead peer", "peer", dead, "members", len(res.Members), "agents", len(res.Agents))
	n.q.push(Event{Kind: Adopted, Node: dead, Adopt: res}, &n.m.eventsDropped)
}

// rejoin joins again with a new incarnation after being fenced (retried
// at every renewal until it succeeds).
func (n *Node) rejoin(ctx context.Context, lv *liveness) {
	rctx, cancel := context.WithTimeout(ctx, n.selfFenceAfter())
	defer cancel()
	sent := n.now()
	f, err := n.st.JoinCluster(rctx, n.cfg.Node, n.cfg.ConfigHash)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("cluster: rejoin failed", "err", err)
		}
		return
	}
	n.m.rejoins.Add(1)
	// JoinCluster released every claim of older incarnations.
	n.claimMu.Lock()
	clear(n.abandons)
	clear(n.releases)
	n.claimMu.Unlock()
	n.mu.Lock()
	n.fence, n.fenced, n.lastOK = f, false, sent
	n.mu.Unlock()
	lv.restart(sent)
	lv.prevOK, lv.prevSent = true, sent
	n.log.Info("cluster: rejoined", "incarnation", f.Incarnation)
	n.q.push(Event{Kind: Rejoined, Node: n.cfg.Node}, &n.m.eventsDropped)
}
