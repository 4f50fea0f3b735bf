package sip

import (
	"context"
	"net/netip"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
	"ccpbx/internal/testphone"
	"ccpbx/registrar"
)

func TestRouteBinding(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.7:40312")
	cases := []struct {
		name, contact, transport, mode string
		want                           regRoute
	}{
		{"public contact, other port (phone listens on 5060)", "sip:1001@203.0.113.7:5060", "udp", "", regRoute{dest: "203.0.113.7:5060"}},
		{"public contact, other host (third-party registration)", "sip:1001@198.51.100.9", "udp", "auto", regRoute{dest: "198.51.100.9:5060"}},
		{"private contact behind NAT", "sip:1001@192.168.1.20:5060;ob", "udp", "", regRoute{dest: src.String(), nat: true}},
		{"CGNAT contact", "sip:1001@100.64.3.4:5060", "udp", "", regRoute{dest: src.String(), nat: true}},
		{"link-local contact", "sip:1001@169.254.1.1:5060", "udp", "", regRoute{dest: src.String(), nat: true}},
		{"registered over TCP", "sip:1001@203.0.113.7:5060;transport=tcp", "tcp", "", regRoute{dest: src.String(), nat: true}},
		{"contact is a name", "sip:1001@phone.example.com", "udp", "", regRoute{dest: src.String(), nat: true}},
		{"name-addr form", `"Bob" <sip:1001@198.51.100.9:5062>;expires=60`, "udp", "", regRoute{dest: "198.51.100.9:5062"}},
		{"forced source", "sip:1001@198.51.100.9", "udp", config.RegisterTargetSource, regRoute{dest: src.String(), nat: true}},
		{"forced contact, private", "sip:1001@192.168.1.20:5060", "udp", config.RegisterTargetContact, regRoute{dest: "192.168.1.20:5060"}},
		{"forced contact over TCP", "sip:1001@198.51.100.9:5060", "tcp", config.RegisterTargetContact, regRoute{dest: "198.51.100.9:5060"}},
	}
	for _, c := range cases {
		b := registrar.Binding{User: "1001", Contact: c.contact, Source: src, Transport: c.transport}
		if got := routeBinding(b, c.mode); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	// A private contact that is the source itself (a phone on the LAN).
	lan := registrar.Binding{Contact: "sip:1001@192.168.150.1:55232;ob", Source: netip.MustParseAddrPort("192.168.150.1:55232"), Transport: "udp"}
	if got := routeBinding(lan, ""); got != (regRoute{dest: "192.168.150.1:55232"}) {
		t.Errorf("LAN phone: %+v", got)
	}
}

// natContact writes FreeSWITCH's marks, as its `show registrations` of a
// NATed phone reads: sip:1002@192.168.219.103:62244;ob;fs_nat=yes;
// fs_path=sip%3A1002%40122.153.196.159%3A62244%3Bob.
func TestNatContactIsFreeSWITCHs(t *testing.T) {
	b := registrar.Binding{Contact: "sip:1002@192.168.219.103:62244;ob", Source: netip.MustParseAddrPort("122.153.196.159:62244")}
	want := "sip:1002@192.168.219.103:62244;ob;fs_nat=yes;fs_path=sip%3A1002%40122.153.196.159%3A62244%3Bob"
	if got := natContact(b); got != want {
		t.Fatalf("natContact\n got %s\nwant %s", got, want)
	}
	// And a dial string made of it goes to the path, without the marks.
	var u sipmsg.Uri
	if err := sipmsg.ParseUri(want, &u); err != nil {
		t.Fatal(err)
	}
	dest, clean, ok := fsPath(u)
	if !ok || dest.String() != "122.153.196.159:62244" || clean.String() != "sip:1002@192.168.219.103:62244;ob" {
		t.Fatalf("fsPath = %v %s %v", dest, clean.String(), ok)
	}
}

// regCase registers 1002 from one phone (the source) naming contact, then
// a trunk call to 2000 (bridged to user/1002) must ring want.
func regTargetCall(t *testing.T, x *testPBX, ctx context.Context, src *testphone.Phone, contact sipmsg.Uri, want *testphone.Phone) {
	t.Helper()
	res, err := src.RegisterContact(ctx, x.internal(), "1002", "1234", contact, time.Hour)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	trunk := testphone.New(t)
	c, err := trunk.Invite(ctx, x.trunk(), "5551234", "2000")
	if err != nil {
		t.Fatal(err)
	}
	in, err := want.Incoming(ctx)
	if err != nil {
		t.Fatalf("the expected phone did not ring: %v", err)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	talking(t, ctx, c, in)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

// The registration target over SIP: which phone rings when the REGISTER
// came from one phone and names another (or an unreachable private
// address) as Contact.
func TestRegistrationTarget(t *testing.T) {
	t.Run("auto: public contact on this host is used", func(t *testing.T) {
		x := newTestPBX(t)
		ctx := testCtx(t, 20*time.Second)
		src, listener := testphone.New(t), testphone.New(t)
		contact := listener.ContactURI("1002")
		regTargetCall(t, x, ctx, src, contact, listener)
		if bs := x.stack.Registrations().Bindings(); len(bs) != 1 || bs[0].Contact != contact.String() {
			t.Errorf("listed %+v, want the plain Contact", bs)
		}
	})
	t.Run("auto: private contact elsewhere means NAT, the source is used", func(t *testing.T) {
		x := newTestPBX(t)
		ctx := testCtx(t, 20*time.Second)
		src := testphone.New(t)
		private := sipmsg.Uri{Scheme: "sip", User: "1002", Host: "10.11.12.13", Port: 5060}
		regTargetCall(t, x, ctx, src, private, src)
		bs := x.stack.Registrations().Bindings()
		want := "sip:1002@10.11.12.13:5060;fs_nat=yes;fs_path=sip%3A1002%40" + urlEncode(src.Addr().String())
		if len(bs) != 1 || bs[0].Contact != want {
			t.Errorf("listed %+v, want Contact %s", bs, want)
		}
	})
	t.Run("auto: registered over TCP, the connection is used", func(t *testing.T) {
		x := newTestPBX(t)
		ctx := testCtx(t, 20*time.Second)
		src, listener := testphone.New(t, testphone.WithTCP()), testphone.New(t)
		regTargetCall(t, x, ctx, src, listener.ContactURI("1002"), src)
	})
	t.Run("register_target=source", func(t *testing.T) {
		x := newTestPBXProfiles(t, func(p *config.Profile) { p.RegisterTarget = config.RegisterTargetSource })
		ctx := testCtx(t, 20*time.Second)
		src, listener := testphone.New(t), testphone.New(t)
		regTargetCall(t, x, ctx, src, listener.ContactURI("1002"), src)
	})
	t.Run("register_target=contact", func(t *testing.T) {
		x := newTestPBXProfiles(t, func(p *config.Profile) { p.RegisterTarget = config.RegisterTargetContact })
		ctx := testCtx(t, 20*time.Second)
		src, listener := testphone.New(t, testphone.WithTCP()), testphone.New(t)
		regTargetCall(t, x, ctx, src, listener.ContactURI("1002"), listener)
	})
}
