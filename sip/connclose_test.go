package sip

import (
	"strings"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/registrar"
)

// TestClosedConnectionDropsItsBindings: a binding made over a TCP or TLS
// connection goes when that connection closes, while the same user's
// binding over another connection stays.
func TestClosedConnectionDropsItsBindings(t *testing.T) {
	certFile, keyFile, client := tlsFiles(t)
	x := newTestPBXProfiles(t, func(p *config.Profile) {
		p.Transports = []string{"udp", "tcp", "tls"}
		p.TLSCertFile, p.TLSKeyFile = certFile, keyFile
	})
	tcpAddr, tlsAddr := x.stack.Addr("internal").String(), x.stack.TLSAddr("internal").String()
	for _, tc := range []struct {
		name, server string
		opt          testphone.Option
	}{{"tcp", tcpAddr, testphone.WithTCP()}, {"tls", tlsAddr, testphone.WithTLS(client)}} {
		t.Run(tc.name, func(t *testing.T) {
			gone := testphone.New(t, tc.opt)
			kept := testphone.New(t, tc.opt)
			for _, p := range []*testphone.Phone{gone, kept} {
				if res, err := p.Register(regCtx(t), tc.server, "1001", "1234", time.Hour); err != nil || res.StatusCode != 200 {
					t.Fatalf("register over %s: %v %v", tc.name, res, err)
				}
			}
			bs := x.reg.Lookup("1001")
			if len(bs) != 2 {
				t.Fatalf("bindings before close: %+v", bs)
			}
			keptContact := kept.ContactURI("1001")
			gone.Close()
			left := func() []registrar.Binding { return x.reg.Lookup("1001") }
			pbxtest.WaitFor(t, 5*time.Second, func() bool { return len(left()) == 1 },
				"binding over the closed %s connection still there", tc.name)
			b := left()[0]
			if b.Transport != tc.name || !strings.Contains(b.Contact, ":"+itoa(keptContact.Port)) {
				t.Fatalf("the surviving binding is %+v, want the other phone's (%v)", b, keptContact.String())
			}
			kept.Close()
			pbxtest.WaitFor(t, 5*time.Second, func() bool { return len(left()) == 0 },
				"second binding over %s stayed after its connection closed", tc.name)
		})
	}
}
