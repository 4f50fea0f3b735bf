package sip

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/testphone"
	"ccpbx/registrar"
)

func TestPathOf(t *testing.T) {
	req := func(paths ...string) *sipmsg.Request {
		r := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: "127.0.0.1"})
		for _, p := range paths {
			r.AppendHeader(sipmsg.NewHeader("Path", p))
		}
		return r
	}
	ok := []struct{ in []string }{
		{nil},
		{[]string{"<sip:127.0.0.2:5060;lr;received=sip:127.0.0.3:5062>"}},
		{[]string{"<sip:127.0.0.2;lr>, <sip:edge.example.com;lr>", "<sip:10.0.0.1:5070;transport=tcp;lr>"}},
	}
	want := []string{
		"",
		"<sip:127.0.0.2:5060;lr;received=sip:127.0.0.3:5062>",
		"<sip:127.0.0.2;lr>, <sip:edge.example.com;lr>, <sip:10.0.0.1:5070;transport=tcp;lr>",
	}
	for i, c := range ok {
		got, err := pathOf(req(c.in...))
		if err != nil || got != want[i] {
			t.Errorf("pathOf(%q) = %q, %v; want %q", c.in, got, err, want[i])
		}
	}
	bad := [][]string{
		{"<tel:+15551234>"},
		{"<sip:127.0.0.2;lr"},
		{"<sip:;lr>"},
		{strings.Repeat("<sip:127.0.0.2;lr>, ", maxPathHops) + "<sip:127.0.0.9;lr>"},
		{"<sip:" + strings.Repeat("a", registrar.MaxPathLen) + ";lr>"},
	}
	for _, in := range bad {
		if got, err := pathOf(req(in...)); err == nil {
			t.Errorf("pathOf(%.60q) = %q, want an error", in, got)
		}
	}
}

func TestPathRoute(t *testing.T) {
	route, dest, tp, ok := pathRoute("<sip:127.0.0.2:5070;lr;received=sip:127.0.0.3:5062>, <sip:edge.example.com;lr>", "tcp")
	if !ok || dest != "127.0.0.2:5070" || tp != "tcp" || len(route) != 2 ||
		route[0].String() != "sip:127.0.0.2:5070;lr;received=sip:127.0.0.3:5062" || route[1].Host != "edge.example.com" {
		t.Fatalf("pathRoute = %v %q %q %v", route, dest, tp, ok)
	}
	if _, dest, tp, ok := pathRoute("<sip:127.0.0.2;transport=udp;lr>", "tcp"); !ok || dest != "127.0.0.2:5060" || tp != "udp" {
		t.Fatalf("default port, transport parameter: %q %q %v", dest, tp, ok)
	}
	for _, p := range []string{"", "<sip:proxy.example.com;lr>", "<bad"} {
		if _, _, _, ok := pathRoute(p, "udp"); ok {
			t.Errorf("pathRoute(%q) usable", p)
		}
	}
}

// A binding registered through a proxy is called through it: the INVITE
// goes to the Path's first hop with the Path as its Route set and the
// Contact as Request-URI, and the listing marks the Contact as FreeSWITCH
// does; a sofia/ dial string made of that listing takes the same way.
func TestCallAlongPath(t *testing.T) {
	x := newTestPBX(t)
	ctx := testCtx(t, 20*time.Second)
	proxy := testphone.New(t)
	hop := "sip:" + proxy.Addr().String() + ";lr;received=sip:127.0.0.1:1"
	path := "<" + hop + ">, <sip:127.0.0.1:2;lr>"
	contact := "sip:1002@192.0.2.99:5060;ob" // unreachable: only the proxy knows the way
	res := x.stack.reg.Register(registrar.Registration{
		User: "1002", Realm: "127.0.0.1", CallID: "path-test", CSeq: 1, Transport: "udp",
		Source: netip.MustParseAddrPort("127.0.0.1:3"), Path: path,
		Contacts: []registrar.Contact{{URI: contact, Scheme: "sip", User: "1002", Host: "192.0.2.99", Port: 5060}},
	})
	if res.Code != 200 {
		t.Fatalf("register: %+v", res)
	}
	bs := x.stack.Registrations().Bindings()
	wantListed := contact + ";fs_path=" + urlEncode(path)
	if len(bs) != 1 || bs[0].Contact != wantListed {
		t.Fatalf("listed %+v, want Contact %s", bs, wantListed)
	}

	trunk := testphone.New(t)
	c, err := trunk.Invite(ctx, x.trunk(), "5551234", "2000")
	if err != nil {
		t.Fatal(err)
	}
	in, err := proxy.Incoming(ctx)
	if err != nil {
		t.Fatalf("the Path's first hop did not get the INVITE: %v", err)
	}
	inv := in.Request()
	var routes []string
	for _, h := range inv.GetHeaders("Route") {
		routes = append(routes, h.Value())
	}
	if got := strings.Join(routes, ", "); got != path {
		t.Errorf("Route %q, want the Path %q", got, path)
	}
	if inv.Recipient.String() != contact {
		t.Errorf("Request-URI %s, want the Contact %s", inv.Recipient.String(), contact)
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

	var u sipmsg.Uri
	if err := sipmsg.ParseUri(wantListed, &u); err != nil {
		t.Fatal(err)
	}
	route, dest, tp, clean, ok := fsPathRoute(u, "udp")
	if !ok || dest != proxy.Addr().String() || tp != "udp" || len(route) != 2 || clean.String() != contact {
		t.Fatalf("fsPathRoute = %v %q %q %s %v", route, dest, tp, clean.String(), ok)
	}
}

func TestPathSupport(t *testing.T) {
	req := func(hdrs ...string) *sipmsg.Request {
		r := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Scheme: "sip", Host: "127.0.0.1"})
		for i := 0; i+1 < len(hdrs); i += 2 {
			r.AppendHeader(sipmsg.NewHeader(hdrs[i], hdrs[i+1]))
		}
		return r
	}
	if supportsPath(req()) || supportsPath(req("Supported", "timer, replaces")) {
		t.Error("Path support without saying so")
	}
	if !supportsPath(req("Supported", "timer, Path")) || !supportsPath(req("Require", "path")) {
		t.Error("Path support not seen")
	}
	if got := withoutPath(unsupportedRequired(req("Require", "path, 100rel"))); len(got) != 1 || got[0] != "100rel" {
		t.Errorf("unsupported tags %q, want [100rel]", got)
	}
}
