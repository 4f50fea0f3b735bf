package sip

import (
	"testing"
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
