package sip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/testphone"
	"ccpbx/media"
	"ccpbx/registrar"
)

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

func TestUserWithTwoRegistrationsIsForked(t *testing.T) {
	x := newTestPBX(t)
	p1 := x.phone(t, "1001")
	desk, soft := x.phone(t, "1002"), x.phone(t, "1002")
	ctx := testCtx(t, 10*time.Second)
	c1, err := p1.Dial(ctx, "1002")
	if err != nil {
		t.Fatal(err)
	}
	inDesk, err := desk.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inSoft, err := soft.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := inSoft.Answer(); err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if err := inDesk.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if !inDesk.Cancelled() {
		t.Fatal("losing phone not cancelled")
	}
	exchangeAudio(t, ctx, c1, inSoft)
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := inSoft.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestSofiaEndpointOriginate(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	// Two rings apart, so the first 180 is surely handled before the 200
	// (sipgo hands each response to its own goroutine).
	p.SetPlan(testphone.Plan{Rings: 2, RingEvery: 50 * time.Millisecond, Status: 200})
	ctx := testCtx(t, 10*time.Second)
	rang := make(chan struct{}, 8)
	leg, err := x.core.Originate(ctx, "{origination_caller_id_number=5550100,origination_caller_id_name='Queue 3000'}sofia/internal/agent@"+p.Addr().String(), call.OriginateOptions{
		OnRing: func(*call.Channel, bool) { rang <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := p.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-rang:
	default:
		t.Error("OnRing not called for the 180")
	}
	from := in.Request().From()
	if from.Address.User != "5550100" || from.DisplayName != "Queue 3000" {
		t.Errorf("From %q <%s>", from.DisplayName, from.Address.User)
	}
	if via := in.Request().Via(); via.Port != int(x.stack.Addr("internal").Port()) {
		t.Errorf("INVITE Via port %d, want the internal profile's", via.Port)
	}
	if src := in.Request().Source(); src != x.internal() {
		t.Errorf("INVITE came from %s, want the internal profile's socket %s", src, x.internal())
	}
	if !leg.Answered() || leg.Direction() != call.Outbound {
		t.Fatalf("leg answered=%v direction=%s", leg.Answered(), leg.Direction())
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	leg.Hangup(call.NormalClearing)
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if in.Bye() == nil {
		t.Fatal("no BYE")
	}
	for _, bad := range []string{"sofia/nosuch/a@127.0.0.1", "sofia/internal/a@host.invalid", "sofia/internal"} {
		if _, err := x.core.Originate(ctx, bad, call.OriginateOptions{}); err == nil {
			t.Errorf("%s: originate succeeded", bad)
		}
	}
}

func TestCloseHangsUpLiveCalls(t *testing.T) {
	x := newTestPBX(t)
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	x.stack.Close()
	if err := c1.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if c1.Bye() == nil || in.Bye() == nil {
		t.Fatal("a phone got no BYE")
	}
	x.waitIdle(t, ctx)
}

func TestMediaTimeoutHangsUp(t *testing.T) {
	x := newTestPBX(t, func(c *media.Config) { c.MediaTimeout = 500 * time.Millisecond })
	c1, in := answered(t, x)
	ctx := testCtx(t, 10*time.Second)
	// The phones stop sending after exchangeAudio; the PBX must notice.
	if err := c1.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
	// Whichever leg noticed first is hung up with MEDIA_TIMEOUT; its
	// bridge peer follows with an ordinary clearing.
	reasons := ""
	for _, c := range []*testphone.Call{c1, in} {
		if b := c.Bye(); b != nil {
			if r := b.GetHeader("Reason"); r != nil {
				reasons += r.Value() + " "
			}
		}
	}
	if !strings.Contains(reasons, "MEDIA_TIMEOUT") {
		t.Errorf("no BYE says MEDIA_TIMEOUT: %s", reasons)
	}
}

func TestAuthorizeAnswersChallenge(t *testing.T) {
	inv := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{Scheme: "sip", User: "3000", Host: "198.51.100.7"})
	v := &sipmsg.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5080, Params: sipmsg.NewParams()}
	v.Params.Add("branch", "z9hG4bKfirst")
	inv.AppendHeader(v)
	inv.AppendHeader(&sipmsg.CSeqHeader{SeqNo: 7, MethodName: sipmsg.INVITE})
	res := sipmsg.NewResponse(407, "Proxy Authentication Required")
	chal := digest.Challenge{Realm: "carrier", Nonce: "abc123", Algorithm: "MD5", QOP: []string{"auth"}}
	res.AppendHeader(sipmsg.NewHeader("Proxy-Authenticate", chal.String()))
	next, err := authorize(inv, res, "trunkuser", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if next.CSeq().SeqNo != 8 {
		t.Errorf("CSeq %d", next.CSeq().SeqNo)
	}
	if b, _ := next.Via().Params.Get("branch"); b == "z9hG4bKfirst" {
		t.Error("retry reuses the branch")
	}
	h := next.GetHeader("Proxy-Authorization")
	if h == nil {
		t.Fatal("no Proxy-Authorization")
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		t.Fatal(err)
	}
	want, err := digest.Digest(&chal, digest.Options{Method: "INVITE", URI: cred.URI, Username: "trunkuser", Password: "s3cret", Cnonce: cred.Cnonce, Count: cred.Nc})
	if err != nil {
		t.Fatal(err)
	}
	if cred.Response != want.Response || cred.Username != "trunkuser" || cred.URI != "sip:3000@198.51.100.7" {
		t.Errorf("credentials %+v", cred)
	}
	if _, err := authorize(inv, sipmsg.NewResponse(401, "Unauthorized"), "u", "p"); err == nil {
		t.Error("401 without challenge accepted")
	}
}

func TestCauseFromReason(t *testing.T) {
	cases := map[string]call.Cause{
		`Q.850;cause=17;text="USER_BUSY"`: call.UserBusy,
		`q.850 ; cause=16`:                call.NormalClearing,
		`SIP;cause=200;text="elsewhere"`:  call.CauseNone,
		`Q.850;cause=abc`:                 call.NormalClearing,
	}
	for v, want := range cases {
		req := sipmsg.NewRequest(sipmsg.BYE, sipmsg.Uri{Scheme: "sip", Host: "x"})
		req.AppendHeader(sipmsg.NewHeader("Reason", v))
		got, _ := causeFromReason(req)
		if got != want {
			t.Errorf("%q → %s, want %s", v, got, want)
		}
	}
}

func FuzzCauseFromReason(f *testing.F) {
	f.Add(`Q.850;cause=17;text="USER_BUSY"`)
	f.Add(`Q.850;cause=;;=`)
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\r\n") {
			return
		}
		req := sipmsg.NewRequest(sipmsg.BYE, sipmsg.Uri{Scheme: "sip", Host: "x"})
		req.AppendHeader(sipmsg.NewHeader("Reason", v))
		if c, ok := causeFromReason(req); ok && c.Q850() == 0 && c != call.PickedOff {
			t.Fatalf("%q gave cause %q without a Q.850 code", v, c)
		}
	})
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

func TestRecordRouteOfTrunkIsHonoured(t *testing.T) {
	x := newTestPBX(t)
	p2 := x.phone(t, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	trunk := testphone.New(t)
	ctx := testCtx(t, 10*time.Second)
	rr := "<sip:" + trunk.Addr().String() + ";lr>"
	c, err := trunk.Invite(ctx, x.trunk(), "5550001", "2000", testphone.WithHeader("Record-Route", rr))
	if err != nil {
		t.Fatal(err)
	}
	in, err := p2.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	bye := c.Bye()
	if bye == nil {
		t.Fatal("trunk got no BYE")
	}
	if r := bye.GetHeader("Route"); r == nil || !strings.Contains(r.Value(), trunk.Addr().String()) {
		t.Errorf("BYE Route %v, want the trunk's Record-Route", r)
	}
	if got := x.inboundLeg(t, 0).Var("caller_id_number"); got != "5550001" {
		t.Errorf("caller_id_number %q", got)
	}
}

func TestPromptIsPlayedThenHungUp(t *testing.T) {
	x := newTestPBX(t)
	p1 := x.phone(t, "1001")
	ctx := testCtx(t, 15*time.Second)
	c, err := p1.Dial(ctx, "300")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if err := c.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Bye() == nil {
		t.Fatal("PBX did not hang up after the prompt")
	}
	if n := c.Audio.Packets(); n < 10 {
		t.Fatalf("heard %d RTP packets of the prompt", n)
	}
	x.waitIdle(t, ctx)
}

func TestCalleeOfferPrefersCallersCodec(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p1.UsePCMA()
	p2.UsePCMA()
	p2.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	c1, in := dialed(t, ctx, p1, p2)
	var mline string
	for _, l := range strings.Split(string(in.Request().Body()), "\n") {
		if strings.HasPrefix(l, "m=audio ") {
			mline = strings.TrimSpace(l)
		}
	}
	if f := strings.Fields(mline); len(f) < 4 || f[3] != "8" {
		t.Errorf("agent offer %q does not lead with PCMA", mline)
	}
	talking(t, ctx, c1, in)
	if got := x.inboundLeg(t, 0).Media().Codec(); got != "PCMA" {
		t.Errorf("caller codec %q", got)
	}
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
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

func TestNATedPhoneIsCalledAtItsSource(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t)
	p.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	// The phone's Contact names a private address nobody can reach; the
	// PBX must use it as Request-URI but send to where the REGISTER came
	// from.
	b := registrar.Binding{User: "1002", Contact: "sip:1002@192.168.77.9:5060;ob", Source: p.Addr(), Transport: "udp", Profile: "internal"}
	leg, err := x.stack.dialBinding(ctx, "1002", b, map[string]string{}, &call.OriginateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := p.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := in.Request().Recipient; r.Host != "192.168.77.9" || r.Port != 5060 {
		t.Errorf("Request-URI %s, want the Contact", r.String())
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	leg.Hangup(call.NormalClearing)
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
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
	for c1.Retransmitted200() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the PBX never retransmitted its 200 after the lost ACK")
		case <-time.After(20 * time.Millisecond):
		}
	}
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
	p := testphone.New(t)
	p.SetPlan(testphone.Plan{}) // no ringing, no answer: only sipgo's own 100 after 200 ms
	ctx := testCtx(t, 10*time.Second)
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
	cancel() // before the phone sent anything: the CANCEL has to wait
	if err := <-done; err == nil {
		t.Fatal("originate succeeded")
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if !in.Cancelled() {
		t.Fatal("phone never got the CANCEL")
	}
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
				fill := byte(0x30)
				for c.Audio.Received(fill) == 0 {
					if err := c.Audio.Send(1, 0x40); err != nil {
						return err
					}
					select {
					case <-ctx.Done():
						return fmt.Errorf("no audio back on %s", c.Request().CallID().Value())
					case <-time.After(20 * time.Millisecond):
					}
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
			go func() {
				for !in.Ended() {
					if in.Audio.Send(1, 0x30) != nil {
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
		}
	}()
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	x.waitIdle(t, ctx)
}

func TestOfferlessInviteGetsOfferIn200AndAnswerInAck(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	c1, err := p1.Dial(ctx, "1002", testphone.WithoutSDP())
	if err != nil {
		t.Fatal(err)
	}
	in, err := p2.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if !strings.Contains(string(c1.Final().Body()), "m=audio") {
		t.Fatal("200 to an offerless INVITE carries no offer")
	}
	exchangeAudio(t, ctx, c1, in)
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestTCPPhoneWithLostConnectionIsCalledAtItsContact(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t, testphone.WithTCP())
	p.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	// A source port nobody listens on stands for the registration's
	// connection, closed since.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	contact := p.ContactURI("1002")
	b := registrar.Binding{User: "1002", Contact: contact.String(), Source: gone, Transport: "tcp", Profile: "internal"}
	leg, err := x.stack.dialBinding(ctx, "1002", b, map[string]string{}, &call.OriginateOptions{})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	in, err := p.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.WaitAcked(ctx); err != nil {
		t.Fatal(err)
	}
	leg.Hangup(call.NormalClearing)
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
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
