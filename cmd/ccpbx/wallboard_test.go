package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// requireTool finds a program the web tests drive (chromium, promtool):
// without it they skip on a developer's machine but fail in CI, which
// installs them (.ci/run).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: CI must install Debian package %s (.ci/run)", name, pkg)
		}
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

// syncBuffer is a process's output, read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// webPBX is the built binary serving the shipped config on free ports with
// [http] on loopback.
type webPBX struct {
	bin, cfg             string
	internal, trunk, web int
	proc                 *exec.Cmd
	log                  *syncBuffer
	exited               chan struct{} // closed when proc has exited; err is then set
	err                  error
}

func (p *webPBX) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", p.web, path) }

func startWebPBX(t *testing.T) *webPBX {
	t.Helper()
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
	var p *webPBX
	pbxtest.RetryAddrInUse(t, 5, func() error {
		p = &webPBX{bin: bin, internal: pbxtest.PortFor(t, "udp", "tcp"), trunk: pbxtest.PortFor(t, "udp", "tcp"),
			web: pbxtest.PortFor(t, "tcp"), log: &syncBuffer{}, exited: make(chan struct{})}
		esl := pbxtest.PortFor(t, "tcp")
		rtp := pbxtest.UDPPortRange(t, 64)
		cfg := string(shipped)
		for _, r := range [][2]string{
			{"port = 5060", fmt.Sprintf("port = %d", p.internal)},
			{"port = 5080", fmt.Sprintf("port = %d", p.trunk)},
			{"127.0.0.1:8021", fmt.Sprintf("127.0.0.1:%d", esl)},
			{`listen_ip = "0.0.0.0"`, `listen_ip = "127.0.0.1"`},
			{`# advertise_ip = ""      # default: auto-detected`, `advertise_ip = "127.0.0.1"`},
			{`data_dir = "data"`, fmt.Sprintf("data_dir = %q", filepath.Join(dir, fmt.Sprint("data", p.web)))},
			{"rtp_start = 16384", fmt.Sprintf("rtp_start = %d", rtp)},
			{"rtp_end = 32767", fmt.Sprintf("rtp_end = %d", rtp+63)},
		} {
			if !strings.Contains(cfg, r[0]) {
				t.Fatalf("shipped config has no %q", r[0])
			}
			cfg = strings.ReplaceAll(cfg, r[0], r[1])
		}
		cfg += fmt.Sprintf("\n[http]\nlisten = \"127.0.0.1:%d\"\n", p.web)
		p.cfg = filepath.Join(dir, "config.toml")
		if err := os.WriteFile(p.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p.proc = exec.Command(bin, "serve", "-config", p.cfg)
		p.proc.Dir = root
		p.proc.Stdout, p.proc.Stderr = p.log, p.log
		if err := p.proc.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = p.proc.Wait(); close(p.exited) }()
		// Up when `ccpbx health` says so (the Docker HEALTHCHECK), or
		// failed when the process exits first.
		for {
			if exec.Command(bin, "health", "-config", p.cfg).Run() == nil {
				return nil
			}
			select {
			case <-p.exited:
				return fmt.Errorf("ccpbx exited: %v\n%s", p.err, p.log.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.proc.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("ccpbx log:\n%s", p.log.String())
		}
	})
	return p
}

func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// artifactsDir is where the browser test leaves its screenshot (CI keeps
// it; git ignores it).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("artifacts")
	if d := os.Getenv("CCPBX_ARTIFACTS"); d != "" {
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestWallboardInBrowser drives headless Chromium against the built binary:
// the wallboard loads, a customer calls queue 3000 over SIP, the waiting
// caller appears, the agent answers and turns "In a queue call", all
// without a reload. Then /metrics passes promtool and counts the call.
func TestWallboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives a browser")
	}
	chromium := requireTool(t, "chromium", "chromium")
	promtool := requireTool(t, "promtool", "prometheus")
	p := startWebPBX(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	agent := testphone.New(t)
	if res, err := agent.Register(ctx, fmt.Sprintf("127.0.0.1:%d", p.internal), "1001", "1234", time.Minute); err != nil || res.StatusCode != 200 {
		t.Fatalf("register 1001: %v %v", res, err)
	}
	// Log in through the REST API, as a supervisor would.
	if code, body := httpDo(t, "POST", p.url("/api/v1/agents/1001/login")); code != 200 || !strings.Contains(body, "+OK") {
		t.Fatalf("login: %d %s", code, body)
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.Navigate(p.url("/"))); err != nil {
		t.Fatalf("load wallboard: %v", err)
	}
	// A mark on this page load: still there at the end means no reload.
	if _, err := chromedp.Run(browser, chromedp.Evaluate[string](`window.__loadMark = "first-load"`)); err != nil {
		t.Fatal(err)
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return s
	}
	// screenshot saves the page as a PNG (quality 100 asks Chromium for PNG).
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		shot := filepath.Join(artifactsDir(t), name)
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", shot)
	}
	agentState := `(document.querySelector('[data-agent="1001"] .state') || {}).textContent || ""`
	pbxtest.WaitFor(t, time.Minute, func() bool { return eval(agentState) == "Waiting" }, "wallboard shows agent 1001 Waiting")

	customer, err := testphone.New(t).Invite(ctx, fmt.Sprintf("127.0.0.1:%d", p.trunk), "5550001", "3000")
	if err != nil {
		t.Fatal(err)
	}
	caller := `(document.querySelector('#callers tr[data-caller="5550001"]') || {}).textContent || ""`
	pbxtest.WaitFor(t, time.Minute, func() bool { return eval(caller) != "" }, "wallboard shows caller 5550001 waiting")
	waiting := `(document.querySelector('[data-queue="3000@default"] .waiting') || {}).textContent || ""`
	if got := eval(waiting); got != "1" {
		t.Errorf("queue 3000@default waiting = %q, want 1", got)
	}
	screenshot("wallboard-waiting.png")

	in, err := agent.Incoming(ctx)
	if err != nil {
		t.Fatalf("agent never rang: %v", err)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	if code, err := customer.WaitFinal(ctx); err != nil || code != 200 {
		t.Fatalf("customer call: %d %v", code, err)
	}
	pbxtest.WaitFor(t, time.Minute, func() bool { return eval(agentState) == "In a queue call" },
		"wallboard shows agent 1001 In a queue call")
	pbxtest.WaitFor(t, time.Minute, func() bool { return eval(caller) == "" }, "the caller leaves the waiting list")
	if got := eval(`window.__loadMark || ""`); got != "first-load" {
		t.Fatalf("the page reloaded (mark %q)", got)
	}

	screenshot("wallboard-in-call.png")

	// A supervisor puts 1002 on break from the wallboard (loopback without
	// credentials may write); the board follows, still without a reload.
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](
		`(() => { const b = document.querySelector('[data-agent="1002"] button[data-status="On Break"]'); if (b) b.click(); return !!b })()`)); err != nil {
		t.Fatal(err)
	}
	status1002 := `(document.querySelector('[data-agent="1002"] .status') || {}).textContent || ""`
	pbxtest.WaitFor(t, time.Minute, func() bool { return eval(status1002) == "On Break" }, "wallboard shows 1002 On Break after its Break button")
	if _, body := httpDo(t, "GET", p.url("/api/v1/agents")); !strings.Contains(body, `"name":"1002"`) || !strings.Contains(body, `"status":"On Break"`) {
		t.Errorf("agent list after the Break button: %s", body)
	}

	code, metrics := httpDo(t, "GET", p.url("/metrics"))
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{
		`ccpbx_queue_calls_offered_total{queue="3000@default"} 1`,
		`ccpbx_queue_calls_answered_total{queue="3000@default"} 1`,
		`ccpbx_queue_wait_seconds_count{outcome="answered",queue="3000@default"} 1`,
		`ccpbx_queue_service_level_ratio{queue="3000@default"} 1`,
		`ccpbx_agent_state{agent="1001",state="In a queue call"} 1`,
		`ccpbx_registrations{profile="internal"} 1`,
		`ccpbx_calls 1`,
		`ccpbx_event_socket_clients `,
		`ccpbx_banned_addresses{listener="sip"} 0`,
		`ccpbx_banned_addresses{listener="event_socket"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := customer.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatalf("agent leg not ended: %v", err)
	}
	cancelBrowser()
	cancelAlloc()
	if err := p.proc.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if p.err != nil {
		t.Fatalf("serve after SIGINT: %v", p.err)
	}
}
