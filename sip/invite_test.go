package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/media"
)

// The INVITE transaction and dialog rules of the SIP edge: 200 retransmitted
// until the ACK, CANCEL before a provisional, re-INVITE and BYE on early
// dialogs, Require, oversized headers on UDP, the advertised address,
// channel variables of an inbound call, starting twice, and concurrent calls.

func TestInboundChannelVariables(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.Plan{Status: 486})
	ctx := testCtx(t, 10*time.Second)
	c1, err := p1.Dial(ctx, "1002", testphone.WithFromName("Alice"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.WaitFinal(ctx); err != nil {
		t.Fatal(err)
	}
	a := x.inboundLeg(t, 0)
	src := p1.Addr()
	want := map[string]string{
		"caller_id_number": "1001",
		// An authenticated call shows its account's caller ID, not
		// From's display name (issue 11, FreeSWITCH's behaviour).
		"caller_id_name":             "Extension 1001",
		"destination_number":         "1002",
		"context":                    "default",
		"username":                   "1001",
		"sofia_profile_name":         "internal",
		"network_addr":               src.Addr().String(),
		"network_port":               itoa(int(src.Port())),
		"sip_from_user":              "1001",
		"sip_to_user":                "1002",
		"effective_caller_id_number": "1001",
		"effective_caller_id_name":   "Extension 1001",
	}
	for k, v := range want {
		if got := a.Var(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if a.Var("sip_call_id") != c1.Request().CallID().Value() {
		t.Errorf("sip_call_id %q", a.Var("sip_call_id"))
	}
	if want := "sofia/internal/1001@" + src.String(); a.Name() != want {
		t.Errorf("name %q, want %q", a.Name(), want)
	}
}

func TestStartTwiceAndAddr(t *testing.T) {
	x := newTestPBX(t)
	if err := x.stack.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	if ap := x.stack.Addr("internal"); !ap.IsValid() || ap.Port() == 0 {
		t.Errorf("Addr %v", ap)
	}
	if ap := x.stack.Addr("nosuch"); ap.IsValid() {
		t.Errorf("Addr of unknown profile %v", ap)
	}
	infos := x.stack.ProfileInfos()
	if len(infos) != 2 || infos[0].Name != "internal" || infos[0].State != "RUNNING (0)" ||
		infos[0].Data != "sip:mod_sofia@"+x.stack.Addr("internal").String() {
		t.Errorf("infos %+v", infos)
	}
}

func TestRequireOptions(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	c, err := p.Invite(ctx, x.trunk(), "5550001", "9999", testphone.WithHeader("Require", "timer"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 404 {
		t.Fatalf("Require: timer gave %d, want the dialplan's 404", code)
	}
	c, err = p.Invite(ctx, x.trunk(), "5550001", "9999", testphone.WithHeader("Require", "timer, precondition, 100rel"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 420 {
		t.Fatalf("final %d, want 420", code)
	}
	if h := c.Final().GetHeader("Unsupported"); h == nil || h.Value() != "precondition, 100rel" {
		t.Errorf("Unsupported %v", h)
	}
}

func TestByeOnEarlyDialog(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	ctx := testCtx(t, 10*time.Second)
	c1, in := ringing(t, ctx, p1, p2)
	if err := c1.Hangup(ctx); err != nil {
		t.Fatalf("BYE on the early dialog: %v", err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 487 {
		t.Fatalf("INVITE final %d, want 487", code)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestOversizedExtraHeadersAreDroppedOverUDP(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	p.SetPlan(testphone.Plan{Status: 486})
	ctx := testCtx(t, 10*time.Second)
	var vars []string
	for i := 0; i < 12; i++ {
		vars = append(vars, "sip_h_X-Pad"+itoa(i)+"="+strings.Repeat("v", 120))
	}
	vars = append(vars, "origination_caller_id_number=5550100")
	dial := "{" + strings.Join(vars, ",") + "}sofia/internal/agent@" + p.Addr().String()
	_, err := x.core.Originate(ctx, dial, call.OriginateOptions{})
	if c, _ := call.AsCause(err); c != call.UserBusy {
		t.Fatalf("originate: %v", err)
	}
	in, err := p.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := in.Request()
	if n := len(req.String()); n > maxUDPMessage {
		t.Errorf("INVITE of %d bytes over UDP", n)
	}
	if req.GetHeader("X-Pad0") != nil {
		t.Error("padding headers were kept")
	}
	if req.From().Address.User != "5550100" {
		t.Errorf("From %s", req.From().Address.User)
	}
	// A few small ones fit and are sent.
	_, err = x.core.Originate(ctx, "{sip_h_X-CC-Queue=3000@default}sofia/internal/agent@"+p.Addr().String(), call.OriginateOptions{})
	if c, _ := call.AsCause(err); c != call.UserBusy {
		t.Fatalf("originate: %v", err)
	}
	in, err = p.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h := in.Request().GetHeader("X-CC-Queue"); h == nil || h.Value() != "3000@default" {
		t.Errorf("X-CC-Queue %v", h)
	}
}

func TestAnswerRetransmittedUntilAck(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	p1.SkipAcks(1)
	ctx := testCtx(t, 10*time.Second)
	c1, in := dialed(t, ctx, p1, p2)
	if code, _ := c1.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return c1.Retransmitted200() > 0 },
		"the PBX to retransmit its 200 after the lost ACK")
	exchangeAudio(t, ctx, c1, in)
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestCancelBeforeAnyProvisionalWaitsForOne(t *testing.T) {
	x := newTestPBX(t)
	ctx := testCtx(t, 10*time.Second)
	// No ringing, no answer: only sipgo's own 100 after 200 ms; the
	// originate is cancelled before the phone sent anything, so the CANCEL
	// has to wait.
	in := cancelledOriginate(t, ctx, x, testphone.Plan{})
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if !in.Cancelled() {
		t.Fatal("phone never got the CANCEL")
	}
}

func TestReinviteBeforeAnswerIsRefused(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	ctx := testCtx(t, 10*time.Second)
	c1, in := ringing(t, ctx, p1, p2)
	res, err := c1.Reinvite(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 500 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("re-INVITE before answer: %d", res.StatusCode)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestAdvertisedAddressChoice(t *testing.T) {
	core := call.NewCore("test", testLogger())
	eng, err := media.NewEngine(media.Config{RTPStart: 40000, RTPEnd: 49999}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	st, err := New(Options{Core: core, Media: eng, Log: testLogger(), Profiles: []config.Profile{
		{Name: "all", Context: "x"},
		{Name: "lo", ListenIP: "127.0.0.1", Context: "x"},
		{Name: "nat", ListenIP: "127.0.0.1", AdvertiseIP: "203.0.113.10", Context: "x"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all := st.byName["all"]
	if !all.listenIP.IsUnspecified() || !all.advIP.IsValid() || all.advIP.IsUnspecified() || !all.udp || !all.tcp {
		t.Errorf("default profile listens %v advertises %v udp=%v tcp=%v", all.listenIP, all.advIP, all.udp, all.tcp)
	}
	if got := st.byName["lo"].advIP.String(); got != "127.0.0.1" {
		t.Errorf("specific listen_ip advertises %s", got)
	}
	if got := st.byName["nat"].advIP.String(); got != "203.0.113.10" {
		t.Errorf("advertise_ip ignored: %s", got)
	}
	for _, bad := range []config.Profile{
		{Name: "v6", ListenIP: "::1"},
		{Name: "junk", ListenIP: "not-an-ip"},
		{Name: "tls", Transports: []string{"tls"}},
	} {
		if _, err := New(Options{Core: core, Media: eng, Profiles: []config.Profile{bad}}); err == nil {
			t.Errorf("profile %s accepted", bad.Name)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 20*time.Second)
	const n = 10
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- func() error {
				c, err := p1.Dial(ctx, "1002")
				if err != nil {
					return err
				}
				if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
					return fmt.Errorf("final %d %v", code, err)
				}
				if err := c.Audio.SendUntil(ctx, 0x40, func() bool { return c.Audio.Received(0x30) > 0 }); err != nil {
					return fmt.Errorf("no audio back on %s: %w", c.Request().CallID().Value(), err)
				}
				return c.Hangup(ctx)
			}()
		}()
	}
	// The callee echoes a marker on every call it answers.
	go func() {
		for i := 0; i < n; i++ {
			in, err := p2.Incoming(ctx)
			if err != nil {
				return
			}
			go func() { _ = in.Audio.SendUntil(ctx, 0x30, in.Ended) }()
		}
	}()
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	x.waitIdle(t, ctx)
}

// TestCancelledDialEndsWithTheCallee: a dial cancelled while the phone
// rings reports the leg ended only once the phone has answered the INVITE
// (487), so the ACD cannot offer the agent the next caller while the phone
// still rings for the last one (a proxy in between may forward a new
// INVITE ahead of the CANCEL).
func TestCancelledDialEndsWithTheCallee(t *testing.T) {
	x := newTestPBX(t)
	ctx := testCtx(t, 10*time.Second)
	in := cancelledOriginate(t, ctx, x, testphone.Plan{Rings: 1, HoldCancel: 300 * time.Millisecond})
	if !in.Cancelled() || !in.Held487() {
		t.Fatalf("the dial ended before the phone's 487 (cancelled %v, 487 sent %v)", in.Cancelled(), in.Held487())
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

// cancelledOriginate originates to a phone with plan, cancels the
// originate as soon as the INVITE reached the phone, and returns the
// phone's call once Originate has returned (with an error).
func cancelledOriginate(t *testing.T, ctx context.Context, x *testPBX, plan testphone.Plan) *testphone.Call {
	t.Helper()
	p := testphone.New(t)
	p.SetPlan(plan)
	octx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := x.core.Originate(octx, "sofia/internal/agent@"+p.Addr().String(), call.OriginateOptions{})
		done <- err
	}()
	in, err := p.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("originate succeeded")
	}
	return in
}
