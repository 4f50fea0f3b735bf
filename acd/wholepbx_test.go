package acd_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccpbx/internal/testphone"
)

// TestWholePBXArticle runs the reference article's sequence against the
// real binary with the shipped config.toml (ports made ephemeral): phones
// register, 1001 and 1002 log in by dialing 300, trunk calls to 3000 hear
// music and are answered by the agents in round-robin order with audio
// both ways, and 1001 logs out by dialing 301.
func TestWholePBXArticle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ccpbx binary")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ccpbx")
	build := exec.Command("go", "build", "-o", bin, "./cmd/ccpbx")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
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
	srv.Dir = root
	srv.Stdout, srv.Stderr = &logBuf, &logBuf
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		_ = srv.Wait()
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
	waitUntil(t, "the event socket answers", func() bool {
		return exec.Command(bin, "cli", "-config", cfgPath, "-x", "status").Run() == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	server := fmt.Sprintf("127.0.0.1:%d", internal)
	phones := map[string]*testphone.Phone{}
	for _, u := range []string{"1001", "1002"} {
		p := testphone.New(t)
		p.SetPlan(testphone.Plan{Rings: 1})
		if res, err := p.Register(ctx, server, u, "1234", time.Minute); err != nil || res.StatusCode != 200 {
			t.Fatalf("register %s: %v %v", u, res, err)
		}
		phones[u] = p
	}
	// Log in by dialing 300.
	for _, u := range []string{"1001", "1002"} {
		c, err := phones[u].Dial(ctx, "300")
		if err != nil {
			t.Fatal(err)
		}
		if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
			t.Fatalf("%s dials 300: %d %v", u, code, err)
		}
		waitUntil(t, u+" Available", func() bool { return strings.TrimSpace(cli("callcenter_config agent get status "+u)) == "Available" })
		_ = c.Hangup(ctx)
	}
	// Three trunk calls, one after the other.
	trunkPhone := testphone.New(t)
	var answeredBy []string
	for i := 1; i <= 3; i++ {
		caller, err := trunkPhone.Invite(ctx, fmt.Sprintf("127.0.0.1:%d", trunk), fmt.Sprintf("555000%d", i), "3000")
		if err != nil {
			t.Fatal(err)
		}
		if code, err := caller.WaitFinal(ctx); err != nil || code != 200 {
			t.Fatalf("call %d to 3000: %d %v", i, code, err)
		}
		waitUntil(t, "music on hold reaches the caller", func() bool { return caller.Audio.Packets() > 0 })
		// The agent whose phone rings answers.
		var agent string
		var leg *testphone.Call
		for agent == "" {
			for u, p := range phones {
				sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
				c, err := p.Incoming(sctx)
				scancel()
				if err == nil {
					agent, leg = u, c
					break
				}
			}
			if ctx.Err() != nil {
				t.Fatal("no agent was offered the call")
			}
		}
		if err := leg.Answer(); err != nil {
			t.Fatal(err)
		}
		answeredBy = append(answeredBy, agent)
		// Audio both ways through the bridge.
		if err := caller.Audio.SendUntil(ctx, 0x11, func() bool { return leg.Audio.Received(0x11) > 0 }); err != nil {
			t.Fatalf("caller→agent audio: %v", err)
		}
		if err := leg.Audio.SendUntil(ctx, 0x22, func() bool { return caller.Audio.Received(0x22) > 0 }); err != nil {
			t.Fatalf("agent→caller audio: %v", err)
		}
		_ = caller.Hangup(ctx)
		if err := leg.WaitEnded(ctx); err != nil {
			t.Fatalf("agent leg not ended: %v", err)
		}
		waitUntil(t, agent+" back to Waiting", func() bool { return strings.TrimSpace(cli("callcenter_config agent get state "+agent)) == "Waiting" })
		if i < 3 {
			time.Sleep(11 * time.Second) // wrap-up-time 10 s of the shipped agents
		}
	}
	if answeredBy[0] == answeredBy[1] || answeredBy[1] == answeredBy[2] {
		t.Fatalf("round-robin must alternate, got %v", answeredBy)
	}
	// Log out by dialing 301.
	c, err := phones["1001"].Dial(ctx, "301")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("1001 dials 301: %d %v", code, err)
	}
	waitUntil(t, "1001 Logged Out", func() bool { return strings.TrimSpace(cli("callcenter_config agent get status 1001")) == "Logged Out" })
	_ = c.Hangup(ctx)
	list := cli("callcenter_config agent list")
	if !strings.Contains(list, "\n1001|single_box||callback|[call_timeout=60]user/1001|Logged Out|Waiting|") {
		t.Fatalf("agent list:\n%s", list)
	}
}

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

// waitUntil polls cond; the bound only stops a hung run.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
