package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// Test timings that shorten the article's agent parameters so the no-answer
// and busy steps stay short (issue #6 allows it). Everything else in the
// test configuration is the shipped config.toml.
const (
	testCallTimeout   = 6  // [call_timeout=N] in the agents' contact (article: 60)
	testWrapUp        = 1  // wrap-up-time (article: 10)
	testBusyDelay     = 20 // busy-delay-time (article: 60)
	testRejectDelay   = 20 // reject-delay-time (article: 30)
	testNoAnswerDelay = 1  // no-answer-delay-time (article: 10)
)

// testRecordTemplate is the queue's record-template in the test config: a
// relative path, so the file lands in recordings_dir.
const testRecordTemplate = "${caller_id_number}.wav"

// TestMain fails the run if a harness goroutine (process waiters, event
// and ctrl readers, RTP peers) outlives the suite.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// repoRoot is the module root (two levels above this package).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's own source file")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// artifactsDir makes this run's folder test/interop/artifacts/run-TIME-PID
// and points test/interop/artifacts/latest at it. Several helpers may run
// `go test ./...` in one working tree at once, so a run never touches
// another run's folder; folders older than an hour are removed.
func artifactsDir(t testing.TB) string {
	t.Helper()
	base := filepath.Join(repoRoot(t), "test", "interop", "artifacts")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatalf("create artifacts: %v", err)
	}
	if old, _ := filepath.Glob(filepath.Join(base, "run-*")); len(old) > 0 {
		for _, d := range old {
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(d)
			}
		}
	}
	name := fmt.Sprintf("run-%s-%d", time.Now().UTC().Format("20060102T150405"), os.Getpid())
	dir := filepath.Join(base, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifacts: %v", err)
	}
	latest := filepath.Join(base, "latest")
	_ = os.Remove(latest)
	_ = os.Symlink(name, latest)
	return dir
}

// requireTools skips (or, under CI=true, fails) when the real SIP software
// is missing: the suite never passes silently without having run.
func requireTools(t *testing.T, tools ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var missing []string
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			missing = append(missing, tool)
			continue
		}
		paths[tool] = p
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("interop suite needs %s on PATH (Debian: apt-get install sip-tester baresip); not found: %s",
			strings.Join(tools, ", "), strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return paths
}

// buildBinary compiles ./cmd/ccpbx into dir.
func buildBinary(t testing.TB, root, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ccpbx")
	// go test puts its own GOROOT/bin first on the PATH of the tests it
	// runs, so "go" is the toolchain that is running this test.
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ccpbx")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup: go build ./cmd/ccpbx failed: %v\n%s", err, out)
	}
	return bin
}

// sipPort is a port for a subprocess's SIP socket (SIP profiles listen on
// UDP and TCP alike): free on both when chosen, bound by the subprocess.
func sipPort(t testing.TB) int {
	t.Helper()
	return pbxtest.PortFor(t, "udp", "tcp")
}

// baresipSIPPort is a quiet SIP port (UDP and TCP) for baresip whose next
// port is free for TCP too: baresip listens for SIP over TLS on
// sip_listen's port + 1.
func baresipSIPPort(t testing.TB) int {
	t.Helper()
	return pbxtest.QuietPorts(t, "127.0.0.1", []string{"udp", "tcp"}, []string{"tcp"})
}

// waitUDPBound waits until some process has a UDP socket bound to port on
// 127.0.0.1 (a sipp UAS about to receive an INVITE), looking in the
// kernel's socket table instead of binding the port, which could steal it
// from the subprocess.
func waitUDPBound(t testing.TB, who string, port int, proc *proc) {
	t.Helper()
	var exited bool
	pbxtest.WaitFor(t, 15*time.Second, func() bool {
		if exited, _ = proc.wait(0); exited {
			return true
		}
		return udpBound(t, port)
	}, "%s to bind UDP port %d", who, port)
	if exited {
		t.Fatalf("%s exited before binding UDP port %d: %v\n%s", who, port, proc.err, tail(proc.outPath, 10))
	}
}

