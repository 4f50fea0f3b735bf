package media

import (
	"net/netip"
	"testing"
	"time"
)

func TestPortPoolEvenRangeQuarantine(t *testing.T) {
	// A small range high in the default range keeps clear of other tests.
	p, err := newPortPool(31001, 31011, time.Hour) // odd start rounds up: 31002..31010
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	var ports []int
	for range p.size() {
		rtpC, rtcpC, port, err := p.alloc(loopback)
		if err != nil {
			t.Skipf("port in use by someone else: %v", err)
		}
		defer rtpC.Close()
		defer rtcpC.Close()
		if port%2 != 0 || port < 31002 || port > 31010 || seen[port] {
			t.Fatalf("port %d", port)
		}
		if got := rtcpC.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port(); int(got) != port+1 {
			t.Fatalf("rtcp on %d for rtp %d", got, port)
		}
		seen[port] = true
		ports = append(ports, port)
	}
	if _, _, _, err := p.alloc(loopback); err == nil {
		t.Fatal("allocated from an exhausted range")
	}
	// Released ports rest in quarantine: still nothing to hand out.
	p.release(ports[0])
	if _, _, _, err := p.alloc(loopback); err == nil {
		t.Fatal("quarantined port handed out")
	}
}

func TestPortPoolReuseAfterQuarantine(t *testing.T) {
	p, err := newPortPool(31020, 31023, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	a, b, port, err := p.alloc(loopback)
	if err != nil {
		t.Skipf("port in use: %v", err)
	}
	a.Close()
	b.Close()
	p.release(port)
	time.Sleep(5 * time.Millisecond)
	seen := map[int]bool{}
	for range 2 {
		a, b, port, err := p.alloc(loopback)
		if err != nil {
			t.Skipf("port in use: %v", err)
		}
		defer a.Close()
		defer b.Close()
		seen[port] = true
	}
	if len(seen) != 2 {
		t.Fatalf("ports %v, want both of the range after quarantine", seen)
	}
}

func TestPortPoolBadRange(t *testing.T) {
	for _, r := range [][2]int{{0, 100}, {5000, 5000}, {6000, 5000}, {60000, 70000}} {
		if _, err := newPortPool(r[0], r[1], 0); err == nil {
			t.Errorf("range %v accepted", r)
		}
	}
}

// TestPortPoolUnpredictable: ports come from all over the range, not in
// sequence, so one call's port does not give away the next one's.
func TestPortPoolUnpredictable(t *testing.T) {
	p, err := newPortPool(20000, 29999, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for range 20 {
		rtpC, rtcpC, port, err := p.alloc(loopback)
		if err != nil {
			t.Fatal(err)
		}
		defer rtpC.Close()
		defer rtcpC.Close()
		if port%2 != 0 || port < 20000 || port+1 > 29999 {
			t.Fatalf("port %d", port)
		}
		ports = append(ports, port)
	}
	arithmetic := true
	for i := 2; i < len(ports); i++ {
		if ports[i]-ports[i-1] != ports[1]-ports[0] {
			arithmetic = false
		}
	}
	if arithmetic {
		t.Fatalf("ports form an arithmetic sequence: %v", ports)
	}
}
