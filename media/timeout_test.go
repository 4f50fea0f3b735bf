package media

import (
	"net/netip"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

func waitTimeout(t *testing.T, l *Leg) {
	t.Helper()
	select {
	case <-l.Timeout():
	case <-time.After(5 * time.Second):
		t.Fatal("no media timeout")
	}
}

// TestMediaTimeoutWithoutSDP: a call that never got an SDP answer (late
// offer, bodiless ACK) still times out once confirmed.
func TestMediaTimeoutWithoutSDP(t *testing.T) {
	e := secureEngine(t, Config{MediaTimeout: 50 * time.Millisecond})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_ = l.Offer() // in the 200 OK; the ACK brings no answer
	fired := make(chan struct{})
	l.OnMediaTimeout(func() { close(fired) })
	l.Confirm()
	waitTimeout(t, l)
	<-fired
	if k := l.TimedOut(); k != MediaTimeout {
		t.Fatalf("timed out by %v", k)
	}
}

// TestTimeoutStartsAtConfirm: under a consent policy the owner confirms,
// so an unconfirmed (ringing) leg never times out, however long it waits.
func TestTimeoutStartsAtConfirm(t *testing.T) {
	e := secureEngine(t, Config{MediaTimeout: time.Hour})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0")
	l.lastRx.Store(monoNow() - int64(2*time.Hour))
	l.checkTimeout()
	if l.TimedOut() != NoTimeout {
		t.Fatal("timed out before Confirm")
	}
	l.Confirm()
	l.checkTimeout()
	if l.TimedOut() != NoTimeout {
		t.Fatal("timed out right after Confirm")
	}
	l.lastRx.Store(monoNow() - int64(2*time.Hour))
	l.checkTimeout()
	if l.TimedOut() != MediaTimeout {
		t.Fatal("no timeout after Confirm")
	}
}

// TestHoldTimeout: on hold (sendonly or inactive from the peer) only the
// hold timeout applies, as FreeSWITCH's rtp-hold-timeout-sec.
func TestHoldTimeout(t *testing.T) {
	e := secureEngine(t, Config{MediaTimeout: time.Hour, HoldTimeout: 3 * time.Hour})
	for _, dir := range []string{"a=sendonly", "a=inactive"} {
		p := newPeer(t)
		l := answeredLeg(t, e, p, "0", dir)
		l.Confirm()
		l.lastRx.Store(monoNow() - int64(2*time.Hour))
		l.checkTimeout()
		if l.TimedOut() != NoTimeout {
			t.Fatalf("%s: the media timeout applied on hold", dir)
		}
		l.lastRx.Store(monoNow() - int64(4*time.Hour))
		l.checkTimeout()
		if l.TimedOut() != HoldTimeout {
			t.Fatalf("%s: timed out by %v, want hold", dir, l.TimedOut())
		}
		select {
		case <-l.Timeout():
		default:
			t.Fatal("Timeout() not closed")
		}
	}
}

func TestHoldTimeoutFires(t *testing.T) {
	e := secureEngine(t, Config{MediaTimeout: time.Hour, HoldTimeout: 50 * time.Millisecond})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0", "a=inactive")
	l.Confirm()
	waitTimeout(t, l)
	if l.TimedOut() != HoldTimeout {
		t.Fatalf("timed out by %v", l.TimedOut())
	}
}

// TestRTCPIsLiveness: RTCP from the peer keeps a call alive (a phone on
// hold may send nothing else); RTCP from a stranger does not.
func TestRTCPIsLiveness(t *testing.T) {
	e := secureEngine(t, Config{MediaTimeout: time.Hour, HoldTimeout: time.Hour})
	p, stranger := newPeer(t), newPeerOn(t, attackerIP)
	l := answeredLeg(t, e, p, "0", "a=inactive")
	l.Confirm()
	rtcp := []byte{0x80, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0} // an empty RR
	toRTCP := netip.AddrPortFrom(loopback, uint16(l.LocalPort()+1))
	for i, c := range []*peer{stranger, p} {
		old := monoNow() - int64(2*time.Hour)
		l.lastRx.Store(old)
		if _, err := c.conn.WriteToUDPAddrPort(rtcp, toRTCP); err != nil {
			t.Fatal(err)
		}
		pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().RTCPIn == uint64(i+1) }, "RTCP")
		if fresh := l.lastRx.Load() != old; fresh != (c == p) {
			t.Fatalf("RTCP from %v: liveness %v", c.addr(), fresh)
		}
	}
	l.checkTimeout()
	if l.TimedOut() != NoTimeout {
		t.Fatal("timed out although RTCP arrived")
	}
	// Muxed on the RTP port, from the peer, after it was accepted.
	p.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().PacketsIn == 1 }, "RTP")
	old := monoNow() - int64(2*time.Hour)
	l.lastRx.Store(old)
	p.sendBytes(l, rtcp)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().RTCPIn == 3 }, "muxed RTCP")
	if l.lastRx.Load() == old {
		t.Fatal("muxed RTCP from the peer not counted as liveness")
	}
}
