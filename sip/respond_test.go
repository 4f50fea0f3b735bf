package sip

import (
	"errors"
	"strings"
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
)

// TestReplyRules: the rules every response follows, whatever it answers.
func TestReplyRules(t *testing.T) {
	s := &Stack{agent: "ccpbx-test", log: testLogger()}
	req := rawRegister(t, "rules", 1, "1001")

	tx := newFakeTx()
	res, err := s.reply(tx, req, response{code: 180, reason: "Ringing", toTag: "ours"})
	if err != nil || tx.response(t) != res {
		t.Fatalf("reply: %v", err)
	}
	if tag, _ := res.To().Params.Get("tag"); tag != "ours" {
		t.Errorf("To tag %q, want the dialog's", tag)
	}
	if ua := res.GetHeader("User-Agent"); ua == nil || ua.Value() != "ccpbx-test" {
		t.Errorf("User-Agent %v", ua)
	}
	if res.Destination() != phoneSource {
		t.Errorf("UDP response to %q, want the source %s", res.Destination(), phoneSource)
	}

	// Over TCP the transaction answers on the request's connection.
	tcp := rawRegister(t, "rules-tcp", 1, "1001")
	tcp.SetTransport("TCP")

	// Too large even for a fragmented datagram: not sent, and the caller
	// learns why. (Between maxUDPMessage and maxUDPResponse it goes out on
	// the socket: TestRFC4475's longreq.)
	big := []sipmsg.Header{sipmsg.NewHeader("X-Big", strings.Repeat("x", maxUDPResponse))}
	tx = newFakeTx()
	if _, err := s.reply(tx, req, response{code: 200, reason: "OK", headers: big}); !errors.Is(err, errTooLarge) {
		t.Errorf("oversized UDP response: %v", err)
	}
	if len(tx.responses) != 0 {
		t.Error("oversized UDP response was sent")
	}
	tx = newFakeTx()
	if _, err := s.reply(tx, tcp, response{code: 200, reason: "OK", headers: big}); err != nil {
		t.Errorf("large TCP response: %v", err)
	}
}
