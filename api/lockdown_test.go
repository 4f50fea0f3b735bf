package api

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/guard"
)

// startLocked runs an event socket with lockdown l on a loopback port.
func startLocked(t *testing.T, l Lockdown) *EventSocket {
	t.Helper()
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := NewEventSocket(core, "127.0.0.1:0", testPassword, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetLockdown(l)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// greeted reports whether the server greeted rc with auth/request (true) or
// closed it without a byte (false).
func (rc *rawConn) greeted() bool {
	rc.t.Helper()
	line, err := rc.r.ReadString('\n')
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			rc.t.Fatal("neither greeted nor closed")
		}
		return false
	}
	if line != "Content-Type: auth/request\n" {
		rc.t.Fatalf("greeting %q", line)
	}
	if blank, _ := rc.r.ReadString('\n'); blank != "\n" {
		rc.t.Fatalf("greeting not terminated: %q", blank)
	}
	return true
}

// TestPreAuthBodyIsNeverRead: 100 strangers announcing 4 MiB bodies before
// logging in make the server allocate nothing like 400 MiB (it used to
// buffer every body before looking at the password). Allocation is measured
// as TotalAlloc, which garbage collection does not hide.
func TestPreAuthBodyIsNeverRead(t *testing.T) {
	const conns, bodyLen = 100, 4 << 20
	s := startLocked(t, Lockdown{MaxConnections: conns, MaxUnauthenticated: conns, AuthTimeout: time.Minute})
	body := make([]byte, bodyLen)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var wg sync.WaitGroup
	for range conns {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.WriteString(c, "auth "+testPassword+"\nContent-Length: 4194304\n\n")
			c.Write(body) // fails once the server hangs up; that is the point
		}()
	}
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
		t.Fatalf("the server allocated %d MiB for %d pre-auth bodies of 4 MiB", grew>>20, conns)
	}
	t.Logf("allocated %d KiB in all", (after.TotalAlloc-before.TotalAlloc)>>10)
}

// TestPreAuthBodyDisconnects: a Content-Length before login ends the
// connection; the password in the same frame is not accepted.
func TestPreAuthBodyDisconnects(t *testing.T) {
	s := startLocked(t, Lockdown{})
	rc := dialRaw(t, s)
	rc.expect("Content-Type: auth/request\n\n")
	rc.send("auth " + testPassword + "\nContent-Length: 5\n\nhello")
	rc.expectClosed()
	// A long line before login is refused as well.
	rc = dialRaw(t, s)
	rc.expect("Content-Type: auth/request\n\n")
	rc.send("auth " + strings.Repeat("x", 4096) + "\n\n")
	rc.expectClosed()
}

// TestCommandSizeCapAfterAuth: a logged-in client is held to one modest
// command frame too.
func TestCommandSizeCapAfterAuth(t *testing.T) {
	s := startLocked(t, Lockdown{})
	rc := dialRaw(t, s)
	rc.login()
	rc.send("api hostname\n\n")
	rc.expect("Content-Type: api/response\nContent-Length: 7\n\nblueivr")
	rc.send("api " + strings.Repeat("x", 64<<10) + "\n\n")
	rc.expectClosed()

	rc = dialRaw(t, s)
	rc.login()
	rc.send("sendmsg\nContent-Length: 1048576\n\n")
	rc.expectClosed()
}

// TestUnauthenticatedConnectionsCapped: of 100 connections that never log
// in, only MaxUnauthenticated are served; the rest are closed on accept. A
// client that logs in frees its pending slot.
func TestUnauthenticatedConnectionsCapped(t *testing.T) {
	const pendingCap = 8
	s := startLocked(t, Lockdown{MaxConnections: 64, MaxUnauthenticated: pendingCap, AuthTimeout: time.Minute})
	var open []*rawConn
	greeted := 0
	for range 100 {
		rc := dialRaw(t, s)
		if rc.greeted() {
			greeted++
			open = append(open, rc)
		}
	}
	if greeted != pendingCap {
		t.Fatalf("%d of 100 unauthenticated connections served, cap %d", greeted, pendingCap)
	}
	// One of them logs in: a new stranger is served again.
	open[0].send("auth " + testPassword + "\n\n")
	open[0].expect("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
	if !dialRaw(t, s).greeted() {
		t.Fatal("a slot freed by a login was not reused")
	}
	if dialRaw(t, s).greeted() {
		t.Fatal("cap exceeded after the slot was reused")
	}
}

// TestConnectionCap: MaxConnections counts logged-in clients too.
func TestConnectionCap(t *testing.T) {
	s := startLocked(t, Lockdown{MaxConnections: 3, MaxUnauthenticated: 3})
	for range 3 {
		dialRaw(t, s).login()
	}
	if dialRaw(t, s).greeted() {
		t.Fatal("a fourth connection was served with MaxConnections 3")
	}
}

// TestAuthTimeoutCloses: a client that says nothing is disconnected once
// AuthTimeout is over. The test does not measure how soon.
func TestAuthTimeoutCloses(t *testing.T) {
	s := startLocked(t, Lockdown{AuthTimeout: 100 * time.Millisecond})
	rc := dialRaw(t, s)
	rc.expect("Content-Type: auth/request\n\n")
	rc.expectClosed()
}

// TestBanAfterWrongPasswords: after MaxFailures wrong passwords the address
// is closed on accept, the right password does not help (not even on a
// connection opened before the ban), and lifting the ban lets it in again.
func TestBanAfterWrongPasswords(t *testing.T) {
	bans := guard.NewBans(guard.BanPolicy{MaxFailures: 3, Window: time.Hour, BanTime: time.Hour})
	s := startLocked(t, Lockdown{Bans: bans})
	early := dialRaw(t, s)
	early.expect("Content-Type: auth/request\n\n")
	for range 3 {
		rc := dialRaw(t, s)
		rc.expect("Content-Type: auth/request\n\n")
		rc.send("auth wrong\n\n")
		rc.expect("Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
	}
	lo := netip.MustParseAddr("127.0.0.1")
	if !bans.Banned(lo) {
		t.Fatal("127.0.0.1 not banned after 3 wrong passwords")
	}
	if dialRaw(t, s).greeted() {
		t.Fatal("a banned address was served")
	}
	early.send("auth " + testPassword + "\n\n")
	early.expect("Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
	if l := s.Bans().List(); len(l) != 1 || l[0].Addr != lo {
		t.Fatalf("ban list %+v", l)
	}
	if !bans.Lift(lo) {
		t.Fatal("Lift found no ban")
	}
	dialRaw(t, s).login()
}

// TestACLClosesOutsiders: a connection from outside the ACL is closed
// before the greeting; one from inside is served.
func TestACLClosesOutsiders(t *testing.T) {
	s := startLocked(t, Lockdown{ACL: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if dialRaw(t, s).greeted() {
		t.Fatal("127.0.0.1 served with acl 192.0.2.0/24")
	}
	s = startLocked(t, Lockdown{ACL: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.0/8")}})
	dialRaw(t, s).login()
}
