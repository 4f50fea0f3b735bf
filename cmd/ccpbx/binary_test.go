package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	internal, trunk, esl := freePort(t), freePort(t), freePort(t)
	rtp := freePort(t) &^ 1
	shipped, err := os.ReadFile(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
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
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	srv := exec.Command(bin, "serve", "-config", cfgPath)
	srv.Dir = root // sounds and scripts from the repository, as shipped
	srv.Stdout, srv.Stderr = &logBuf, &logBuf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = srv.Process.Kill()
			_ = srv.Wait()
		}
		if t.Failed() {
			t.Logf("ccpbx log:\n%s", logBuf.String())
		}
	})
	cli := func(cmd string) string {
		t.Helper()
		out, err := exec.Command(bin, "cli", "-config", cfgPath, "-x", cmd).Output()
		if err != nil {
			t.Fatalf("cli %q: %v", cmd, err)
		}
		return string(out)
	}
	waitFor(t, "the event socket to answer", func() bool {
		return exec.Command(bin, "cli", "-config", cfgPath, "-x", "status").Run() == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	agent := testphone.New(t)
	if res, err := agent.Register(ctx, fmt.Sprintf("127.0.0.1:%d", internal), "1001", "1234", time.Minute); err != nil || res.StatusCode != 200 {
		t.Fatalf("register 1001: %v %v", res, err)
	}
	dialAndWaitHangup(t, agent, "300")
	waitFor(t, "1001 Available", func() bool { return strings.TrimSpace(cli("callcenter_config agent get status 1001")) == "Available" })

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
	waitFor(t, "1001 Logged Out", func() bool {
		return strings.TrimSpace(cli("callcenter_config agent get status 1001")) == "Logged Out"
	})
	list := cli("callcenter_config agent list")
	if !strings.Contains(list, "\n1001|single_box||callback|[call_timeout=60]user/1001|Logged Out|") {
		t.Fatalf("agent list:\n%s", list)
	}

	// SIGHUP re-reads the file (reloadxml) and the process goes on.
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(cfg, `strategy = "round-robin"`, `strategy = "ring-all"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SIGHUP to reload the queue's strategy", func() bool {
		return strings.Contains(cli("callcenter_config queue list"), "\n3000@default|ring-all|")
	})

	if err := srv.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = srv.Wait()
	exited = true
	if err != nil {
		t.Fatalf("serve after SIGINT: %v", err)
	}
}

// freePort returns a port free on 127.0.0.1 for both TCP and UDP, for a
// process whose configuration must name its ports.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
}