// udpBound reports whether /proc/net/udp lists a socket on 127.0.0.1:port
// or on the wildcard address.
func udpBound(t testing.TB, port int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatalf("read the kernel's UDP socket table: %v", err)
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if local := f[1]; (strings.HasPrefix(local, "0100007F:") || strings.HasPrefix(local, "00000000:")) && strings.HasSuffix(local, suffix) {
			return true
		}
	}
	return false
}

// pbxPorts are the test's ports for the PBX.
type pbxPorts struct {
	Internal, Trunk, ESL, RTPStart, RTPEnd int
}

// rewrite applies one textual change to the shipped config and insists it
// matched exactly want times, so a changed config.toml fails loudly here
// rather than silently testing something else.
func rewrite(t testing.TB, cfg, pattern, repl string, want int) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	if n := len(re.FindAllStringIndex(cfg, -1)); n != want {
		t.Fatalf("setup: test config: pattern %q matched %d times in config.toml, want %d", pattern, n, want)
	}
	return re.ReplaceAllString(cfg, repl)
}

// testConfig turns the shipped config.toml into the test's copy: loopback
// only, the test's ports, data in dataDir, debug logging, the shortened
// agent timings above, and issue 12's records: the queue's calls recorded
// (testRecordTemplate) into dataDir/recordings, the agents' entries without
// status. Nothing else changes.
func testConfig(t testing.TB, shipped string, p pbxPorts, dataDir string) string {
	t.Helper()
	c := shipped
	c = rewrite(t, c, `(?m)^listen_ip = "0\.0\.0\.0"$`, "listen_ip = \"127.0.0.1\"\nadvertise_ip = \"127.0.0.1\"", 2)
	c = rewrite(t, c, `(?m)^port = 5060$`, fmt.Sprintf("port = %d", p.Internal), 1)
	c = rewrite(t, c, `(?m)^port = 5080$`, fmt.Sprintf("port = %d", p.Trunk), 1)
	c = rewrite(t, c, `(?m)^listen = "127\.0\.0\.1:8021"$`, fmt.Sprintf("listen = \"127.0.0.1:%d\"", p.ESL), 1)
	c = rewrite(t, c, `(?m)^rtp_start = \d+$`, fmt.Sprintf("rtp_start = %d", p.RTPStart), 1)
	c = rewrite(t, c, `(?m)^rtp_end = \d+$`, fmt.Sprintf("rtp_end = %d", p.RTPEnd), 1)
	c = rewrite(t, c, `(?m)^data_dir = "[^"]*"$`, fmt.Sprintf("data_dir = %q", dataDir), 1)
	c = rewrite(t, c, `(?m)^log_level = "[^"]*"$`, `log_level = "debug"`, 1)
	c = rewrite(t, c, `\[call_timeout=60\]user/`, fmt.Sprintf("[call_timeout=%d]user/", testCallTimeout), 2)
	c = rewrite(t, c, `(?m)^wrap-up-time = 10$`, fmt.Sprintf("wrap-up-time = %d", testWrapUp), 2)
	c = rewrite(t, c, `(?m)^busy-delay-time = 60$`, fmt.Sprintf("busy-delay-time = %d", testBusyDelay), 2)
	c = rewrite(t, c, `(?m)^reject-delay-time = 30$`, fmt.Sprintf("reject-delay-time = %d", testRejectDelay), 2)
	c = rewrite(t, c, `(?m)^no-answer-delay-time = 10$`, fmt.Sprintf("no-answer-delay-time = %d", testNoAnswerDelay), 2)
	// Issue 12: the queue records its calls into the run's data, and the
	// agents have no status entry, so a restart keeps the stored one (a new
	// agent starts Logged Out, as with the shipped entries).
	c = rewrite(t, c, `(?m)^recordings_dir = "[^"]*"$`, fmt.Sprintf("recordings_dir = %q", filepath.Join(dataDir, "recordings")), 1)
	c = rewrite(t, c, `(?m)^abandoned-resume-allowed = false$`, "abandoned-resume-allowed = false\nrecord-template = \""+strings.ReplaceAll(testRecordTemplate, "$", "$$")+"\"", 1) // $$: a literal $ in a replacement
	c = rewrite(t, c, `(?m)^status = "Logged Out"\n`, "", 2)
	return c
}

