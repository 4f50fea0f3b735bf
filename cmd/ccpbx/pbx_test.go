package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestMain fails the package if any test leaves a goroutine running: a PBX
// started in process must end everything it started when it shuts down.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// testLogLevel is the level testPBX logs at: debug for tests, so
// CCPBX_TEST_LOG shows everything; benchmarks lower it to the shipped
// config's info so formatting debug lines is not part of what they time.
var testLogLevel = "debug"

// testPBX starts the whole PBX in process with the shipped config.toml,
// moved to 127.0.0.1 and ephemeral ports.
func testPBX(t testing.TB, edit func(*config.Config)) *pbx {
	t.Helper()
	cfg, err := config.Load("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Profiles {
		cfg.Profiles[i].ListenIP = "127.0.0.1"
		cfg.Profiles[i].AdvertiseIP = "127.0.0.1"
		cfg.Profiles[i].Port = 0
	}
	cfg.EventSocket.Listen = "127.0.0.1:0"
	cfg.Core.DataDir = t.TempDir()
	// sounds_dir and scripts_dir stay "sounds" and "scripts": relative to
	// this package's directory they do not exist, so the embedded copies
	// serve, as for a binary run away from the repository.
	cfg.Core.Hostname = "testbox"
	if edit != nil {
		edit(cfg)
	}
	var w io.Writer = io.Discard
	if os.Getenv("CCPBX_TEST_LOG") != "" {
		w = os.Stderr
	}
	log := newLogger(config.Core{LogLevel: testLogLevel}, w)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c2 := context.WithTimeout(context.Background(), 4*time.Second)
		defer c2()
		p.shutdown(sctx)
		cancel()
	})
	return p
}

func (p *pbx) api(t testing.TB, cmd string) string {
	t.Helper()
	return p.core.API(context.Background(), cmd, nil)
}

// agentPhone registers user with the shipped password on the internal
// profile.
func agentPhone(t testing.TB, p *pbx, user string) *testphone.Phone {
	t.Helper()
	ph := testphone.New(t)
	res, err := ph.Register(context.Background(), p.sip.Addr("internal").String(), user, "1234", time.Hour)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register %s: %v %v", user, res, err)
	}
	return ph
}

// speechRMS is the level a packet of a prompt or music reaches and silence
// does not (16-bit linear RMS).
const speechRMS = 300

// dialAndWaitHangup dials dest from ph, expects 200 and then the PBX's BYE.
func dialAndWaitHangup(t testing.TB, ph *testphone.Phone, dest string, opts ...testphone.CallOption) *testphone.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := ph.Dial(ctx, dest, opts...)
	if err != nil {
		t.Fatalf("dial %s: %v", dest, err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("dial %s: final %d %v", dest, code, err)
	}
	if err := c.WaitEnded(ctx); err != nil {
		t.Fatalf("dial %s: PBX did not hang up: %v", dest, err)
	}
	if c.Bye() == nil {
		t.Fatalf("dial %s: expected a BYE from the PBX", dest)
	}
	// The prompts are over a second of speech: at least 0.4 s of it must
	// have arrived at speech level, not silence.
	if n := c.Audio.Loud(speechRMS); n < 20 {
		t.Fatalf("dial %s: heard %d loud packets of %d, want the prompt", dest, n, c.Audio.Packets())
	}
	return c
}

func agentField(t testing.TB, p *pbx, agent, field string) string {
	t.Helper()
	return p.api(t, "callcenter_config agent get "+field+" "+agent)
}

// trunkCall places a customer call to 3000 on the trunk profile and returns
// it once answered.
func trunkCall(t testing.TB, p *pbx, trunk *testphone.Phone, caller string) *testphone.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := trunk.Invite(ctx, p.sip.Addr("blueivr").String(), caller, "3000")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("trunk call from %s: final %d %v", caller, code, err)
	}
	// The caller hears the queue's music while it waits.
	if !pbxtest.Until(15*time.Second, func() bool { return c.Audio.Loud(speechRMS) >= 25 }) {
		t.Fatalf("trunk call from %s: no music on hold (%d packets, %d loud)", caller, c.Audio.Packets(), c.Audio.Loud(speechRMS))
	}
	return c
}

// answerNext waits for the next call offered to ph, answers it and checks
// audio crosses the PBX both ways.
func answerAndTalk(t *testing.T, agent *testphone.Phone, customer *testphone.Call) *testphone.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	in, err := agent.Incoming(ctx)
	if err != nil {
		t.Fatalf("agent never rang: %v", err)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	// Each side sends its own marker until the other has heard it.
	go customer.Audio.SendUntil(ctx, 0x11, func() bool { return in.Audio.Received(0x11) > 0 })
	if err := in.Audio.SendUntil(ctx, 0x22, func() bool { return customer.Audio.Received(0x22) > 0 }); err != nil {
		t.Fatalf("agent audio never reached the customer: %v", err)
	}
	if err := in.Audio.WaitFor(ctx, 0x11); err != nil {
		t.Fatalf("customer audio never reached the agent: %v", err)
	}
	return in
}

