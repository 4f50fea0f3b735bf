package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestBinaryServesShippedConfig builds the ccpbx binary and runs `serve` on
// the shipped config.toml, edited as text only to move it to 127.0.0.1 and
// free ports: what an admin runs. The in-process tests (TestArticleSequence)
// cover the article's calls in depth; this one checks what only the binary
// has: the file as shipped, `cli -x` over the event socket, and a clean
// exit on SIGINT, with one agent logging in, taking a queued call with
// audio both ways and logging out.
func TestBinaryServesShippedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ccpbx binary")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ccpbx")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	shipped, err := os.ReadFile(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The binary is told its ports in its config file, so they are chosen
	// here and may be taken by someone else before it binds them: each
	// attempt takes fresh ones and starts it again if it lost one.
	var (
		internal, trunk int
		cfgPath         string
		srv             *server
	)
	pbxtest.RetryAddrInUse(t, 5, func() error {
		internal, trunk = pbxtest.PortFor(t, "udp", "tcp"), pbxtest.PortFor(t, "udp", "tcp")
		esl := pbxtest.PortFor(t, "tcp")
		rtp := pbxtest.UDPPortRange(t, 201)
		cfg := string(shipped)
		for _, r := range [][2]string{
			{"port = 5060", fmt.Sprintf("port = %d", internal)},
			{"port = 5080", fmt.Sprintf("port = %d", trunk)},
			{"127.0.0.1:8021", fmt.Sprintf("127.0.0.1:%d", esl)},
			{`listen_ip = "0.0.0.0"`, `listen_ip = "127.0.0.1"`},
			{`# advertise_ip = ""      # default: auto-detected`, `advertise_ip = "127.0.0.1"`},
			{`data_dir = "data"`, fmt.Sprintf("data_dir = %q", filepath.Join(dir, "data"))},
			{"rtp_start = 16384", fmt.Sprintf("rtp_start = %d", rtp)},
			{"rtp_end = 32767", fmt.Sprintf("rtp_end = %d", rtp+200)},
		} {
			if !strings.Contains(cfg, r[0]) {
				t.Fatalf("shipped config has no %q", r[0])
			}
			cfg = strings.ReplaceAll(cfg, r[0], r[1])
		}
		cfgPath = filepath.Join(dir, "config.toml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		srv, err = startServer(t, bin, cfgPath, root)
		return err
	})
	cli := func(cmd string) string {
		t.Helper()
		out, err := exec.Command(bin, "cli", "-config", cfgPath, "-x", cmd).Output()
		if err != nil {
			t.Fatalf("cli %q: %v", cmd, err)
		}
		return string(out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	agent := testphone.New(t)
	if res, err := agent.Register(ctx, fmt.Sprintf("127.0.0.1:%d", internal), "1001", "1234", time.Minute); err != nil || res.StatusCode != 200 {
		t.Fatalf("register 1001: %v %v", res, err)
	}
	dialAndWaitHangup(t, agent, "300")
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return strings.TrimSpace(cli("callcenter_config agent get status 1001")) == "Available" }, "1001 Available")

	customer, err := testphone.New(t).Invite(ctx, fmt.Sprintf("127.0.0.1:%d", trunk), "5550001", "3000")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := customer.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("trunk call to 3000: %d %v", code, err)
	}
	leg := answerAndTalk(t, agent, customer)
	if err := customer.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leg.WaitEnded(ctx); err != nil {
		t.Fatalf("agent leg not ended: %v", err)
	}

	dialAndWaitHangup(t, agent, "301")
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		return strings.TrimSpace(cli("callcenter_config agent get status 1001")) == "Logged Out"
	}, "1001 Logged Out")
	list := cli("callcenter_config agent list")
	if !strings.Contains(list, "\n1001|single_box||callback|[call_timeout=60]user/1001|Logged Out|") {
		t.Fatalf("agent list:\n%s", list)
	}

	// SIGHUP re-reads the file (reloadxml) and the process goes on.
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(cfg), `strategy = "round-robin"`, `strategy = "ring-all"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(cli("callcenter_config queue list"), "\n3000@default|ring-all|")
	}, "SIGHUP to reload the queue's strategy")

	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30 s after SIGINT")
	}
	if srv.err != nil {
		t.Fatalf("serve after SIGINT: %v", srv.err)
	}
}

// server is a running `ccpbx serve`.
type server struct {
	cmd    *exec.Cmd
	log    bytes.Buffer  // stdout and stderr; read it only after exited
	exited chan struct{} // closed once the process has exited and err is set
	err    error
}

// startServer runs `ccpbx serve` on cfgPath in dir and waits until its
// event socket answers. If the process exits first, the error carries its
// output, so [pbxtest.RetryAddrInUse] can tell a port lost to someone else
// from any other failure. Once started, the process is killed (if still
// running) and its log shown on failure when the test ends.
func startServer(t *testing.T, bin, cfgPath, dir string) (*server, error) {
	t.Helper()
	s := &server{cmd: exec.Command(bin, "serve", "-config", cfgPath), exited: make(chan struct{})}
	s.cmd.Dir = dir // sounds and scripts from the repository, as shipped
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	answering := func() bool {
		select {
		case <-s.exited:
			return true
		default:
		}
		return exec.Command(bin, "cli", "-config", cfgPath, "-x", "status").Run() == nil
	}
	if !pbxtest.Until(30*time.Second, answering) {
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Fatalf("the event socket did not answer within 30 s; ccpbx log:\n%s", s.log.String())
	}
	select {
	case <-s.exited:
		return nil, fmt.Errorf("ccpbx serve exited before its event socket answered: %v\n%s", s.err, s.log.String())
	default:
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill() // an error once it has exited
		<-s.exited
		if t.Failed() {
			t.Logf("ccpbx log:\n%s", s.log.String())
		}
	})
	return s, nil
}