// pbx is the running ccpbx process.
type pbx struct {
	t       testing.TB
	bin     string
	cfg     string
	root    string
	ports   pbxPorts
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// startPBX runs `ccpbx serve -config cfg` from the repository root (so the
// shipped relative sounds/ and scripts/ paths resolve) with its log in the
// artifacts, and waits until the event socket answers `status`. An error
// means ccpbx exited during startup; it quotes the log, so
// pbxtest.IsAddrInUse tells a port lost to another process.
func startPBX(t testing.TB, bin, cfg, root, art string, ports pbxPorts) (*pbx, error) {
	t.Helper()
	p := &pbx{t: t, bin: bin, cfg: cfg, root: root, ports: ports, logPath: filepath.Join(art, "ccpbx.log"), exited: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	p.cmd = exec.Command(bin, "serve", "-config", cfg)
	p.cmd.Dir = root
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("setup: start ccpbx: %v", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	t.Cleanup(p.stop)

	// The event socket accepting a connection is cheap to poll; `status`
	// through `ccpbx cli` then proves the PBX answers commands.
	var exited bool
	up := pbxtest.Until(20*time.Second, func() bool {
		select {
		case <-p.exited:
			exited = true
			return true
		default:
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports.ESL))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if exited {
		return nil, fmt.Errorf("ccpbx exited during startup (%v); log tail:\n%s", p.exitErr, tail(p.logPath, 30))
	}
	if !up {
		t.Fatalf("setup: ccpbx did not open its event socket on port %d within 20s; log tail:\n%s", ports.ESL, tail(p.logPath, 30))
	}
	if out, err := p.cli(20*time.Second, "status"); err != nil {
		t.Fatalf("setup: ccpbx does not answer `status` on the event socket: %v: %s\nlog tail:\n%s", err, out, tail(p.logPath, 30))
	}
	return p, nil
}

// stop sends SIGTERM (the PBX hangs up live calls and exits within 5 s, as
// issue #2 requires) and kills it if it does not.
func (p *pbx) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(6 * time.Second):
		p.t.Errorf("teardown: ccpbx did not exit within 6s of SIGTERM; killed")
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cli runs `ccpbx cli -config CFG -x CMD` and returns its stdout.
func (p *pbx) cli(timeout time.Duration, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "cli", "-config", p.cfg, "-x", command)
	cmd.Dir = p.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("ccpbx cli -x %q: %w (stderr: %s)", command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mustCLI is cli for a step: a failure names the step and the command.
func (p *pbx) mustCLI(t testing.TB, step, command string) string {
	t.Helper()
	out, err := p.cli(10*time.Second, command)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return out
}

// tail returns the last n lines of a file (for failure messages).
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// proc is a helper process (sipp, baresip, the event listener) whose output
// goes to the artifacts.
type proc struct {
	name    string
	cmd     *exec.Cmd
	outPath string
	done    chan struct{}
	err     error
	once    sync.Once
}

func startProc(t testing.TB, name, outPath, dir string, argv ...string) *proc {
	t.Helper()
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &proc{name: name, outPath: outPath, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: start %s: %v", name, argv[0], err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// wait waits for the process to exit; ok means exit status 0.
func (p *proc) wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, errors.New("still running")
	}
}

// kill ends this process (by its own pid) if it still runs.
func (p *proc) kill() {
	p.once.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// exitCode is the process's exit status (-1 while running or if killed).
func (p *proc) exitCode() int {
	select {
	case <-p.done:
	default:
		return -1
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func itoa(i int) string { return strconv.Itoa(i) }

func newCmd(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
