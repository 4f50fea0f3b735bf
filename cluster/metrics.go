package cluster

import (
	"math"
	"sync/atomic"
	"time"
)

// Metrics are the node's counters since Start, for api/metrics to export
// (Prometheus counters, and a summary of renewal latency).
type Metrics struct {
	// Claims taken, lost to another node or an unavailable agent, and
	// writes refused because this node was fenced (claims, renewals,
	// declarations, adoptions).
	Claims, ClaimsLost, FencedWrites uint64
	// Adoptions of dead nodes by this node, the members they moved, and
	// the time the adoptions took (a summary's _sum, Adoptions its
	// _count).
	Adoptions, AdoptedMembers uint64
	AdoptionSeconds           float64
	// NodesDeclaredDead by this node.
	NodesDeclaredDead uint64
	// Renewals that succeeded and failed; RenewSeconds is the sum of the
	// successful renewals' round trips (a summary's _sum, with Renewals
	// as _count), LastRenew the latest one.
	Renewals, RenewFailures uint64
	RenewSeconds            float64
	LastRenew               time.Duration
	// Rejoins after being fenced, and notices dropped because the owner
	// did not read Events in time (a resync replaced them).
	Rejoins, EventsDropped uint64
}

// counters are Metrics as atomics: written by the node's goroutines and
// ClaimAgent callers, read by Metrics at any time.
type counters struct {
	claims, claimsLost, fencedWrites            atomic.Uint64
	adoptions, adoptedMembers, adoptionNanos    atomic.Uint64
	nodesDeclaredDead                           atomic.Uint64
	renewals, renewFailures, renewNanos, lastNs atomic.Uint64
	rejoins, eventsDropped                      atomic.Uint64
}

func (c *counters) renewed(took time.Duration) {
	c.renewals.Add(1)
	c.renewNanos.Add(uint64(took))
	c.lastNs.Store(uint64(took))
}

func (c *counters) adopted(members int, took time.Duration) {
	c.adoptions.Add(1)
	c.adoptedMembers.Add(uint64(members))
	c.adoptionNanos.Add(uint64(took))
}

// Metrics reads the counters.
func (n *Node) Metrics() Metrics {
	c := &n.m
	return Metrics{
		Claims: c.claims.Load(), ClaimsLost: c.claimsLost.Load(), FencedWrites: c.fencedWrites.Load(),
		Adoptions: c.adoptions.Load(), AdoptedMembers: c.adoptedMembers.Load(),
		AdoptionSeconds:   seconds(c.adoptionNanos.Load()),
		NodesDeclaredDead: c.nodesDeclaredDead.Load(),
		Renewals:          c.renewals.Load(), RenewFailures: c.renewFailures.Load(),
		RenewSeconds: seconds(c.renewNanos.Load()), LastRenew: time.Duration(min(c.lastNs.Load(), math.MaxInt64)),
		Rejoins: c.rejoins.Load(), EventsDropped: c.eventsDropped.Load(),
	}
}

func seconds(ns uint64) float64 { return float64(ns) / 1e9 }
