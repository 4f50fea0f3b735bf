package sip

import (
	"net"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Metrics is what the stack reports to the switch's counters (api.Metrics
// satisfies it; sip does not import api). Each call is a counter bump:
// the strings passed are the profile's name and the request's method as
// they are, nothing is built per message.
type Metrics interface {
	// SIPRequest counts a request received (inbound) or sent.
	SIPRequest(profile, method string, inbound bool)
	// SIPResponse counts a response received (inbound) or sent, by its
	// request's method and its status code.
	SIPResponse(profile, method string, code int, inbound bool)
	// AuthFailure counts a wrong password on a listener ("sip").
	AuthFailure(listener string)
	// Ban counts a source banned on a listener ("sip").
	Ban(listener string)
}

// authListener names SIP in the auth metrics, as the ban list does.
const authListener = "sip"

// countRequest counts a request received on p.
func (p *profile) countRequest(req *sipmsg.Request) {
	if m := p.stack.metrics; m != nil {
		m.SIPRequest(p.name, string(req.Method), true)
	}
}

// countResponse counts a response sent to req on tx (or, with no
// transaction, on the UDP socket stateless).
func (s *Stack) countResponse(tx sipmsg.ServerTransaction, stateless net.PacketConn, req *sipmsg.Request, code int) {
	if s.metrics == nil {
		return
	}
	s.metrics.SIPResponse(s.profileOf(tx, stateless), string(req.Method), code, false)
}

// profileOf names the profile whose socket tx's request came in on: each
// profile has its own sipgo transport, so the transaction's connection is
// its UDP socket or a TCP/TLS connection its guard accepted. The profiles
// are few; the search compares pointers and allocates nothing.
func (s *Stack) profileOf(tx sipmsg.ServerTransaction, stateless net.PacketConn) string {
	var udp net.PacketConn
	var g *inputGuard
	if stateless != nil {
		udp = stateless
	} else if stx, ok := tx.(*sipmsg.ServerTx); ok {
		switch c := stx.Connection().(type) {
		case *sipmsg.UDPConnection:
			udp = c.PacketConn
		case *sipmsg.TCPConnection:
			if gc, ok := c.Conn.(*guardedConn); ok {
				g = gc.g
			}
		}
	}
	for _, p := range s.profiles {
		if g != nil && p.guard == g {
			return p.name
		}
		if udp != nil {
			if pc := p.udpConn.Load(); pc != nil && *pc == udp {
				return p.name
			}
		}
	}
	if len(s.profiles) == 1 {
		return s.profiles[0].name
	}
	return ""
}
