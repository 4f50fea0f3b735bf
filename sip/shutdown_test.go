package sip

import (
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ccpbx/internal/pbxtest"
)

// TestNoRequestAfterClose: a request a dialog tries to send once the stack
// has closed its listeners (a BYE or re-ACK still running when Close's wait
// for them ran out) is refused. Sent, sipgo would bind a fresh socket on the
// listener's freed port, with a reader goroutine nothing ever closes
// (TestMain's leak check sees it).
func TestNoRequestAfterClose(t *testing.T) {
	x := newTestPBX(t)
	answered(t, x)
	x.stack.dialogs.mu.RLock()
	var dialogs []*dialog
	for _, d := range x.stack.dialogs.m {
		dialogs = append(dialogs, d)
	}
	x.stack.dialogs.mu.RUnlock()
	if len(dialogs) == 0 {
		t.Fatal("an answered call has no dialogs")
	}
	x.stack.Close()
	for _, d := range dialogs {
		d.resendAck()
		if err := d.bye(""); err == nil {
			t.Errorf("BYE on %s sent after Close", d.transport)
		}
	}
}

// TestNoSocketForRequestsDuringClose: requests that keep arriving while
// Close runs leave no goroutine behind. sipgo handles each request in a
// goroutine of its own, so one read just before the listener closed can
// reach the transaction layer after the pool was emptied; sipgo then binds
// a fresh socket for it with a reader nothing stops, unless the stack
// drops the request and closes that socket (dropStray).
func TestNoSocketForRequestsDuringClose(t *testing.T) {
	before := goleak.IgnoreCurrent()
	for round := 0; round < 5; round++ {
		t.Run("close", func(t *testing.T) {
			x := newTestPBX(t)
			dst, err := net.ResolveUDPAddr("udp", x.internal())
			if err != nil {
				t.Fatal(err)
			}
			c := pbxtest.ListenUDP(t)
			options := func(i int) []byte {
				return fmt.Appendf(nil, "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\n"+
					"From: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: c%d\r\nCSeq: 1 OPTIONS\r\n"+
					"Content-Length: 0\r\n\r\n", c.LocalAddr(), i, i)
			}
			// The PBX answers before the flood starts.
			if _, err := c.WriteTo(options(-1), dst); err != nil {
				t.Fatal(err)
			}
			if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadFrom(make([]byte, 2048)); err != nil {
				t.Fatalf("no answer to OPTIONS: %v", err)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < 20000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = c.WriteTo(options(i), dst)
				}
			}()
			x.stack.Close()
			close(stop)
			<-done
		})
	}
	pbxtest.CheckLeaks(t, before)
}
