package sip

import (
	"errors"
	"sync"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// errNotSending refuses a request once the stack has stopped sending.
var errNotSending = errors.New("sip: stack is closing its transports")

// sendGate stops requests from leaving once Close has begun closing the
// transports. sipgo looks up the socket for a request in its pool; once a
// listener is closed (or ua.Close has emptied the pool) it binds a new
// socket on the request's local address, the listener's freed port, and
// starts a reader goroutine for it that nothing closes afterwards. So every
// request ccpbx sends goes through [profile.sending], and Close shuts the
// gate, waiting for sends already under way, before it touches a listener.
type sendGate struct {
	mu   sync.Mutex
	shut bool
	busy inflight
}

// shutAndWait refuses every later send and waits, at most d, for those
// under way.
func (g *sendGate) shutAndWait(d time.Duration) {
	g.mu.Lock()
	g.shut = true
	g.mu.Unlock()
	g.busy.wait(d)
}

// sending runs send, which hands one request to p's sipgo client, unless
// the stack has stopped sending. Only the handing over is covered: the
// transaction's own retransmissions reuse the socket it was given.
func (p *profile) sending(send func() error) error {
	g := &p.stack.gate
	g.mu.Lock()
	if g.shut {
		g.mu.Unlock()
		return errNotSending
	}
	g.busy.add()
	g.mu.Unlock()
	defer g.busy.done()
	return send()
}

// isShut reports whether the stack has stopped sending.
func (g *sendGate) isShut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut
}

// dropStray keeps the answering side of Close as tight as the sending
// side. sipgo hands every request to a goroutine of its own, so one read
// just before Close stopped a UDP listener can reach the transaction layer
// after the listener has left the pool; sipgo then binds a fresh socket
// for that transaction's answers and starts a reader on it that nothing
// stops. Once the stack has stopped sending, a request whose transaction
// got such a socket is not answered: the socket is closed, which ends its
// reader, and the transaction with it. It reports whether it dropped req.
func (s *Stack) dropStray(tx sipmsg.ServerTransaction) bool {
	if !s.gate.isShut() {
		return false
	}
	stx, ok := tx.(*sipmsg.ServerTx)
	if !ok {
		return false
	}
	uc, ok := stx.Connection().(*sipmsg.UDPConnection)
	if !ok || uc.Listener {
		return false
	}
	_ = uc.Close()
	stx.Terminate()
	return true
}
