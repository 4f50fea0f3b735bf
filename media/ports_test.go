package media

import (
	"fmt"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// freeRange is a port range of n ports that were all free a moment ago, for
// a pool under test. Another process may still take one before the pool
// binds it; tests allocate inside pbxtest.RetryAddrInUse and start again with
// a fresh range when that happens, instead of skipping.
func freeRange(t *testing.T, n int) (start, end int) {
	start = pbxtest.UDPPortRange(t, n)
	return start, start + n - 1
}

// allocAll allocates every pair of p, closing the sockets when the test ends.
func allocAll(t *testing.T, p *portPool) ([]int, error) {
	var ports []int
	for range p.size() {
		rtpC, rtcpC, port, err := p.alloc(loopback)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { rtpC.close(); rtcpC.close() })
		if got := rtcpC.localAddrPort().Port(); int(got) != port+1 {
			return nil, fmt.Errorf("rtcp on %d for rtp %d", got, port)
		}
		ports = append(ports, port)
	}
	return ports, nil
}

func TestPortPoolEvenRangeQuarantine(t *testing.T) {
	var p *portPool
	var ports []int
	var first int
	pbxtest.RetryAddrInUse(t, 5, func() error {
		start, end := freeRange(t, 10)
		// An odd start rounds up: start+1 .. start+9 holds four pairs.
		var err error
		if p, err = newPortPool(start+1, end, time.Hour); err != nil {
			return err
		}
		first = start + 2
		ports, err = allocAll(t, p)
		return err
	})
	seen := map[int]bool{}
	for _, port := range ports {
		if port%2 != 0 || port < first || port > first+6 || seen[port] {
			t.Fatalf("port %d outside the even ports %d..%d or twice", port, first, first+6)
		}
		seen[port] = true
	}
	if len(ports) != 4 {
		t.Fatalf("%d pairs from an odd-started range of 9 ports, want 4", len(ports))
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
	var p *portPool
	var port int
	pbxtest.RetryAddrInUse(t, 5, func() error {
		start, end := freeRange(t, 4)
		var err error
		if p, err = newPortPool(start, end, time.Millisecond); err != nil {
			return err
		}
		a, b, pt, err := p.alloc(loopback)
		if err != nil {
			return err
		}
		a.close()
		b.close()
		port = pt
		return nil
	})
	p.release(port)
	// Waiting out the quarantine in real time is the behaviour under test.
	time.Sleep(5 * time.Millisecond)
	var ports []int
	pbxtest.RetryAddrInUse(t, 1, func() error {
		var err error
		ports, err = allocAll(t, p)
		return err
	})
	if len(ports) != 2 || ports[0] == ports[1] {
		t.Fatalf("ports %v, want both of the range after quarantine", ports)
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
	var start, end int
	var ports []int
	pbxtest.RetryAddrInUse(t, 5, func() error {
		start, end = freeRange(t, 200)
		p, err := newPortPool(start, end, time.Hour)
		if err != nil {
			return err
		}
		ports = ports[:0]
		for range 20 {
			rtpC, rtcpC, port, err := p.alloc(loopback)
			if err != nil {
				return err
			}
			t.Cleanup(func() { rtpC.close(); rtcpC.close() })
			ports = append(ports, port)
		}
		return nil
	})
	for _, port := range ports {
		if port%2 != 0 || port < start || port+1 > end {
			t.Fatalf("port %d outside the even ports of %d-%d", port, start, end)
		}
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
