package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"ccpbx/acd"
	"ccpbx/api"
	"ccpbx/call"
	"ccpbx/cluster"
	"ccpbx/config"
	"ccpbx/store"
)

// Cluster mode wiring ([cluster] node_id): the node's membership
// (package cluster) on the shared PostgreSQL, the claims the ACD offers
// agents through, the events that feed the ACD's mirror, and
// `cluster status`.

// startCluster joins the cluster when configured (nil, nil otherwise).
func startCluster(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*cluster.Node, error) {
	if !cfg.Cluster.Enabled() {
		return nil, nil
	}
	// Every agent, tier and member write announces itself to the other
	// nodes (the ACD's mirror).
	if err := st.EnableNotices(cfg.Cluster.NodeID); err != nil {
		return nil, fmt.Errorf("cluster node %s: %w", cfg.Cluster.NodeID, err)
	}
	n, err := cluster.Start(ctx, st, cluster.Config{
		Node:       cfg.Cluster.NodeID,
		TTL:        cfg.Cluster.LeaseTTL.Duration,
		Renew:      cfg.Cluster.RenewInterval.Duration,
		ConfigHash: configHash(cfg),
		Log:        log.With("component", "cluster"),
	})
	if err != nil {
		return nil, fmt.Errorf("cluster node %s: %w", cfg.Cluster.NodeID, err)
	}
	return n, nil
}

