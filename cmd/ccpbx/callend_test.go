package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestQueueMemberLeavesWhenMediaTimesOut is issue 10's "a member whose
// channel is gone is never left in the queue": a trunk call set up without
// any SDP (bodiless INVITE and ACK) waits in 3000@default with no agent
// logged in; the media timeout hangs it up, the member leaves the queue,
// no channel is left, and the next queue call reaches an agent.
func TestQueueMemberLeavesWhenMediaTimesOut(t *testing.T) {
	p := testPBX(t, func(c *config.Config) { c.Media.MediaTimeout.Duration = 3 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	members := func() string {
		return strings.TrimSpace(p.api(t, "callcenter_config queue count members 3000@default"))
	}

	ghost := testphone.New(t)
	ghost.BareAcks()
	c, err := ghost.Invite(ctx, p.sip.Addr("blueivr").String(), "5550666", "3000", testphone.WithoutSDP())
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("ghost call: final %d %v", code, err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return members() == "1" }, "the ghost caller in the queue")
	if err := c.WaitEnded(ctx); err != nil {
		t.Fatalf("a call without media was never hung up: %v", err)
	}
	if bye := c.Bye(); bye == nil || !strings.Contains(bye.GetHeader("Reason").Value(), "MEDIA_TIMEOUT") {
		t.Fatalf("ghost call ended without a MEDIA_TIMEOUT BYE: %v", bye)
	}
	// Like mod_callcenter, the row stays as Abandoned (for
	// discard-abandoned-after) with no session: nobody waits any more.
	list := func() string { return p.api(t, "callcenter_config queue list members 3000@default") }
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return onlyAbandoned(list()) }, "the ghost member to leave the queue: %v", stringer(list))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return p.api(t, "show channels count") == "\n0 total.\n" }, "no channel left")

	// The next caller is served: an agent logs in, answers, both hear
	// each other.
	agent := agentPhone(t, p, "1001")
	if r := p.api(t, "callcenter_config agent set status 1001 Available"); r != "+OK\n" {
		t.Fatalf("agent login: %q", r)
	}
	cust, err := testphone.New(t).Invite(ctx, p.sip.Addr("blueivr").String(), "5550001", "3000")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := cust.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("next caller: final %d %v", code, err)
	}
	// The customer talks from its 200 on, so the short media timeout
	// never hits a live call.
	var done atomic.Bool
	go cust.Audio.SendUntil(ctx, 0x11, done.Load)
	defer done.Store(true)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return cust.Audio.Loud(speechRMS) > 0 }, "music for the next caller")
	in := answerAndTalk(t, agent, cust)
	if err := cust.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return p.api(t, "show channels count") == "\n0 total.\n" }, "no channel left after the served call")
}

type stringer func() string

func (s stringer) String() string { return s() }

// onlyAbandoned reports whether every row of a `queue list members`
// listing is in state Abandoned (and there is at least one).
func onlyAbandoned(listing string) bool {
	lines := strings.Split(strings.TrimSpace(listing), "\n")
	if len(lines) < 3 {
		return false
	}
	head := strings.Split(lines[0], "|")
	state := -1
	for i, h := range head {
		if h == "state" {
			state = i
		}
	}
	for _, l := range lines[1 : len(lines)-1] {
		f := strings.Split(l, "|")
		if state < 0 || state >= len(f) || f[state] != "Abandoned" {
			return false
		}
	}
	return true
}

// TestRegistrationTargetListing: a phone that registers a private Contact
// from another address is reached at the REGISTER's source, and `show
// registrations` and sofia_contact say so as FreeSWITCH does, with
// ;fs_nat=yes;fs_path=<source> on the url; a phone reached at its Contact
// is listed plain.
func TestRegistrationTargetListing(t *testing.T) {
	p := testPBX(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	natted := testphone.New(t)
	private := sipmsg.Uri{Scheme: "sip", User: "1001", Host: "192.168.7.20", Port: 5060}
	if res, err := natted.RegisterContact(ctx, p.sip.Addr("internal").String(), "1001", "1234", private, time.Hour); err != nil || res.StatusCode != 200 {
		t.Fatalf("register 1001: %v %v", res, err)
	}
	plain := agentPhone(t, p, "1002")
	path := "fs_path=sip%3A1001%40" + strings.ReplaceAll(natted.Addr().String(), ":", "%3A")
	regs := p.api(t, "show registrations")
	if !strings.Contains(regs, ",sofia/internal/sip:1001@192.168.7.20:5060;fs_nat=yes;"+path+",") {
		t.Errorf("show registrations does not mark 1001 as reached at its source:\n%s", regs)
	}
	contact := plain.ContactURI("1002")
	if want := ",sofia/internal/" + contact.String() + ","; !strings.Contains(regs, want) {
		t.Errorf("show registrations: want 1002 plain (%s):\n%s", want, regs)
	}
	dial := p.api(t, "sofia_contact 1001")
	if dial != "sofia/internal/sip:1001@192.168.7.20:5060;fs_nat=yes;"+path {
		t.Errorf("sofia_contact 1001 = %q", dial)
	}
	// A call to what sofia_contact returned reaches the phone at its
	// source, with a Request-URI that does not carry our marks.
	reply := make(chan string, 1)
	go func() { reply <- p.api(t, "originate "+dial+" &echo") }()
	in, err := natted.Incoming(ctx)
	if err != nil {
		t.Fatalf("originate to %s did not reach the phone: %v", dial, err)
	}
	if r := in.Request().Recipient; r.Host != "192.168.7.20" || r.UriParams.Has("fs_nat") || r.UriParams.Has("fs_path") {
		t.Errorf("Request-URI %s", r.String())
	}
	if err := in.Reject(486); err != nil {
		t.Fatal(err)
	}
	if r := <-reply; !strings.HasPrefix(r, "-ERR") {
		t.Errorf("originate replied %q, want -ERR after the 486", r)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return p.api(t, "show channels count") == "\n0 total.\n" }, "no channel left")
}
