package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// resources is what a PBX holds for its calls, each counted by the part
// that owns it.
type resources struct {
	channels, legs, dialogs, ports int
	members, offers, agentLegs     int
	goroutines, sockets            int
}

func (r resources) String() string {
	return fmt.Sprintf("channels %d, sip legs %d, dialogs %d, RTP ports %d, members %d, offers %d, agent legs %d, goroutines %d, sockets %d",
		r.channels, r.legs, r.dialogs, r.ports, r.members, r.offers, r.agentLegs, r.goroutines, r.sockets)
}

func (p *pbx) resources(t *testing.T) resources {
	t.Helper()
	v, err := p.acd.View()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// Sockets only: database/sql may open a second SQLite connection
	// when two writers meet and keep it idle in its pool.
	sockets := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			sockets++
		}
	}
	r := resources{
		channels: p.core.Count(), ports: p.media.PortsInUse(),
		members: len(v.Members), offers: v.Offers, agentLegs: v.AgentLegs,
		goroutines: runtime.NumGoroutine(), sockets: sockets,
	}
	r.legs, r.dialogs = p.sip.Live()
	return r
}

// released: nothing of a call is left, and the process's goroutines and
// sockets are back to what they were before it.
func (r resources) released(base resources) bool {
	return r.channels == 0 && r.legs == 0 && r.dialogs == 0 && r.ports == 0 &&
		r.members == 0 && r.offers == 0 && r.agentLegs == 0 &&
		r.goroutines <= base.goroutines && r.sockets <= base.sockets
}

// TestQueueCallReleasesResources places a queue call through real SIP (a
// trunk caller, music, an agent answers, audio both ways, the caller hangs
// up) and checks that everything the call held is given back: channels,
// SIP legs and dialogs, RTP ports, the ACD's member and offers, goroutines,
// sockets, and that the call's two channels become unreachable, so
// nothing (a registry, a SIP transaction's callback or timer) keeps an ended
// call's memory.
func TestQueueCallReleasesResources(t *testing.T) {
	p := testPBX(t, nil)
	agent := agentPhone(t, p, "1001")
	dialAndWaitHangup(t, agent, "300")
	if r := p.api(t, "callcenter_config agent set wrap_up_time 1001 0"); r != "+OK\n" {
		t.Fatalf("set wrap_up_time: %q", r)
	}
	trunk := testphone.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// queueCall runs one whole call and returns weak pointers to its
	// channels, looked up while it is bridged.
	queueCall := func(caller string) []weak.Pointer[call.Channel] {
		cust := trunkCall(t, p, trunk, caller)
		in := answerAndTalk(t, agent, cust)
		chans := p.core.Channels()
		if len(chans) != 2 {
			t.Fatalf("%d channels during the bridged call, want 2", len(chans))
		}
		if r := p.resources(t); r.legs != 2 || r.dialogs != 2 || r.ports != 2 || r.members != 1 || r.offers != 1 || r.agentLegs != 1 {
			t.Fatalf("during the call: %v; want 2 legs, dialogs and ports, 1 member, offer and agent leg", r)
		}
		if err := cust.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.WaitEnded(ctx); err != nil {
			t.Fatal(err)
		}
		refs := make([]weak.Pointer[call.Channel], len(chans))
		for i, ch := range chans {
			refs[i] = weak.Make(ch)
		}
		return refs
	}
	idle := func() bool {
		r := p.resources(t)
		return r.channels == 0 && r.legs == 0 && r.dialogs == 0 && r.ports == 0 && r.members == 0 &&
			agentField(t, p, "1001", "state") == "Waiting"
	}

	// The first call starts what stays for later calls (the queue's music
	// broadcaster, the stores' writers); the second is the one measured.
	queueCall("5550001")
	pbxtest.WaitFor(t, 10*time.Second, idle, "the first call to end")
	base := p.resources(t)

	refs := queueCall("5550002")
	var last resources
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		last = p.resources(t)
		return last.released(base)
	}, "the call's resources back (before: %v; now: %v)", base, &last)
	if s := agentField(t, p, "1001", "state"); s != "Waiting" {
		t.Errorf("agent state %q after the call, want Waiting", s)
	}

	// Unreachable: collected. A channel retained here is memory every ended
	// call keeps. Issue 15 found every call held 32 s by sipgo's INVITE
	// transactions through the callbacks ccpbx registered on them (fixed:
	// txRef), and, in 14 of 23 runs, for 0.5-32 s by the media leg's
	// stopped media-timeout timer, which the runtime keeps with its
	// function until it was due (fixed: the timer holds the leg weakly).
	// Fixed, the channels go within a few GCs (7-23 ms in 20 runs); the
	// bound is below most of the old holds (without the fix it failed 4
	// of 8 runs) and is not a speed assertion: only room for a loaded
	// machine to run those GCs.
	live := func() int {
		n := 0
		for _, r := range refs {
			if r.Value() != nil {
				n++
			}
		}
		return n
	}
	t0 := time.Now()
	pbxtest.WaitFor(t, 2*time.Second, func() bool {
		runtime.GC()
		return live() == 0
	}, "the ended call's channels to be collected (%s of 2 still reachable)", fnStringer(func() string { return fmt.Sprint(live()) }))
	t.Logf("the call's channels were collected %v after the resources were back", time.Since(t0).Round(time.Millisecond))
}

// fnStringer formats lazily, for WaitFor's message.
type fnStringer func() string

func (f fnStringer) String() string { return f() }
