package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"ccpbx/store"
)

// TestClusterStatusLayout: nodes and claims as |-separated listings, the
// node whose call-center configuration drifted marked.
func TestClusterStatusLayout(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	got := formatClusterStatus(store.NodeFence{Node: "node-a", Incarnation: 3}, true, "abc",
		[]store.NodeState{
			{Node: "node-a", Incarnation: 3, RenewSeq: 40, Age: 120 * time.Millisecond, ConfigHash: "abc"},
			{Node: "node-b", Incarnation: 1, RenewSeq: 7, Age: 4 * time.Second, Dead: true, Adopted: true, ConfigHash: "def"},
		},
		[]store.ClaimRow{{Claim: store.Claim{Agent: "1001", Queue: "3000@default", MemberUUID: "m-1"}, Node: "node-a",
			Incarnation: 3, Epoch: 17, ClaimedAt: at}})
	want := `node node-a incarnation 3: healthy
node|incarnation|renew_seq|renew_age|dead|adopted|config_hash
node-a|3|40|120ms|false|false|abc
node-b|1|7|4s|true|true|def*
* config hash differs from this node's: the [callcenter] sections are not the same
agent|queue|member_uuid|node|incarnation|epoch|claimed_at
1001|3000@default|m-1|node-a|3|17|2026-12-02T16:00:00Z
+OK
`
	if got != want {
		t.Errorf("cluster status:\n%s\nwant:\n%s", got, want)
	}
	if s := formatClusterStatus(store.NodeFence{Node: "n", Incarnation: 1}, false, "", nil, nil); !strings.Contains(s, "NOT HEALTHY") {
		t.Errorf("unhealthy node not shown: %s", s)
	}
}

// TestClusterCommandUsage: `ccpbx cluster` without status explains itself.
func TestClusterCommandUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"cluster", "drain"}, strings.NewReader(""), &out, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "usage: ccpbx cluster status") {
		t.Errorf("stderr %q", errb.String())
	}
}
