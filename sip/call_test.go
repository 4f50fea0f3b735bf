package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// answered sets up 1001 → 1002 answered with audio checked.
func answered(t *testing.T, x *testPBX) (c1, in *testphone.Call) {
	t.Helper()
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	c1, in = dialed(t, ctx, p1, p2)
	talking(t, ctx, c1, in)
	return c1, in
}

// talking waits for c1's 200 and in's ACK, then checks that audio flows
// both ways.
func talking(t *testing.T, ctx context.Context, c1, in *testphone.Call) {
	t.Helper()
	if code, err := c1.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("final %d %v (codes %v)", code, err, c1.Codes())
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	exchangeAudio(t, ctx, c1, in)
}

// dialed calls 1002 from caller and returns the caller's call and the
// callee's once the INVITE has reached callee.
func dialed(t *testing.T, ctx context.Context, caller, callee *testphone.Phone) (c1, in *testphone.Call) {
	t.Helper()
	c1, err := caller.Dial(ctx, "1002")
	if err != nil {
		t.Fatal(err)
	}
	in, err = callee.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c1, in
}

// ringing is dialed plus the caller having seen a provisional response.
func ringing(t *testing.T, ctx context.Context, caller, callee *testphone.Phone) (c1, in *testphone.Call) {
	t.Helper()
	c1, in = dialed(t, ctx, caller, callee)
	if err := c1.WaitProvisional(ctx); err != nil {
		t.Fatal(err)
	}
	return c1, in
}

func TestCalleeHangsUp(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c1.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if c1.Bye() == nil {
		t.Fatal("caller got no BYE")
	}
	x.waitIdle(t, ctx)
}

func TestCancelWhileRinging(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	ctx := testCtx(t, 10*time.Second)
	c1, in := ringing(t, ctx, p1, p2)
	if err := c1.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 487 {
		t.Fatalf("caller final %d, want 487", code)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if !in.Cancelled() {
		t.Fatal("callee was not cancelled")
	}
	x.waitIdle(t, ctx)
	hangups := x.inboundLeg(t, 0)
	if c := hangups.Cause(); c != call.OriginatorCancel {
		t.Errorf("A leg cause %s", c)
	}
}

func TestCalleeBusy(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.Plan{Status: 486})
	ctx := testCtx(t, 10*time.Second)
	c1, err := p1.Dial(ctx, "1002")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 486 {
		t.Fatalf("caller final %d, want 486", code)
	}
	x.waitIdle(t, ctx)
	if c := x.inboundLeg(t, 0).Cause(); c != call.UserBusy {
		t.Errorf("A leg cause %s", c)
	}
}