// configHash fingerprints what every node must agree on (the call-center
// section: queues, agents, tiers, settings), so `cluster status` shows a
// node whose queues drifted. Addresses and node ids differ per node by
// design and are left out. JSON, not %#v: the section holds pointers,
// whose addresses differ in every process.
func configHash(cfg *config.Config) string {
	b, err := json.Marshal(cfg.Callcenter)
	if err != nil {
		b = fmt.Appendf(nil, "%v", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// routeClusterEvents hands the node's events to the ACD until the node
// closes its event channel; done is closed then.
func routeClusterEvents(n *cluster.Node, a *acd.ACD, reaper *bridgeReaper, log *slog.Logger, done chan<- struct{}) {
	defer close(done)
	for ev := range n.Events() {
		switch ev.Kind {
		case cluster.Notice:
			a.Notice(ev.Notice.Kind, ev.Notice.Key, ev.Notice.From)
		case cluster.Adopted:
			log.Info("cluster: adopted a dead node", "dead", ev.Node, "members", len(ev.Adopt.Members), "agents", len(ev.Adopt.Agents), "dialogs", len(ev.Adopt.Dialogs))
			reaper.reap(ev.Node, ev.Adopt.Dialogs)
			a.Adopted(ev.Adopt.Members, ev.Adopt.Agents)
		case cluster.Fenced:
			a.Fenced()
		case cluster.Rejoined:
			a.Rejoined()
		case cluster.NodeDead:
			log.Warn("cluster: node declared dead", "dead", ev.Node)
		}
	}
}

// clusterMetrics reads the node's counters for /metrics.
func clusterMetrics(n *cluster.Node) func() api.ClusterStats {
	return func() api.ClusterStats {
		m := n.Metrics()
		return api.ClusterStats{Healthy: n.Healthy(), Claims: m.Claims, ClaimsLost: m.ClaimsLost,
			FencedWrites: m.FencedWrites, Adoptions: m.Adoptions, AdoptedMembers: m.AdoptedMembers,
			AdoptionSeconds: m.AdoptionSeconds, NodesDeclaredDead: m.NodesDeclaredDead, Renewals: m.Renewals,
			RenewFailures: m.RenewFailures, RenewSeconds: m.RenewSeconds, LastRenewSeconds: m.LastRenew.Seconds(),
			Rejoins: m.Rejoins, EventsDropped: m.EventsDropped}
	}
}

// clusterStatus is the `cluster` API command: `cluster status`, every
// node's lease and the claims held now (a cluster node only), and
// `cluster acd [agent]`, the ACD loop's own view of its agents (acd's
// DebugView; on a single box too).
type clusterStatus struct {
	node *cluster.Node // nil on a single box
	st   store.Cluster
	hash string
	acd  *acd.ACD
}

const clusterUsage = "-USAGE: cluster status | cluster acd [agent]\n"

func (c clusterStatus) register(core *call.Core) {
	core.RegisterAPI("cluster", "cluster status | cluster acd [agent]", c.api)
}

func (c clusterStatus) api(ctx context.Context, args string, _ *call.Channel) string {
	words := strings.Fields(args)
	if len(words) == 0 {
		return clusterUsage
	}
	rest := strings.Join(words[1:], " ")
	switch strings.ToLower(words[0]) {
	case "status":
		if rest != "" {
			return clusterUsage
		}
	case "acd":
		if c.acd == nil {
			return "-ERR callcenter is not running\n"
		}
		return c.acd.DebugView(rest)
	default:
		return clusterUsage
	}
	if c.node == nil {
		return "-ERR not a cluster node (no [cluster] node_id)\n"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	claims, err := c.st.Claims(ctx)
	if err != nil {
		return "-ERR " + err.Error() + "\n"
	}
	return formatClusterStatus(c.node.Fence(), c.node.Healthy(), c.hash, c.node.Status(), claims)
}

// formatClusterStatus lays out `cluster status`: this node, then nodes
// and claims as `|`-separated listings like callcenter_config's. A node
// whose config hash differs from this node's is marked with a `*`.
func formatClusterStatus(self store.NodeFence, healthy bool, hash string, nodes []store.NodeState, claims []store.ClaimRow) string {
	var b strings.Builder
	state := "healthy"
	if !healthy {
		state = "NOT HEALTHY (new calls answered 503)"
	}
	fmt.Fprintf(&b, "node %s incarnation %d: %s\n", self.Node, self.Incarnation, state)
	b.WriteString("node|incarnation|renew_seq|renew_age|dead|adopted|config_hash\n")
	drift := false
	for _, n := range nodes {
		h := n.ConfigHash
		if h != hash {
			h += "*"
			drift = true
		}
		fmt.Fprintf(&b, "%s|%d|%d|%s|%t|%t|%s\n", n.Node, n.Incarnation, n.RenewSeq,
			n.Age.Round(time.Millisecond), n.Dead, n.Adopted, h)
	}
	if drift {
		b.WriteString("* config hash differs from this node's: the [callcenter] sections are not the same\n")
	}
	b.WriteString("agent|queue|member_uuid|node|incarnation|epoch|claimed_at\n")
	for _, c := range claims {
		fmt.Fprintf(&b, "%s|%s|%s|%s|%d|%d|%s\n", c.Agent, c.Queue, c.MemberUUID, c.Node, c.Incarnation,
			c.Epoch, c.ClaimedAt.UTC().Format(time.RFC3339))
	}
	b.WriteString("+OK\n")
	return b.String()
}

// clusterCmd is `ccpbx cluster status` and `ccpbx cluster acd [agent]`:
// the API command over the event socket, with cli's flags.
func clusterCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	host := fs.String("H", "", "event socket address (overrides the config)")
	pass := fs.String("p", "", "event socket password (overrides the config)")
	// Words and flags in any order: `cluster acd 1001 -config x`.
	var words []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
	ok := len(words) == 1 && words[0] == "status" || len(words) >= 1 && len(words) <= 2 && words[0] == "acd"
	if !ok {
		fmt.Fprintln(stderr, "usage: ccpbx cluster status|acd [agent] [-config PATH] [-H ADDR] [-p PASSWORD]")
		return 2
	}
	line := "cluster " + strings.Join(words, " ")
	cli := []string{"-x", line}
	if *path != "" {
		cli = append(cli, "-config", *path)
	}
	if *host != "" {
		cli = append(cli, "-H", *host)
	}
	if *pass != "" {
		cli = append(cli, "-p", *pass)
	}
	return runCLI(cli, stdin, stdout, stderr)
}
