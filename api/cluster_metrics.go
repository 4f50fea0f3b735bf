package api

import "github.com/prometheus/client_golang/prometheus"

// ClusterStats are a cluster node's counters since start (package
// cluster's, copied by cmd/ccpbx): claims, lost claims, writes refused
// because the node was fenced, adoptions, lease renewals.
type ClusterStats struct {
	Healthy                          bool
	Claims, ClaimsLost, FencedWrites uint64
	Adoptions, AdoptedMembers        uint64
	AdoptionSeconds                  float64
	NodesDeclaredDead                uint64
	Renewals, RenewFailures          uint64
	RenewSeconds, LastRenewSeconds   float64
	Rejoins, EventsDropped           uint64
}

// SetClusterSource exports the ccpbx_cluster_* metrics from fn at each
// scrape. A single box never calls it, so it exports none of them.
func (m *Metrics) SetClusterSource(fn func() ClusterStats) {
	m.reg.MustRegister(clusterCollector(fn))
}

type clusterCollector func() ClusterStats

var (
	descClusterHealthy = prometheus.NewDesc("ccpbx_cluster_healthy",
		"1 while this node renews its lease and takes new calls, 0 while it answers them 503.", nil, nil)
	descClaims = prometheus.NewDesc("ccpbx_cluster_claims_total",
		"Agent claims this node won (one per offer).", nil, nil)
	descClaimsLost = prometheus.NewDesc("ccpbx_cluster_claims_lost_total",
		"Agent claims lost to another node or refused because the agent was not available.", nil, nil)
	descFenced = prometheus.NewDesc("ccpbx_cluster_fenced_writes_total",
		"Writes refused because this node was declared dead or superseded.", nil, nil)
	descAdoptions = prometheus.NewDesc("ccpbx_cluster_adoptions_total",
		"Dead nodes this node adopted.", nil, nil)
	descAdoptedMembers = prometheus.NewDesc("ccpbx_cluster_adopted_members_total",
		"Callers of dead nodes this node adopted (resumed when they call back).", nil, nil)
	descAdoption = prometheus.NewDesc("ccpbx_cluster_adoption_seconds",
		"Time adoptions took.", nil, nil)
	descDeclaredDead = prometheus.NewDesc("ccpbx_cluster_nodes_declared_dead_total",
		"Nodes this node declared dead.", nil, nil)
	descRenew = prometheus.NewDesc("ccpbx_cluster_lease_renew_seconds",
		"Round trips of this node's successful lease renewals.", nil, nil)
	descRenewFailures = prometheus.NewDesc("ccpbx_cluster_lease_renew_failures_total",
		"Lease renewals that failed.", nil, nil)
	descLastRenew = prometheus.NewDesc("ccpbx_cluster_lease_last_renew_seconds",
		"Round trip of the latest successful lease renewal.", nil, nil)
	descRejoins = prometheus.NewDesc("ccpbx_cluster_rejoins_total",
		"Times this node joined again after being fenced.", nil, nil)
	descNoticesDropped = prometheus.NewDesc("ccpbx_cluster_notices_dropped_total",
		"Notices dropped for a slow reader (replaced by a resync).", nil, nil)
)

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClusterHealthy, descClaims, descClaimsLost, descFenced, descAdoptions,
		descAdoptedMembers, descAdoption, descDeclaredDead, descRenew, descRenewFailures, descLastRenew,
		descRejoins, descNoticesDropped} {
		ch <- d
	}
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	ch <- gauge(descClusterHealthy, b2f(s.Healthy))
	ch <- counter(descClaims, s.Claims)
	ch <- counter(descClaimsLost, s.ClaimsLost)
	ch <- counter(descFenced, s.FencedWrites)
	ch <- counter(descAdoptions, s.Adoptions)
	ch <- counter(descAdoptedMembers, s.AdoptedMembers)
	ch <- prometheus.MustNewConstSummary(descAdoption, s.Adoptions, s.AdoptionSeconds, nil)
	ch <- counter(descDeclaredDead, s.NodesDeclaredDead)
	ch <- prometheus.MustNewConstSummary(descRenew, s.Renewals, s.RenewSeconds, nil)
	ch <- counter(descRenewFailures, s.RenewFailures)
	ch <- gauge(descLastRenew, s.LastRenewSeconds)
	ch <- counter(descRejoins, s.Rejoins)
	ch <- counter(descNoticesDropped, s.EventsDropped)
}
