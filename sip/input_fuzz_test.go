package sip

import (
	"net/netip"
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
)

// FuzzInviteInput feeds arbitrary messages through everything the stack
// reads from an INVITE before the dialplan sees it: channel variables
// (caller ID), Require, Reason, INFO digits and the Contact a binding would
// store. None may panic, and no variable may carry a line break into the
// headers of another leg.
func FuzzInviteInput(f *testing.F) {
	f.Add("INVITE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\n" +
		"From: \"Alice\" <sip:1001@127.0.0.1>;tag=a\r\nTo: <sip:1002@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:1001@127.0.0.1:5062;ob>\r\nRequire: timer, 100rel\r\nReason: Q.850;cause=17\r\n" +
		"Content-Type: application/dtmf-relay\r\nContent-Length: 8\r\n\r\nSignal=5")
	f.Add("INVITE sip:%0d%0a@h SIP/2.0\r\nFrom: \"\\\"\" <sip:a%00b@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: y\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n")
	p := &profile{cfg: config.Profile{Context: "default"}, name: "internal", stack: &Stack{}}
	f.Fuzz(func(t *testing.T, raw string) {
		msg, err := sipmsg.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		req, ok := msg.(*sipmsg.Request)
		if !ok || req.From() == nil || req.CallID() == nil {
			return
		}
		vars := p.inboundVars(req, netip.MustParseAddrPort("127.0.0.1:5062"), "")
		for k, v := range vars {
			if strings.ContainsAny(v, "\r\n\x00") && k != "sip_call_id" && k != "sip_from_host" {
				t.Fatalf("%s carries a line break: %q", k, v)
			}
		}
		for _, o := range unsupportedRequired(req) {
			if strings.ContainsAny(o, "\r\n") {
				t.Fatalf("Unsupported option %q", o)
			}
		}
		_, _ = causeFromReason(req)
		_, _ = parseDTMFInfo(req)
		if c := req.Contact(); c != nil {
			var u sipmsg.Uri
			_ = sipmsg.ParseUri(c.Address.String(), &u)
		}
	})
}
