package testphone

import (
	"context"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/pbxtest"
)

// TestMain checks that a closed phone leaves no goroutine behind, its
// sipgo user agent's included.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

func request(method sipmsg.RequestMethod, to *Phone) *sipmsg.Request {
	u := to.ContactURI("x")
	req := sipmsg.NewRequest(method, u)
	req.SetTransport(to.Transport())
	return req
}

func TestPhonesAnswerEachOther(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name := "udp"
		var opts []Option
		if tcp {
			name, opts = "tcp", []Option{WithTCP()}
		}
		t.Run(name, func(t *testing.T) {
			a, b := New(t, opts...), New(t, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			res, err := a.Do(ctx, request(sipmsg.OPTIONS, b))
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("OPTIONS: %v %v", res, err)
			}
			if a.LastResponse() != res {
				t.Fatal("LastResponse is not the OPTIONS answer")
			}
			res, err = a.Do(ctx, request(sipmsg.SUBSCRIBE, b))
			if err != nil || res.StatusCode != 405 {
				t.Fatalf("unhandled SUBSCRIBE: %v %v", res, err)
			}
			got := make(chan string, 1)
			b.Handle(sipmsg.MESSAGE, func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
				got <- string(req.Body())
				_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 202, "Accepted", nil))
			})
			msg := request(sipmsg.MESSAGE, b)
			msg.SetBody([]byte("hello"))
			if res, err = a.Do(ctx, msg); err != nil || res.StatusCode != 202 {
				t.Fatalf("MESSAGE: %v %v", res, err)
			}
			if body := <-got; body != "hello" {
				t.Fatalf("handler saw %q", body)
			}
		})
	}
}

func TestRegisterNeedsServer(t *testing.T) {
	p := New(t)
	if _, err := p.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh before Register succeeded")
	}
	if _, err := p.Register(context.Background(), "not an address", "1001", "1234", time.Hour); err == nil {
		t.Fatal("Register with a bad server address succeeded")
	}
}
