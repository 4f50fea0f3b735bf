package sip

import (
	"net"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/registrar"
)

// Calling out: whom and where the PBX dials (user/ with several
// registrations forked, sofia/ endpoints, NATed and TCP phones, trunks with
// Record-Route and digest challenges).

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

func TestTCPPhoneWithLostConnectionIsCalledAtItsContact(t *testing.T) {
	x := newTestPBX(t)
	p := testphone.New(t, testphone.WithTCP())
	p.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	// A source port nobody listens on stands for the registration's
	// connection, closed since.
	ln := pbxtest.ListenTCP(t)
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
