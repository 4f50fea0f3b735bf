package pbxtest

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// Quiet ports: below the kernel's ephemeral range (ip_local_port_range,
// 32768 up by default) and below ccpbx's default RTP range (16384 up), so
// no bind to port 0 and no outgoing connection of any process is given one
// of them between the choice and a subprocess's bind. Ports from PortFor
// are ephemeral: baresip's TLS listener on its SIP port + 1 once lost that
// port to some process's outgoing TCP connection, and a cluster node's esl
// and http ports (on 127.0.0.11, where PortFor's check on 127.0.0.1 says
// nothing) once got the same number.
const QuietLo, QuietHi = 10000, 16383

var quiet struct {
	sync.Mutex
	given map[int]bool
}

// QuietPorts returns p such that ip:p+i is free on networks[i] for each i
// (nil: no bind checked) when chosen, in the quiet range, never the same
// number twice in this test binary. Another process choosing the same
// number explicitly is left to the caller's retry (RetryAddrInUse).
func QuietPorts(t testing.TB, ip string, networks ...[]string) int {
	t.Helper()
	quiet.Lock()
	defer quiet.Unlock()
	if quiet.given == nil {
		quiet.given = make(map[int]bool)
	}
	for range 500 {
		p := QuietLo + rand.IntN(QuietHi-QuietLo+1-len(networks))
		free := true
		for i, nets := range networks {
			if quiet.given[p+i] {
				free = false
				break
			}
			for _, n := range nets {
				if !bindFree(n, ip, p+i) {
					free = false
					break
				}
			}
		}
		if free {
			for i := range networks {
				quiet.given[p+i] = true
			}
			return p
		}
	}
	t.Fatalf("no port free on %s in %d-%d after 500 tries", ip, QuietLo, QuietHi)
	return 0
}

// bindFree reports whether ip:port can be bound on network ("udp" or
// "tcp") now.
func bindFree(network, ip string, port int) bool {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	if network == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	l, err := net.Listen("tcp4", addr)
	if err == nil {
		l.Close()
	}
	return err == nil
}
