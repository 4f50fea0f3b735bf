package pbxtest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { VerifyNoLeaks(m) }

// recorder is a testing.TB that records failures instead of ending the
// test, so the helpers' own failures can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Name() string                   { return "recorder" }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }
func (r *recorder) Errorf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }
func (r *recorder) Logf(string, ...any)            {}
func (r *recorder) Fatal(a ...any)                 { r.failed = fmt.Sprint(a...) }
func (r *recorder) Cleanup(func())                 {}
func (r *recorder) Error(a ...any)                 { r.failed = fmt.Sprint(a...) }

func TestWaitForSeesConditionBecomeTrue(t *testing.T) {
	var n atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			n.Add(1)
		}
	}()
	WaitFor(t, 10*time.Second, func() bool { return n.Load() == 3 }, "counter to reach %d", 3)
	<-done
}

func TestWaitForFailureNamesWhatWasAwaited(t *testing.T) {
	r := &recorder{TB: t}
	WaitFor(r, time.Millisecond, func() bool { return false }, "agent %s to be %q", "1001", "Waiting")
	if want := `waiting for agent 1001 to be "Waiting"`; !strings.Contains(r.failed, want) {
		t.Fatalf("failure %q does not contain %q", r.failed, want)
	}
	r.failed = ""
	WaitFor(r, time.Millisecond, func() bool { return false })
	if !strings.Contains(r.failed, "waiting for the condition") {
		t.Fatalf("failure without msgf: %q", r.failed)
	}
}

func TestCheckLeaksWaitsForAGoroutineOnItsWayOut(t *testing.T) {
	stop := make(chan struct{})
	go func() { <-stop }()
	r := &recorder{TB: t}
	// findLeaks waits up to leakTimeout; end the goroutine meanwhile and the
	// check passes.
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	CheckLeaks(r)
	if r.failed != "" {
		t.Fatalf("goroutine that ended during the check reported as a leak: %s", r.failed)
	}
}

func TestPortForIsFreeOnEveryNetwork(t *testing.T) {
	port := PortFor(t, "udp", "tcp")
	u, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil && !IsAddrInUse(err) {
		t.Fatal(err)
	}
	if u != nil {
		u.Close()
	}
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil && !IsAddrInUse(err) {
		t.Fatal(err)
	}
	if l != nil {
		l.Close()
	}
}

func TestUDPPortRangeStartsEven(t *testing.T) {
	first := UDPPortRange(t, 8)
	if first%2 != 0 || first <= 0 || first+7 > 65535 {
		t.Fatalf("range starts at %d", first)
	}
}

func TestListenersAreOnLoopbackPortsTheKernelChose(t *testing.T) {
	u := ListenUDP(t)
	if a := u.LocalAddr().(*net.UDPAddr); !a.IP.IsLoopback() || a.Port == 0 {
		t.Fatalf("udp on %v", a)
	}
	l := ListenTCP(t)
	if a := l.Addr().(*net.TCPAddr); !a.IP.IsLoopback() || a.Port == 0 {
		t.Fatalf("tcp on %v", a)
	}
}

func TestRetryAddrInUse(t *testing.T) {
	inUse := fmt.Errorf("start: %w", &net.OpError{Op: "listen", Err: syscall.EADDRINUSE})
	tries := 0
	RetryAddrInUse(t, 3, func() error {
		tries++
		if tries < 3 {
			return inUse
		}
		return nil
	})
	if tries != 3 {
		t.Fatalf("%d tries, want 3", tries)
	}

	r := &recorder{TB: t}
	tries = 0
	RetryAddrInUse(r, 3, func() error { tries++; return errors.New("config refused") })
	if tries != 1 || !strings.Contains(r.failed, "config refused") {
		t.Fatalf("other error: %d tries, failure %q", tries, r.failed)
	}

	r.failed = ""
	RetryAddrInUse(r, 2, func() error { return errors.New("ccpbx exited: listen udp: bind: address already in use") })
	if !strings.Contains(r.failed, "2 attempts") {
		t.Fatalf("exhausted retries: failure %q", r.failed)
	}
}

// TestQuietPortsAreFreeDistinctAndQuiet: QuietPorts gives consecutive
// ports below the ephemeral and RTP ranges, bindable as asked, and never
// one it gave before.
func TestQuietPortsAreFreeDistinctAndQuiet(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := QuietPorts(t, "127.0.0.1", []string{"udp", "tcp"}, []string{"tcp"})
		if p < QuietLo || p+1 > QuietHi {
			t.Fatalf("port %d outside %d-%d", p, QuietLo, QuietHi)
		}
		if seen[p] || seen[p+1] {
			t.Fatalf("port %d or %d given twice", p, p+1)
		}
		seen[p], seen[p+1] = true, true
		if !bindFree("udp", "127.0.0.1", p) || !bindFree("tcp", "127.0.0.1", p) || !bindFree("tcp", "127.0.0.1", p+1) {
			t.Fatalf("port %d/%d given but not free", p, p+1)
		}
	}
}
