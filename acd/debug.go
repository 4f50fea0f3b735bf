package acd

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DebugView is `cluster acd [agent]`: the loop's own view of each agent
// (all, or the one named), what decides whether the dispatcher offers it,
// and, on a cluster node, the claim and mirror bookkeeping that is never
// listed elsewhere: a claim in flight (claiming), the claim held, the
// lost-claim hold (lost_until), the retry hold (retry_at), and how often
// this node wrote the row and mirrored other nodes' writes of it. On a
// single box the claim and mirror columns stay 0. Tiers follow, with
// whether each is eligible now and, when held back by time only, from
// when. It never changes anything.
func (a *ACD) DebugView(args string) string {
	f := strings.Fields(args)
	if len(f) > 1 {
		return "-USAGE: cluster acd [agent]\n"
	}
	only := ""
	if len(f) == 1 {
		only = f[0]
	}
	var out string
	if !a.do(func() { out = a.debugView(only) }) {
		return "-ERR callcenter is not running\n"
	}
	return out
}

func (a *ACD) debugView(only string) string {
	now := a.now()
	var b strings.Builder
	if a.cl == nil {
		fmt.Fprintf(&b, "%s: not a cluster node (no claims, no mirror)\n", a.system)
	} else {
		state := "offering"
		if a.fenced {
			state = "FENCED (no offers until it rejoins)"
		}
		fmt.Fprintf(&b, "node %s: %s; mirror reads in flight %d (rows %d, resync %t), discarded as older than this node's copy %d\n",
			a.system, state, a.mir.inFlight, len(a.mir.reading), a.mir.resyncing, a.mir.discarded)
	}
	fmt.Fprintf(&b, "now %d (%s); persister queue %d\n", now, time.Unix(now, 0).UTC().Format(time.RFC3339), a.persist.pending())
	names := make([]string, 0, len(a.agents))
	for name := range a.agents {
		if only == "" || name == only {
			names = append(names, name)
		}
	}
	if only != "" && len(names) == 0 {
		return "-ERR Agent not found!\n"
	}
	slices.Sort(names)
	b.WriteString("agent|status|state|claiming|held|claim_epoch|claims|last_claim|lost_until|retry_at|last_offered_call|offer_seq|ready_time|last_bridge_end|writes|mirrored|reading\n")
	for _, name := range names {
		ag := a.agents[name]
		_, reading := a.mir.reading[rowKey{kind: rowAgent, a: name}]
		last := ag.lastClaim
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(&b, "%s|%s|%s|%t|%t|%d|%d|%s|%d|%d|%d|%d|%d|%d|%d|%d|%t\n", ag.Name, ag.Status, ag.State,
			ag.claiming, ag.held, ag.claimEpoch, ag.claims, last, ag.lostUntil, ag.retryAt, ag.LastOffered,
			ag.offerSeq, ag.ReadyTime, ag.LastBridgeEnd, ag.writes, ag.mirrored, reading)
	}
	b.WriteString("queue|agent|tier_state|level|position|eligible|from|reading\n")
	for _, t := range a.tiers {
		if only != "" && t.Agent != only {
			continue
		}
		eligible, from := "no agent", int64(0)
		if ag := a.agents[t.Agent]; ag != nil {
			if q := a.queues[t.Queue]; q == nil {
				eligible = "no queue"
			} else {
				ok, at := a.eligibleAt(cand{ag, t}, q, now)
				eligible, from = fmt.Sprint(ok), at
			}
		}
		_, reading := a.mir.reading[rowKey{kind: rowTier, a: t.Queue, b: t.Agent}]
		fmt.Fprintf(&b, "%s|%s|%s|%d|%d|%s|%d|%t\n", t.Queue, t.Agent, t.State, t.Level, t.Position, eligible, from, reading)
	}
	b.WriteString("+OK\n")
	return b.String()
}
