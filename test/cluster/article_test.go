//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// waitKamailio waits until Kamailio answers an OPTIONS on its phone side.
func (c *cluster) waitKamailio(t *testing.T, ph *testphone.Phone) {
	t.Helper()
	ap := netip.MustParseAddrPort(c.phones)
	pbxtest.WaitFor(t, 15*time.Second, func() bool {
		if c.kam.exited() {
			t.Fatalf("kamailio exited: %v\n%s", c.kam.err, tail(c.kam.outPath, 30))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req := sipmsg.NewRequest(sipmsg.OPTIONS, sipmsg.Uri{Scheme: "sip", Host: ap.Addr().String(), Port: int(ap.Port())})
		res, err := ph.Do(ctx, req)
		return err == nil && res.StatusCode == 200
	}, "kamailio to answer OPTIONS on %s", c.phones)
}

// waitAgents waits until every node lists every named agent with this
// status and one of the states.
func (c *cluster) waitAgents(t *testing.T, step string, names []string, status string, states ...string) {
	t.Helper()
	var last string
	ok := pbxtest.Until(15*time.Second, func() bool {
		for _, n := range c.live() {
			rows, err := n.agents(t)
			if err != nil {
				last = err.Error()
				return false
			}
			for _, a := range names {
				r := rows[a]
				good := r.status == status
				if good && len(states) > 0 {
					good = false
					for _, s := range states {
						good = good || r.state == s
					}
				}
				if !good {
					last = fmt.Sprintf("%s lists %s as %q/%q", n.id, a, r.status, r.state)
					return false
				}
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("%s: want agents %v %s %v on every node: %s%s", step, names, status, states, last, c.logs())
	}
}

// ringing is an agent's incoming call, tagged with the agent.
type ringing struct {
	agent string
	call  *testphone.Call
}

// TestClusterArticle is the reference article's flow through Kamailio
// against two nodes sharing PostgreSQL: agents 1001 and 1002 register
// through Kamailio (which adds a Path), log in by dialing 300, trunk calls
// to 3000 land on n1 and n2 in turn (Kamailio's round-robin), each rings
// an agent along its Path from the node that holds the caller, the agents
// take them in round-robin order across the nodes (one order for the
// cluster, not one per node), audio flows both ways, and 1001 logs out by
// dialing 301, after which the calls on both nodes ring only 1002.
func TestClusterArticle(t *testing.T) {
	need(t, "sipp", "sip-tester") // the chaos run's agents; checked here so both tests ask for the same tools
	c := newCluster(t, "article", []string{"1001", "1002"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"%s", append(args, c.logs())...)
	}

	// 1. Both agents register through Kamailio; every node keeps the Path.
	agents := map[string]*testphone.Phone{"1001": testphone.New(t), "1002": testphone.New(t)}
	c.waitKamailio(t, agents["1001"])
	rings := make(chan ringing, 8)
	for name, ph := range agents {
		res, err := ph.Register(ctx, c.phones, name, "1234", time.Hour)
		if err != nil || res.StatusCode != 200 {
			fail("register %s through kamailio: %v %v", name, res, err)
		}
		go func() {
			for {
				in, err := ph.Incoming(ph.Context())
				if err != nil {
					return
				}
				rings <- ringing{name, in}
			}
		}()
	}
	// Every node lists both, with their Path: the bindings are shared (a
	// node other than the registrar's learns them within a lease renewal).
	for _, n := range c.nodes {
		var regs string
		if !pbxtest.Until(10*time.Second, func() bool {
			regs = n.mustCLI(t, "show registrations")
			for name := range agents {
				if !strings.Contains(regs, "sip:"+name+"@") || !strings.Contains(regs, "fs_path=%3Csip%3A"+kamIP) {
					return false
				}
			}
			return true
		}) {
			fail("%s: `show registrations` lacks 1001 or 1002 with a Path through %s:\n%s", n.id, kamIP, regs)
		}
	}

	// 2. Both log in by dialing 300 (through Kamailio, on whichever node it
	// picks): every node lists them Available.
	for _, name := range []string{"1001", "1002"} {
		call, err := agents[name].Dial(ctx, "300")
		if err != nil {
			fail("%s dials 300: %v", name, err)
		}
		if code, err := call.WaitFinal(ctx); code != 200 || err != nil {
			fail("%s dials 300: %d %v", name, code, err)
		}
		if err := call.WaitEnded(ctx); err != nil {
			fail("%s: the login call did not end: %v", name, err)
		}
	}
	c.waitAgents(t, "after 300", []string{"1001", "1002"}, "Available", "Waiting")

	// 3. Four trunk calls, one at a time, through Kamailio's trunk side.
	trunk := testphone.New(t)
	var lastRing int64 // when the last call rang an agent (Unix seconds)
	call := func(step string, num int) (node, agent string) {
		t.Helper()
		caller, err := trunk.Invite(ctx, c.trunks, fmt.Sprintf("55500%02d", num), "3000")
		if err != nil {
			fail("%s: trunk INVITE: %v", step, err)
		}
		if code, err := caller.WaitFinal(ctx); code != 200 || err != nil {
			fail("%s: the queue did not answer the trunk call: %d %v (codes %v)", step, code, err, caller.Codes())
		}
		node = nodeOf(caller.Final().Contact())
		var r ringing
		select {
		case r = <-rings:
			lastRing = time.Now().Unix()
		case <-time.After(20 * time.Second):
			fail("%s: no agent rang for the call on %s", step, node)
		}
		inv := r.call.Request()
		if v := inv.Via(); v == nil || v.Host != kamIP {
			fail("%s: %s's INVITE did not come through kamailio (top Via %v)", step, r.agent, v)
		}
		// The node that holds the caller rings the agent (the bridge is local).
		if from := nodeOf(inv.Contact()); from != node {
			fail("%s: the caller is on %s but %s's INVITE came from %s", step, node, r.agent, from)
		}
		if err := r.call.Answer(); err != nil {
			t.Fatal(err)
		}
		if err := r.call.WaitAcked(ctx); err != nil {
			fail("%s: %s's 200 was not ACKed: %v", step, r.agent, err)
		}
		if err := caller.Audio.SendUntil(ctx, 0x11, func() bool { return r.call.Audio.Received(0x11) > 0 }); err != nil {
			fail("%s: caller → %s audio: %v", step, r.agent, err)
		}
		if err := r.call.Audio.SendUntil(ctx, 0x22, func() bool { return caller.Audio.Received(0x22) > 0 }); err != nil {
			fail("%s: %s → caller audio: %v", step, r.agent, err)
		}
		if err := caller.Hangup(ctx); err != nil {
			fail("%s: caller BYE: %v", step, err)
		}
		if err := r.call.WaitEnded(ctx); err != nil {
			fail("%s: %s's call did not end: %v", step, r.agent, err)
		}
		return node, r.agent
	}
	var nodes, order []string
	for i := 1; i <= 4; i++ {
		c.waitAgents(t, fmt.Sprintf("before call %d", i), []string{"1001", "1002"}, "Available", "Waiting")
		// Round-robin follows last_offered_call, whole seconds as in
		// FreeSWITCH; within one second the order of offers is each node's
		// own (a node that mirrors a newer offer from another node sorts
		// that agent after its own offers, but a notice that lands after
		// the next offer still repeats an agent: a known gap, README). So
		// each call is offered in a later second than the one before, and
		// the order checked is the cluster's, not a tie-break's.
		pbxtest.WaitFor(t, 3*time.Second, func() bool { return time.Now().Unix() > lastRing }, "a new second")
		n, a := call(fmt.Sprintf("call %d", i), i)
		nodes, order = append(nodes, n), append(order, a)
	}
	t.Logf("calls landed on %v, answered by %v", nodes, order)
	if !strings.Contains(strings.Join(nodes, ","), "n1") || !strings.Contains(strings.Join(nodes, ","), "n2") {
		fail("the trunk calls all landed on one node: %v", nodes)
	}
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1] {
			fail("round-robin across the nodes broken: calls on %v were answered by %v", nodes, order)
		}
	}

	// 4. 1001 logs out by dialing 301; the next calls, on both nodes, ring 1002.
	out, err := agents["1001"].Dial(ctx, "301")
	if err != nil {
		fail("1001 dials 301: %v", err)
	}
	if code, err := out.WaitFinal(ctx); code != 200 || err != nil {
		fail("1001 dials 301: %d %v", code, err)
	}
	if err := out.WaitEnded(ctx); err != nil {
		fail("1001: the logout call did not end: %v", err)
	}
	c.waitAgents(t, "after 301", []string{"1001"}, "Logged Out")
	nodes = nodes[:0]
	for i := 5; i <= 6; i++ {
		c.waitAgents(t, fmt.Sprintf("before call %d", i), []string{"1002"}, "Available", "Waiting")
		pbxtest.WaitFor(t, 3*time.Second, func() bool { return time.Now().Unix() > lastRing }, "a new second")
		n, a := call(fmt.Sprintf("call %d", i), i)
		nodes = append(nodes, n)
		if a != "1002" {
			fail("call %d on %s rang %s, logged out", i, n, a)
		}
	}
	if nodes[0] == nodes[1] {
		fail("after the logout both calls landed on %s", nodes[0])
	}
}

// nodeOf names the node a Contact header points at.
func nodeOf(h *sipmsg.ContactHeader) string {
	if h == nil {
		return "(no Contact)"
	}
	for id, ip := range nodeIPs {
		if h.Address.Host == ip {
			return id
		}
	}
	return h.Address.Host
}