func TestNoAnswerWithinCallTimeout(t *testing.T) {
	x := newTestPBX(t)
	x.mu.Lock()
	x.callTimeout = "1"
	x.mu.Unlock()
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	ctx := testCtx(t, 10*time.Second)
	c1, in := dialed(t, ctx, p1, p2)
	if code, _ := c1.WaitFinal(ctx); code != 480 {
		t.Fatalf("caller final %d, want 480", code)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if !in.Cancelled() {
		t.Fatal("ringing phone was not cancelled")
	}
	x.waitIdle(t, ctx)
	if c := x.inboundLeg(t, 0).Cause(); c != call.NoAnswer {
		t.Errorf("A leg cause %s", c)
	}
}

func TestUnregisteredCallee(t *testing.T) {
	x := newTestPBX(t)
	p1 := x.phone(t, "1001")
	ctx := testCtx(t, 10*time.Second)
	c1, err := p1.Dial(ctx, "1003")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 480 {
		t.Fatalf("final %d, want 480", code)
	}
	x.waitIdle(t, ctx)
	if c := x.inboundLeg(t, 0).Cause(); c != call.UserNotRegistered {
		t.Errorf("A leg cause %s", c)
	}
}

func TestUnauthenticatedInviteChallenged(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	c, err := p.Invite(ctx, x.internal(), "1001", "1002")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 407 {
		t.Fatalf("final %d, want 407", code)
	}
	if h := c.Final().GetHeader("Proxy-Authenticate"); h == nil {
		t.Fatal("407 without Proxy-Authenticate")
	}
	if n := len(x.core.Channels()); n != 0 {
		t.Fatalf("%d channels created for an unauthenticated INVITE", n)
	}
}

func TestTrunkUnknownNumber(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	// 1002 exists in context default, but the trunk runs in blueivr only.
	for _, dest := range []string{"9999", "1002"} {
		c, err := p.Invite(ctx, x.trunk(), "5550001", dest)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := c.WaitFinal(ctx); code != 404 {
			t.Fatalf("%s: final %d, want 404", dest, code)
		}
	}
	x.waitIdle(t, ctx)
	for _, ch := range x.inboundLegs() {
		if ch.Var("context") != "blueivr" || ch.Cause() != call.NoRouteDestination {
			t.Errorf("trunk channel context %q cause %s", ch.Var("context"), ch.Cause())
		}
	}
}

func TestManyProvisionalsThenAnswer(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	// 50 × 180 over 5 s: far beyond sipgo WaitAnswer's 10-response limit.
	p2.SetPlan(testphone.Plan{Rings: 50, RingEvery: 100 * time.Millisecond, Status: 200})
	ctx := testCtx(t, 20*time.Second)
	c1, in := dialed(t, ctx, p1, p2)
	talking(t, ctx, c1, in)
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestAnswerRacingCancelIsAckedAndByed(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.Plan{Rings: 1, AnswerOnCancel: true})
	ctx := testCtx(t, 10*time.Second)
	c1, in := ringing(t, ctx, p1, p2)
	if err := c1.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatalf("racing 200 not ACKed: %v", err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if in.Bye() == nil {
		t.Fatal("racing 200 not followed by BYE")
	}
	x.waitIdle(t, ctx)
}

// TestTCPPhoneIsCalledOverItsConnection: a TCP callee is reached over the
// connection it registered on, whether the caller is on UDP or TCP too.
func TestTCPPhoneIsCalledOverItsConnection(t *testing.T) {
	for _, callerTCP := range []bool{false, true} {
		name := "caller UDP"
		if callerTCP {
			name = "caller TCP"
		}
		t.Run(name, func(t *testing.T) {
			x := newTestPBX(t)
			var opts []testphone.Option
			if callerTCP {
				opts = append(opts, testphone.WithTCP())
			}
			p1 := x.phone(t, "1001", opts...)
			p2 := x.phone(t, "1002", testphone.WithTCP())
			p2.SetPlan(testphone.AutoAnswer)
			ctx := testCtx(t, 10*time.Second)
			c1, in := dialed(t, ctx, p1, p2)
			talking(t, ctx, c1, in)
			if err := in.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c1.WaitEnded(ctx); err != nil {
				t.Fatal(err)
			}
			x.waitIdle(t, ctx)
		})
	}
}

func TestTrunkCallerIDIsSanitizedAndInviteSmall(t *testing.T) {
	x := newTestPBX(t)
	p2 := x.phone(t, "1002")
	p2.SetPlan(testphone.Plan{Status: 486})
	trunk := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	long := strings.Repeat("Very Long Name ", 40)
	c, err := trunk.Invite(ctx, x.trunk(), "5550001", "2000", testphone.WithFromName(long))
	if err != nil {
		t.Fatal(err)
	}
	in, err := p2.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 486 {
		t.Fatalf("final %d", code)
	}
	req := in.Request()
	if n := len(req.String()); n > maxUDPMessage {
		t.Errorf("agent INVITE is %d bytes", n)
	}
	from := req.From()
	if from.Address.User != "5550001" || len(from.DisplayName) > maxCallerName || !strings.HasPrefix(from.DisplayName, "Very Long Name") {
		t.Errorf("From %q <%s>", from.DisplayName, from.Address.User)
	}
}

func TestRequire100relRejected(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	c, err := p.Invite(ctx, x.trunk(), "5550001", "2000", testphone.WithHeader("Require", "100rel"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 420 {
		t.Fatalf("final %d, want 420", code)
	}
	if h := c.Final().GetHeader("Unsupported"); h == nil || h.Value() != "100rel" {
		t.Errorf("Unsupported %v", h)
	}
}

func TestOutOfDialogRequests(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	host, port := "127.0.0.1", int(x.stack.Addr("blueivr").Port())
	newReq := func(m sipmsg.RequestMethod) *sipmsg.Request {
		u := sipmsg.Uri{Scheme: "sip", User: "2000", Host: host, Port: port}
		r := sipmsg.NewRequest(m, u)
		from := &sipmsg.FromHeader{Address: sipmsg.Uri{Scheme: "sip", User: "x", Host: host}, Params: sipmsg.NewParams()}
		from.Params.Add("tag", "abc")
		r.AppendHeader(from)
		to := &sipmsg.ToHeader{Address: u, Params: sipmsg.NewParams()}
		if m == sipmsg.BYE || m == sipmsg.INFO {
			to.Params.Add("tag", "nosuchdialog")
		}
		r.AppendHeader(to)
		return r
	}
	cases := []struct {
		m    sipmsg.RequestMethod
		want int
	}{
		{sipmsg.OPTIONS, 200},
		{sipmsg.BYE, 481},
		{sipmsg.INFO, 481},
		{sipmsg.SUBSCRIBE, 405},
		{sipmsg.REGISTER, 403}, // the trunk profile takes no registrations
	}
	for _, c := range cases {
		res, err := p.Do(ctx, newReq(c.m))
		if err != nil {
			t.Fatalf("%s: %v", c.m, err)
		}
		if res.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.m, res.StatusCode, c.want)
		}
	}
}

func TestHoldReinviteAndInfoDTMF(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	a := x.inboundLeg(t, 0)
	digits := make(chan rune, 4)
	remove := a.Media().OnDigit(func(d rune) { digits <- d })
	defer remove()
	if err := c1.SendInfoDTMF(ctx, '7'); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-digits:
		if d != '7' {
			t.Fatalf("digit %q", d)
		}
	case <-ctx.Done():
		t.Fatal("INFO digit not delivered")
	}
	hold := strings.Replace(string(c1.Audio.SDP()), "a=sendrecv", "a=sendonly", 1)
	res, err := c1.Reinvite(ctx, []byte(hold))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=recvonly") {
		t.Fatalf("hold answered %d:\n%s", res.StatusCode, res.Body())
	}
	res, err = c1.Reinvite(ctx, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("resume: %v %v", res, err)
	}
	bad := strings.NewReplacer("RTP/AVP 0 101", "RTP/AVP 99", "a=rtpmap:0 PCMU/8000", "a=rtpmap:99 opus/48000").Replace(string(c1.Audio.SDP()))
	res, err = c1.Reinvite(ctx, []byte(bad))
	if err != nil || res.StatusCode != 488 {
		t.Fatalf("unusable offer: %v %v", res, err)
	}
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAnsweredLegReleasesInvite: once the caller ACKed our 200, the
// answered leg drops the INVITE request and its server transaction (kept
// otherwise for the whole call, a queued caller's minutes), and the call
// still ends with a BYE either way.
func TestAnsweredLegReleasesInvite(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	l, ok := x.inboundLeg(t, 0).Signalling().(*uasLeg)
	if !ok {
		t.Fatalf("inbound leg is %T", x.inboundLeg(t, 0).Signalling())
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.inv == nil && l.tx == nil
	}, "the answered leg to release its INVITE and transaction")
	if _, err := l.answerInvite(response{code: 486, reason: "Busy Here"}); !errors.Is(err, errInviteReleased) {
		t.Fatalf("answering a released INVITE: %v", err)
	}
	// The PBX's side hangs up: the caller gets a BYE.
	x.inboundLeg(t, 0).Hangup(call.NormalClearing)
	if err := c1.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}
