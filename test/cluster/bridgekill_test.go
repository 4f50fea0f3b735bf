//go:build cluster

package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestClusterBridgedKill is stage 1 of a dead node's bridged calls
// (scale-out §4.4): an agent talks with a trunk caller on one node, longer
// than the lease TTL; that node is SIGKILLed; the node that adopts it
// sends BYE (Reason Q.850 cause 41) on both legs, so the agent's phone
// and the caller are free, and the agent takes the next call.
func TestClusterBridgedKill(t *testing.T) {
	c := newCluster(t, "bridgedkill", []string{"1001"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"%s", append(args, c.logs())...)
	}
	agent := testphone.New(t)
	c.waitKamailio(t, agent)
	if res, err := agent.Register(ctx, c.phones, "1001", "1234", time.Hour); err != nil || res.StatusCode != 200 {
		fail("register 1001 through kamailio: %v %v", res, err)
	}
	for _, n := range c.nodes {
		pbxtest.WaitFor(t, 10*time.Second, func() bool {
			return strings.Contains(n.mustCLI(t, "show registrations"), "sip:1001@")
		}, "%s to list 1001", n.id)
	}
	login, err := agent.Dial(ctx, "300")
	if err != nil {
		fail("1001 dials 300: %v", err)
	}
	if code, err := login.WaitFinal(ctx); code != 200 || err != nil {
		fail("1001 dials 300: %d %v", code, err)
	}
	if err := login.WaitEnded(ctx); err != nil {
		fail("1001: the login call did not end: %v", err)
	}
	c.waitAgents(t, "after 300", []string{"1001"}, "Available", "Waiting")

	trunk := testphone.New(t)
	// bridged places a trunk call, has 1001 answer it, and returns both
	// legs with the node that holds the caller.
	bridged := func(step, num string) (caller, call *testphone.Call, node string) {
		t.Helper()
		caller, err := trunk.Invite(ctx, c.trunks, num, "3000")
		if err != nil {
			fail("%s: trunk INVITE: %v", step, err)
		}
		if code, err := caller.WaitFinal(ctx); code != 200 || err != nil {
			fail("%s: the queue did not answer: %d %v", step, code, err)
		}
		node = nodeOf(caller.Final().Contact())
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		call, err = agent.Incoming(rctx)
		if err != nil {
			fail("%s: 1001 did not ring for the call on %s: %v", step, node, err)
		}
		if err := call.Answer(); err != nil {
			t.Fatal(err)
		}
		if err := call.WaitAcked(ctx); err != nil {
			fail("%s: 1001's 200 was not ACKed: %v", step, err)
		}
		if err := caller.Audio.SendUntil(ctx, 0x11, func() bool { return call.Audio.Received(0x11) > 0 }); err != nil {
			fail("%s: caller → 1001 audio: %v", step, err)
		}
		return caller, call, node
	}
	caller, call, at := bridged("call 1", "5550001")
	var victim *node
	for _, n := range c.nodes {
		if n.id == at {
			victim = n
		}
	}
	if victim == nil {
		fail("the caller's node %q is not one of the cluster's", at)
	}
	// The bridge's dialogs are recorded before the kill (else the kill
	// could come before the write and there would be nothing to end).
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		rows, err := c.query("SELECT count(*) FROM cc_dialogs WHERE node = '" + victim.id + "'")
		return err == nil && len(rows) == 1 && rows[0][0] == "2"
	}, "cc_dialogs to hold both legs of the bridge on %s", victim.id)
	victim.proc.kill9()
	killed := time.Now()
	t.Logf("killed %s with 1001 bridged to a trunk caller", victim.id)

	// Both phones get the adopter's BYE: a bound well past TTL + grace.
	ectx, ecancel := context.WithTimeout(ctx, 20*time.Second)
	defer ecancel()
	if err := call.WaitEnded(ectx); err != nil {
		fail("1001's call on the dead %s was not ended: %v", victim.id, err)
	}
	if err := caller.WaitEnded(ectx); err != nil {
		fail("the trunk caller's call on the dead %s was not ended: %v", victim.id, err)
	}
	t.Logf("both legs ended %v after the kill (lease TTL %v)", time.Since(killed).Round(10*time.Millisecond), leaseTTL)
	for who, cl := range map[string]*testphone.Call{"1001": call, "caller": caller} {
		bye := cl.Bye()
		if bye == nil {
			fail("%s: call ended without a BYE", who)
		}
		if r := bye.GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), "cause=41") {
			fail("%s: BYE without Reason cause=41: %v", who, r)
		}
	}
	c.waitAgents(t, "after the kill", []string{"1001"}, "Available", "Waiting")
	rows, err := c.query("SELECT count(*) FROM cc_dialogs")
	if err != nil || len(rows) != 1 || rows[0][0] != "0" {
		fail("cc_dialogs after the adoption: %v %v", rows, err)
	}

	// 1001 takes the next call, on the survivor.
	caller2, call2, node2 := bridged("call 2", "5550002")
	if node2 == victim.id {
		fail("call 2 landed on the dead %s", node2)
	}
	if err := caller2.Hangup(ctx); err != nil {
		fail("call 2: caller BYE: %v", err)
	}
	if err := call2.WaitEnded(ctx); err != nil {
		fail("call 2: 1001's call did not end: %v", err)
	}
}