// TestArticleSequence repeats the reference article's test against the whole
// PBX in process: register, log in with 300, trunk calls to 3000 answered by
// agents in round-robin order with audio both ways, log out with 301.
func TestArticleSequence(t *testing.T) {
	p := testPBX(t, nil)
	a1 := agentPhone(t, p, "1001")
	a2 := agentPhone(t, p, "1002")
	regs := p.api(t, "show registrations")
	if !strings.Contains(regs, "\n2 total.\n") || !strings.Contains(regs, "\n1001,") || !strings.Contains(regs, "\n1002,") {
		t.Fatalf("show registrations:\n%s", regs)
	}

	dialAndWaitHangup(t, a1, "300")
	dialAndWaitHangup(t, a2, "300")
	for _, a := range []string{"1001", "1002"} {
		if got := agentField(t, p, a, "status"); got != "Available" {
			t.Fatalf("agent %s status after 300 = %q", a, got)
		}
		if got := agentField(t, p, a, "state"); got != "Waiting" {
			t.Fatalf("agent %s state after 300 = %q", a, got)
		}
	}

	// Shorten wrap-up so consecutive calls don't wait 10 s each.
	for _, a := range []string{"1001", "1002"} {
		if r := p.api(t, "callcenter_config agent set wrap_up_time "+a+" 0"); r != "+OK\n" {
			t.Fatalf("set wrap_up_time: %q", r)
		}
	}

	trunk := testphone.New(t)
	agents := map[string]*testphone.Phone{"1001": a1, "1002": a2}
	var order []string
	for i, caller := range []string{"5550001", "5550002", "5550003"} {
		cust := trunkCall(t, p, trunk, caller)
		// Whoever rings first is offered the call; round-robin decides who.
		got := ""
		pbxtest.Until(15*time.Second, func() bool {
			for name := range agents {
				if agentField(t, p, name, "state") == "Receiving" {
					got = name
					return true
				}
			}
			return false
		})
		if got == "" {
			t.Fatalf("call %d: no agent was offered the call\n%s%s", i+1, p.api(t, "callcenter_config agent list"), p.api(t, "callcenter_config queue list members 3000@default"))
		}
		order = append(order, got)
		in := answerAndTalk(t, agents[got], cust)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cust.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := in.WaitEnded(ctx); err != nil || in.Bye() == nil {
			t.Fatalf("call %d: agent leg not ended by BYE after the caller hung up: %v", i+1, err)
		}
		cancel()
		pbxtest.WaitFor(t, 10*time.Second, func() bool { return agentField(t, p, got, "state") == "Waiting" }, "agent %s back to Waiting", got)
	}
	if order[0] == order[1] || order[1] == order[2] {
		t.Fatalf("round-robin order = %v, want alternation", order)
	}

	dialAndWaitHangup(t, a1, "301")
	if got := agentField(t, p, "1001", "status"); got != "Logged Out" {
		t.Fatalf("1001 status after 301 = %q", got)
	}
	cust := trunkCall(t, p, trunk, "5550004")
	in := answerAndTalk(t, a2, cust)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	cust.Hangup(ctx)
}

var _ = slog.Default

// TestRegistrationEvents checks a REGISTER fires sofia::register on the bus.
func TestRegistrationEvents(t *testing.T) {
	p := testPBX(t, nil)
	events, cancel := p.core.Bus.Subscribe(16, func(e *call.Event) bool { return e.Subclass == "sofia::register" })
	defer cancel()
	agentPhone(t, p, "1001")
	select {
	case e := <-events:
		if e.Get("from-user") != "1001" || e.Get("profile-name") != "internal" || e.Get("status") != "Registered(UDP)" {
			t.Fatalf("event headers: %+v", e.Headers)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no sofia::register event")
	}
}

// TestEchoExtension dials 9196: what the phone sends comes back to it.
func TestEchoExtension(t *testing.T) {
	echoCall(t, testPBX(t, nil))
}

// echoCall has 1001 dial the echo test 9196, checks its audio comes back
// and hangs up.
func echoCall(t *testing.T, p *pbx) {
	t.Helper()
	ph := agentPhone(t, p, "1001")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := ph.Dial(ctx, "9196")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("9196: final %d %v", code, err)
	}
	if err := c.Audio.SendUntil(ctx, 0x5a, func() bool { return c.Audio.Received(0x5a) > 0 }); err != nil {
		t.Fatalf("no echo of our audio: %v", err)
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
}
