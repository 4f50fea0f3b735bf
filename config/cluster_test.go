package config

import (
	"strings"
	"testing"
	"time"
)

func TestClusterSettings(t *testing.T) {
	pg := "[store]\ndriver = \"postgres\"\ndsn = \"host=db1 dbname=ccpbx\"\n"
	for _, tt := range []struct {
		name, file string
		want       Cluster
		err        string
	}{
		{"default single box", "", Cluster{NodeID: "single_box", LeaseTTL: Duration{3 * time.Second}, RenewInterval: Duration{time.Second}}, ""},
		{"node on postgres", pg + "[cluster]\nnode_id = \"node-a\"\nlease_ttl = \"2s\"\n",
			Cluster{NodeID: "node-a", LeaseTTL: Duration{2 * time.Second}, RenewInterval: Duration{2 * time.Second / 3}}, ""},
		{"renew interval", pg + "[cluster]\nnode_id = \"b\"\nrenew_interval = \"500ms\"\n",
			Cluster{NodeID: "b", LeaseTTL: Duration{3 * time.Second}, RenewInterval: Duration{500 * time.Millisecond}}, ""},
		{"node on sqlite", "[cluster]\nnode_id = \"node-a\"\n", Cluster{},
			`t.toml:10: key "cluster.node_id": a cluster node (node_id "node-a") needs [store] driver = "postgres"`},
		{"node on explicit sqlite", "[store]\ndriver = \"sqlite\"\n[cluster]\nnode_id = \"node-a\"\n", Cluster{},
			`t.toml:10: key "store.driver": a cluster node (node_id "node-a") needs [store] driver = "postgres"`},
		{"blank node id", pg + "[cluster]\nnode_id = \"node a\"\n", Cluster{}, `t.toml:13: key "cluster.node_id": node_id "node a" must not contain blanks`},
		{"separator in node id", pg + "[cluster]\nnode_id = \"a|b\"\n", Cluster{}, `t.toml:13: key "cluster.node_id": node_id "a|b" must not contain any of`},
		{"ttl too short", pg + "[cluster]\nnode_id = \"a\"\nlease_ttl = \"10ms\"\n", Cluster{}, `t.toml:14: key "cluster.lease_ttl": 10ms is outside 500ms-1m`},
		{"renew too slow", pg + "[cluster]\nnode_id = \"a\"\nlease_ttl = \"2s\"\nrenew_interval = \"1500ms\"\n", Cluster{},
			`t.toml:15: key "cluster.renew_interval": 1.5s must be above 0s and at most half of lease_ttl (2s)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(base+tt.file))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Cluster != tt.want {
				t.Errorf("cluster = %+v, want %+v", c.Cluster, tt.want)
			}
			if got := c.Cluster.Enabled(); got != (tt.want.NodeID != "single_box") {
				t.Errorf("Enabled = %v", got)
			}
		})
	}
}
