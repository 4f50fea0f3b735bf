package sip

import (
	"errors"
	"fmt"
	"net"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// maxUDPMessage is sipgo's limit on UDP writes (UDPMTUSize-200; larger
// writes fail, there is no automatic switch to TCP). RFC 3261 §18.1.1 asks
// it of requests; responses travel the request's transport whatever their
// size (§18.2.2), so reply sends a larger one itself, fragmented by IP, up
// to maxUDPResponse.
const (
	maxUDPMessage  = 1300
	maxUDPResponse = 65000
)

// errTooLarge: a message would not fit a UDP datagram.
var errTooLarge = errors.New("message too large for UDP")

// response is one answer to a request, before the rules of reply apply.
type response struct {
	code    int
	reason  string
	headers []sipmsg.Header
	// contact is our Contact on dialog-forming answers.
	contact *sipmsg.ContactHeader
	// body is SDP, when set.
	body []byte
	// toTag is the dialog's local tag on answers to a dialog-forming
	// INVITE; "" leaves the tag sipgo makes up (none on 100).
	toTag string
	// stateless, when set, sends the answer on this UDP socket with no
	// transaction (tx is nil): overload shedding in the read loop.
	stateless net.PacketConn
}

// reply is the one way ccpbx answers a request: REGISTER's 401/423/200,
// every answer to an INVITE, in-dialog and out-of-dialog answers all are
// built and sent here, so they follow the same rules:
//   - over UDP the response goes to the packet's source address, whatever
//     Via says (FreeSWITCH's NDLB-force-rport: phones behind NAT often
//     omit ;rport); over TCP it goes back on the connection the request
//     came in on;
//   - the To tag is the dialog's once there is one;
//   - it carries our User-Agent, as sofia's responses do;
//   - it is SIP/2.0 whatever version the request claimed (a SIP/7.0
//     request gets "SIP/2.0 505");
//   - over UDP a response larger than sipgo sends (a long request's 4xx
//     echoes its long Via, From, To, Call-ID) goes out fragmented, written
//     on the profile's socket directly; sipgo's transaction then holds no
//     copy to retransmit, and a retransmitted request is answered anew.
//     One over maxUDPResponse is not sent and the error says so;
//   - while overloaded, a new INVITE or REGISTER over UDP is answered 503
//     from the read loop with no transaction (shedEarly): response.stateless.
//
// Each response sent is counted (Options.Metrics).
//
// It returns the response sent, for retransmission.
func (s *Stack) reply(tx sipmsg.ServerTransaction, req *sipmsg.Request, r response) (*sipmsg.Response, error) {
	res, err := s.send(tx, req, r)
	if err == nil {
		s.countResponse(tx, r.stateless, req, r.code)
	}
	return res, err
}

// send builds and sends r for reply.
func (s *Stack) send(tx sipmsg.ServerTransaction, req *sipmsg.Request, r response) (*sipmsg.Response, error) {
	res := sipmsg.NewResponseFromRequest(req, r.code, r.reason, nil)
	res.SipVersion = "SIP/2.0"
	if r.toTag != "" {
		if to := res.To(); to != nil {
			to.Params.Remove("tag")
			to.Params.Add("tag", r.toTag)
		}
	}
	if r.contact != nil {
		res.AppendHeader(r.contact)
	}
	for _, h := range r.headers {
		res.AppendHeader(h)
	}
	res.AppendHeader(sipmsg.NewHeader("User-Agent", s.agent))
	if len(r.body) > 0 {
		ct := sipmsg.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	res.SetBody(r.body)
	reliable := sipmsg.IsReliable(req.Transport())
	if src := req.Source(); src != "" && !reliable {
		res.SetDestination(src)
	}
	if r.stateless != nil {
		dst, err := net.ResolveUDPAddr("udp", res.Destination())
		if err != nil {
			return res, err
		}
		_, err = r.stateless.WriteTo([]byte(res.String()), dst)
		return res, err
	}
	if !reliable {
		if n := len(res.String()); n > maxUDPMessage {
			if err := sendLargeUDP(tx, res, n); err != nil {
				s.log.Warn("response not sent", "code", r.code, "size", n,
					"to", req.Source(), "call_id", callIDOf(req), "err", err)
				return res, fmt.Errorf("%d %s of %d bytes: %w", r.code, r.reason, n, err)
			}
			return res, nil
		}
	}
	return res, tx.Respond(res)
}

// sendLargeUDP writes a response sipgo would refuse as too large on the
// UDP socket the request came in on.
func sendLargeUDP(tx sipmsg.ServerTransaction, res *sipmsg.Response, n int) error {
	if n > maxUDPResponse {
		return errTooLarge
	}
	stx, ok := tx.(*sipmsg.ServerTx)
	if !ok {
		return errTooLarge
	}
	uc, ok := stx.Connection().(*sipmsg.UDPConnection)
	if !ok {
		return errTooLarge
	}
	dst, err := net.ResolveUDPAddr("udp", res.Destination())
	if err != nil {
		return err
	}
	_, err = uc.WriteTo([]byte(res.String()), dst)
	return err
}

// respond sends a simple answer; a failure to send is sipgo's to log.
func (s *Stack) respond(tx sipmsg.ServerTransaction, req *sipmsg.Request, code int, reason string, hdrs ...sipmsg.Header) {
	_, _ = s.reply(tx, req, response{code: code, reason: reason, headers: hdrs})
}

func callIDOf(req *sipmsg.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}

// unsupportedRequired lists the Require option tags we do not support, for
// REGISTER and INVITE alike. Session timers ("timer") are fine since we
// answer refresh re-INVITEs and UPDATEs anyway; reliable provisionals
// (100rel) and anything else a peer could insist on are not.
//
// The tags are echoed in the 420's Unsupported header, so at most eight
// are kept, each cut to 32 characters of RFC 3261 token characters: a
// peer's header must not grow or shape our reply.
func unsupportedRequired(req *sipmsg.Request) []string {
	var tags []string
	for _, h := range req.GetHeaders("Require") {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "timer") && len(tags) < 8 {
				tags = append(tags, tokenOnly(t, 32))
			}
		}
	}
	return tags
}

// badExtension answers 420 naming the unsupported tags.
func (s *Stack) badExtension(tx sipmsg.ServerTransaction, req *sipmsg.Request, tags []string) {
	s.respond(tx, req, 420, "Bad Extension", sipmsg.NewHeader("Unsupported", strings.Join(tags, ", ")))
}

// tokenOnly keeps the RFC 3261 token characters of s, at most max of them
// ("?" when none are left).
func tokenOnly(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "?"
	}
	return string(b)
}
