package sip

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/pbxtest"
)

// TestRFC4475 sends each torture message of RFC 4475 (testdata/rfc4475)
// as one datagram from a real UDP socket to the stack and checks the
// answer: the status the RFC expects, or nothing (drop) for a message that
// cannot be parsed or is a response to no request of ours. INVITEs go to
// the trunk profile (no digest: they reach the dialplan, which routes
// nothing here, so a valid one gets 404), REGISTERs to internal (digest:
// a valid one gets 401), the rest to the trunk.
func TestRFC4475(t *testing.T) {
	x := newTestPBX(t)
	const drop = 0
	for _, tc := range []struct {
		name    string
		profile string
		want    int
		why     string
	}{
		// §3.1.1 valid messages.
		{"wsinv", "blueivr", 481, "valid; its To tag (\"tag = …\", blanks taken out before validate) names no dialog of ours"},
		{"intmeth", "blueivr", 501, "valid; a method nobody defined"},
		{"esc01", "blueivr", 404, "valid; its SDP's \"a=rtpmap:31 LPC\" (no clock rate) only makes that format unusable; reaches the dialplan"},
		{"escnull", "internal", 401, "valid; challenged"},
		{"esc02", "blueivr", 501, "valid; RE%47IST%45R is not REGISTER"},
		{"lwsdisp", "blueivr", 200, "valid"},
		{"longreq", "blueivr", 404, "valid; reaches the dialplan; its answer is larger than a datagram and goes out fragmented"},
		{"dblreq", "internal", 401, "valid; the second request in the datagram is ignored"},
		{"semiuri", "blueivr", 200, "valid"},
		{"transports", "blueivr", 200, "valid"},
		{"mpart01", "blueivr", 405, "valid; MESSAGE is not served"},
		{"unreason", "blueivr", drop, "a response to no request of ours"},
		{"noreason", "blueivr", drop, "a response to no request of ours"},
		// §3.1.2 invalid messages.
		{"badinv01", "blueivr", drop, "unparsable"},
		{"clerr", "blueivr", drop, "Content-Length beyond the datagram"},
		{"scalar02", "blueivr", drop, "unparsable numbers"},
		{"scalarlg", "blueivr", drop, "unparsable numbers"},
		{"quotbal", "blueivr", drop, "unbalanced quotes"},
		{"ltgtruri", "blueivr", drop, "Request-URI in <>"},
		{"lwsruri", "blueivr", drop, "blank in the Request-URI"},
		{"lwsstart", "blueivr", drop, "blanks in the request line"},
		{"trws", "blueivr", drop, "trailing blanks in the request line"},
		{"escruri", "blueivr", 400, "escaped headers in the Request-URI"},
		{"baddate", "blueivr", 404, "the bad Date is ignored (RFC: acceptable); reaches the dialplan"},
		{"regbadct", "internal", 401, "Contact with headers outside <>: sipgo re-writes the Contact, so the missing <> is not seen (known gap); challenged"},
		{"badaspec", "blueivr", drop, "unparsable addr-spec"},
		{"baddn", "blueivr", drop, "unparsable display name"},
		{"badvers", "blueivr", 505, "SIP/7.0"},
		{"mismatch01", "blueivr", 400, "CSeq method is not the request's"},
		{"mismatch02", "blueivr", 501, "unknown method (RFC: 501 or 400)"},
		{"bigcode", "blueivr", drop, "a response with a status over 699"},
		{"ncl", "blueivr", drop, "negative Content-Length"},
		// §3.2 transaction layer.
		{"badbranch", "blueivr", 200, "valid; an odd branch is still a branch"},
		// §3.3 application layer.
		{"insuf", "blueivr", 400, "no Call-ID, From, To"},
		{"unkscm", "blueivr", 416, "unknown Request-URI scheme"},
		{"novelsc", "blueivr", drop, "valid, but sipgo cannot parse a non-SIP URI in To/From (known gap)"},
		{"unksm2", "internal", 400, "REGISTER whose To is not a SIP URI"},
		{"bext01", "blueivr", 420, "Require: newfeature1, newfeature2"},
		{"invut", "blueivr", 415, "a body that is not SDP"},
		{"regaut01", "internal", 401, "credentials for another realm: challenged"},
		{"multi01", "blueivr", 400, "two Call-IDs, Froms, Tos, CSeqs"},
		{"mcl01", "blueivr", 400, "two Content-Lengths"},
		{"bcast", "blueivr", drop, "a response to no request of ours"},
		{"zeromf", "blueivr", 483, "Max-Forwards 0"},
		{"cparam01", "internal", 401, "valid Contact parameters; challenged"},
		{"cparam02", "internal", 401, "valid Contact parameters; challenged"},
		{"regescrt", "internal", 401, "valid escaped Contact headers; challenged"},
		{"sdp01", "blueivr", 406, "Accept leaves out SDP"},
		// §3.4 backward compatibility.
		{"inv2543", "blueivr", 404, "valid RFC 2543 INVITE; reaches the dialplan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := os.ReadFile("testdata/rfc4475/" + tc.name + ".dat")
			if err != nil {
				t.Fatal(err)
			}
			// Many of the messages share a Via branch and sent-by, which
			// would make each a retransmission of an earlier one here:
			// give each its own branch.
			msg = bytes.ReplaceAll(msg, []byte("branch=z9hG4bKkdjuw"), []byte("branch=z9hG4bKkdjuw"+tc.name))
			to, err := net.ResolveUDPAddr("udp4", x.stack.Addr(tc.profile).String())
			if err != nil {
				t.Fatal(err)
			}
			to.IP = net.IPv4(127, 0, 0, 1)
			c := pbxtest.ListenUDP(t)
			if _, err := c.WriteToUDP(msg, to); err != nil {
				t.Fatal(err)
			}
			// A marker OPTIONS sent after the message: its answer bounds
			// the wait for a drop.
			marker := "marker-" + tc.name
			if _, err := c.WriteToUDP([]byte(markerOptions(c.LocalAddr().String(), marker)), to); err != nil {
				t.Fatal(err)
			}
			got, size, sawMarker, reason := -1, 0, false, ""
			buf := make([]byte, 70000)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for !(sawMarker && (got != -1 || tc.want == drop)) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("%s: got %d, marker %v: %v", tc.why, got, sawMarker, err)
				}
				res, err := sipmsg.ParseMessage(buf[:n])
				if err != nil {
					t.Fatalf("unparsable answer %q: %v", buf[:n], err)
				}
				r, ok := res.(*sipmsg.Response)
				if !ok {
					continue // a request of ours: not expected here
				}
				if r.CallID() != nil && r.CallID().Value() == marker {
					sawMarker = true
					continue
				}
				if r.StatusCode < 200 {
					continue
				}
				if r.SipVersion != "SIP/2.0" {
					t.Errorf("answer's version %q", r.SipVersion)
				}
				got, size, reason = r.StatusCode, n, r.Reason
			}
			want := tc.want
			if want == drop {
				want = -1
			}
			if got != want {
				t.Fatalf("%s: answered %d %q, want %d (-1: no answer)", tc.why, got, reason, want)
			}
			if tc.name == "longreq" && size <= maxUDPMessage {
				t.Errorf("longreq's answer is %d bytes: expected one over %d", size, maxUDPMessage)
			}
		})
	}
	x.waitIdle(t, testCtx(t, 10*time.Second))
}

// markerOptions is a plain OPTIONS from src with Call-ID id.
func markerOptions(src, id string) string {
	var b bytes.Buffer
	b.WriteString("OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\n")
	b.WriteString("Via: SIP/2.0/UDP " + src + ";branch=z9hG4bK-" + id + "\r\n")
	b.WriteString("Max-Forwards: 70\r\nTo: <sip:ping@127.0.0.1>\r\n")
	b.WriteString("From: <sip:tester@127.0.0.1>;tag=" + strconv.Itoa(len(id)) + "\r\n")
	b.WriteString("Call-ID: " + id + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}
