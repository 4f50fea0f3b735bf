package guard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// serveEcho accepts until the listener closes and answers each line on a
// connection with the same line.
func serveEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, line); err != nil {
					return
				}
			}
		}()
	}
}

// served reports whether a new connection to addr is answered.
func served(addr string) bool {
	c, err := net.DialTimeout("tcp4", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestListenerCapsPerIPAndTotal(t *testing.T) {
	// 127.0.0.1 and 127.0.0.2 are two sources on loopback.
	base := pbxtest.ListenTCP(t)
	l := NewListener(base, ConnLimits{Max: 3, PerIP: 2}, nil)
	go serveEcho(l)
	addr := base.Addr().String()
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
		c, err := d.Dial("tcp4", addr)
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	echo := func(c net.Conn) bool {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, "x\n"); err != nil {
			return false
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err == nil
	}
	a1, a2, a3 := dialFrom("127.0.0.1"), dialFrom("127.0.0.1"), dialFrom("127.0.0.1")
	if !echo(a1) || !echo(a2) {
		t.Fatal("the first two connections from one address are not served")
	}
	if echo(a3) {
		t.Fatal("a third connection from one address was served over per-IP cap 2")
	}
	b1, b2 := dialFrom("127.0.0.2"), dialFrom("127.0.0.2")
	if !echo(b1) {
		t.Fatal("another address is refused while under the total cap")
	}
	if echo(b2) {
		t.Fatal("a fourth connection was served over total cap 3")
	}
	a1.Close()
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return l.Open() == 2 }, "closed connection gives its slot back")
	if !echo(dialFrom("127.0.0.1")) {
		t.Fatal("a slot given back is not usable")
	}
}

func TestTemporaryAcceptError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.ENFILE)}, true},
		{net.ErrClosed, false},
		{&net.OpError{Op: "accept", Err: net.ErrClosed}, false},
		{io.EOF, false},
	} {
		if got := TemporaryAcceptError(tc.err); got != tc.want {
			t.Errorf("TemporaryAcceptError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// The EMFILE test runs the listener in a child process (this test binary
// again) whose descriptor limit is lowered, so the test process keeps its
// own.
const emfileChildEnv = "GUARD_EMFILE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(emfileChildEnv) != "" {
		emfileChild()
		return
	}
	pbxtest.VerifyNoLeaks(m)
}

// emfileChild lowers its descriptor limit to a few above what it has open,
// listens, prints the address and serves until stdin closes.
func emfileChild() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	lim := uint64(len(ents) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	gl := NewListener(l, ConnLimits{}, func(msg string, err error, _ string) {
		fmt.Fprintln(os.Stderr, msg, err)
	})
	go serveEcho(gl)
	fmt.Println(l.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	l.Close()
}

// lockedBuffer collects the child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestListenerSurvivesEMFILE(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "ERR") {
		t.Fatalf("child: %q %v", line, err)
	}
	addr := strings.TrimSpace(line)

	// Hold connections until the child cannot accept more: its limit is
	// about 8 descriptors above what it had, so 40 are far beyond it.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 40 {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(stderr.String(), "too many open files") },
		"the child's accept hits EMFILE")
	if served(addr) {
		t.Fatal("a connection was served while the child had no descriptors left")
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return served(addr) },
		"the listener serves again once descriptors are free (stderr: %s)", strconv.Quote(stderr.String()))
}
