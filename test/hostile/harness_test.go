package hostile

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// The harness follows test/interop's (build the binary, run it from the
// repository root on a rewritten copy of the shipped config.toml, talk to
// it through `ccpbx cli` and SIP), cut down to what the attacks need; the
// binary is built once for the package.

func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// lazy describes a WaitFor failure with the state at that moment.
type lazy func() string

func (l lazy) String() string { return l() }

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// buildBinary compiles ./cmd/ccpbx into dir.
func buildBinary(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ccpbx")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ccpbx")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ccpbx: %v\n%s", err, out)
	}
	return bin
}

// settings are what a test changes in the shipped config beyond ports.
type settings struct {
	// trunkExtra is appended to the trunk profile.
	trunkExtra string
	// trunkCPS replaces the trunk's calls_per_second_per_ip (30) when set.
	trunkCPS int
	// nofile, when set, runs ccpbx with that descriptor limit (ulimit -n).
	nofile int
}

type pbx struct {
	t               testing.TB
	bin, cfg, root  string
	log             string
	internal, trunk int
	esl, http       int
	cmd             *exec.Cmd
	exited          chan struct{}
	exitErr         error
	baselineFDs     int
	baselineList    string
	baselineGor     int
	agent           *testphone.Phone
}

func rewrite(t testing.TB, cfg, pattern, repl string, want int) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	if n := len(re.FindAllStringIndex(cfg, -1)); n != want {
		t.Fatalf("setup: pattern %q matched %d times in config.toml, want %d", pattern, n, want)
	}
	return re.ReplaceAllString(cfg, repl)
}

// startPBX runs ccpbx on 127.0.0.1 with free ports, registers agent 1001
// (a test phone that answers) and makes it Available in queue 3000.
func startPBX(t *testing.T, bin string, s settings) *pbx {
	t.Helper()
	root := repoRoot(t)
	shipped, err := os.ReadFile(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var p *pbx
	pbxtest.RetryAddrInUse(t, 3, func() error {
		p = &pbx{t: t, bin: bin, root: root, log: filepath.Join(dir, "ccpbx.log"), exited: make(chan struct{})}
		p.internal, p.trunk, p.esl = pbxtest.PortFor(t, "udp", "tcp"), pbxtest.PortFor(t, "udp", "tcp"), pbxtest.PortFor(t, "tcp")
		p.http = pbxtest.PortFor(t, "tcp")
		rtp := pbxtest.UDPPortRange(t, 200)
		c := string(shipped)
		c = rewrite(t, c, `(?m)^listen_ip = "0\.0\.0\.0"$`, "listen_ip = \"127.0.0.1\"\nadvertise_ip = \"127.0.0.1\"", 2)
		c = rewrite(t, c, `(?m)^port = 5060$`, fmt.Sprintf("port = %d", p.internal), 1)
		c = rewrite(t, c, `(?m)^port = 5080$`, fmt.Sprintf("port = %d", p.trunk), 1)
		c = rewrite(t, c, `(?m)^listen = "127\.0\.0\.1:8021"$`, fmt.Sprintf("listen = \"127.0.0.1:%d\"", p.esl), 1)
		c = rewrite(t, c, `(?m)^rtp_start = \d+$`, fmt.Sprintf("rtp_start = %d", rtp), 1)
		c = rewrite(t, c, `(?m)^rtp_end = \d+$`, fmt.Sprintf("rtp_end = %d", rtp+199), 1)
		c = rewrite(t, c, `(?m)^data_dir = "[^"]*"$`, fmt.Sprintf("data_dir = %q", filepath.Join(dir, "data")), 1)
		c = rewrite(t, c, `(?m)^log_level = "[^"]*"$`, `log_level = "debug"`, 1)
		// The agent is offered again soon after a call.
		c = rewrite(t, c, `(?m)^wrap-up-time = 10$`, "wrap-up-time = 0", 2)
		c = rewrite(t, c, `(?m)^max_calls_per_ip = 500$`, "max_calls_per_ip = 500\n"+s.trunkExtra, 1)
		if s.trunkCPS > 0 {
			c = rewrite(t, c, `(?m)^calls_per_second_per_ip = 30$`, fmt.Sprintf("calls_per_second_per_ip = %d", s.trunkCPS), 1)
		}
		// The HTTP server, on a port of its own (on the default one two
		// processes and other tests would collide), only for its Go
		// runtime profiles: the goroutine count after each attack.
		c += fmt.Sprintf("\n[http]\nlisten = \"127.0.0.1:%d\"\npprof = true\n", p.http)
		p.cfg = filepath.Join(dir, "config.toml")
		if err := os.WriteFile(p.cfg, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		return p.start(s.nofile)
	})
	p.agent = testphone.New(t)
	p.agent.SetPlan(testphone.AutoAnswer)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := p.agent.Register(ctx, p.addr(p.internal), "1001", "1234", time.Hour); err != nil || res.StatusCode != 200 {
		t.Fatalf("register agent 1001: %v %v", res, err)
	}
	p.mustCLI("callcenter_config agent set status 1001 Available")
	// The first queue calls open what ccpbx opens lazily (database pages,
	// CDR and queue_log files), so the descriptor baseline is taken after
	// them.
	p.queueCall(t)
	p.queueCall(t)
	p.baselineFDs = p.fds()
	p.baselineList = p.fdList()
	p.baselineGor = p.goroutines(t)
	return p
}

func (p *pbx) addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func (p *pbx) start(nofile int) error {
	logf, err := os.Create(p.log)
	if err != nil {
		p.t.Fatal(err)
	}
	argv := []string{p.bin, "serve", "-config", p.cfg}
	if nofile > 0 {
		// Hard and soft limit both, so Go's start-up cannot raise it.
		argv = append([]string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)}, argv...)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = p.root
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	p.t.Cleanup(p.stop)
	exited := false
	up := pbxtest.Until(20*time.Second, func() bool {
		select {
		case <-p.exited:
			exited = true
			return true
		default:
		}
		c, err := net.Dial("tcp", p.addr(p.esl))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if exited {
		return fmt.Errorf("ccpbx exited during startup (%v):\n%s", p.exitErr, p.tail(30))
	}
	if !up {
		p.t.Fatalf("ccpbx did not open its event socket within 20s:\n%s", p.tail(30))
	}
	return nil
}

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
		p.t.Errorf("ccpbx did not exit within 6s of SIGTERM; killed")
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *pbx) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *pbx) cli(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "cli", "-config", p.cfg, "-x", command)
	cmd.Dir = p.root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("ccpbx cli -x %q: %w (%s)", command, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (p *pbx) mustCLI(command string) string {
	p.t.Helper()
	out, err := p.cli(command)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// fdList names the descriptors ccpbx has open (for failure messages).
func (p *pbx) fdList() string {
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+"→"+target)
	}
	return strconv.Itoa(len(out)) + ": " + strings.Join(out, " ")
}

// fds is how many descriptors the ccpbx process has open, not counting
// the database's files: how many connections database/sql keeps open (up
// to two idle ones by default, each with the file and its WAL) follows how
// many queries ran at once, not any attack.
func (p *pbx) fds() int {
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		p.t.Fatalf("read ccpbx's descriptors: %v", err)
	}
	n := 0
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if !strings.Contains(filepath.Base(target), "ccpbx.db") {
			n++
		}
	}
	return n
}

// queueCall is a normal customer call: the trunk delivers it to queue
// 3000, agent 1001 is offered it and answers, the customer hangs up.
func (p *pbx) queueCall(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caller := testphone.New(t)
	var c *testphone.Call
	for attempt := 1; ; attempt++ {
		var err error
		c, err = caller.Invite(ctx, p.addr(p.trunk), "5551234", "3000")
		if err != nil {
			t.Fatalf("queue call: %v", err)
		}
		code, err := c.WaitFinal(ctx)
		if err != nil {
			// No final response: there is no Final to look at.
			t.Fatalf("queue call: %v\n%s", err, p.tail(20))
		}
		if code == 200 {
			break
		}
		// Right after an attack the trunk's call rate may still be spent:
		// do what a carrier does with 503 and Retry-After.
		if ra := c.Final().GetHeader("Retry-After"); code == 503 && ra != nil && attempt < 3 {
			secs, _ := strconv.Atoi(ra.Value())
			time.Sleep(time.Duration(secs) * time.Second)
			continue
		}
		t.Fatalf("queue call answered %d, %v\n%s", code, err, p.tail(20))
	}
	if _, err := p.agent.Incoming(ctx); err != nil {
		t.Fatalf("queue call never reached agent 1001: %v\n%s", err, p.tail(20))
	}
	if err := c.Hangup(ctx); err != nil {
		t.Fatalf("queue call hangup: %v", err)
	}
	p.waitNoChannels(t)
}

func (p *pbx) waitNoChannels(t *testing.T) {
	t.Helper()
	var last string
	pbxtest.WaitFor(t, 20*time.Second, func() bool {
		out, err := p.cli("show channels count")
		last = out
		return err == nil && strings.TrimSpace(out) == "0 total."
	}, "show channels count to return to 0 (last %v)", lazy(func() string { return strconv.Quote(last) }))
}

// recovered is the check after every attack: no channel left, descriptors
// and goroutines back to the baseline, and a normal queue call still
// works.
func (p *pbx) recovered(t *testing.T) {
	t.Helper()
	p.waitNoChannels(t)
	var n int
	pbxtest.WaitFor(t, 20*time.Second, func() bool { n = p.fds(); return n <= p.baselineFDs },
		"descriptors back to the baseline %d (now %v; baseline %v)", p.baselineFDs, lazy(p.fdList), p.baselineList)
	// Exactly the baseline, not within a tolerance: sipgo's transaction
	// timers are time.AfterFunc (no goroutine while pending), a closed
	// TCP connection's reader ends with it, and each count is taken the
	// same way (one HTTP request being served, no idle keep-alive
	// connection). What an attack leaves behind for longer than the wait
	// (sipgo's Timer H/J, 64·T1 = 32 s) is a leak.
	var g int
	pbxtest.WaitFor(t, 40*time.Second, func() bool { g = p.goroutines(t); return g <= p.baselineGor },
		"goroutines back to the baseline %d (now %v)", p.baselineGor, lazy(func() string {
			dump, err := p.goroutineProfile()
			return fmt.Sprintf("%d; %v\n%s", g, err, dump)
		}))
	t.Logf("goroutines %d (baseline %d)", g, p.baselineGor)
	p.queueCall(t)
}

// goroutineProfile fetches /debug/pprof/goroutine?debug=1 (counts, then
// goroutines grouped by stack) on a connection of its own, closed after
// the answer.
func (p *pbx) goroutineProfile() (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get("http://" + p.addr(p.http) + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return string(body), err
}

// goroutines is ccpbx's goroutine count: the first line of the profile,
// "goroutine profile: total N".
func (p *pbx) goroutines(t *testing.T) int {
	t.Helper()
	body, err := p.goroutineProfile()
	if err != nil {
		t.Fatalf("goroutine profile: %v", err)
	}
	line, _, _ := strings.Cut(body, "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
	if err != nil {
		t.Fatalf("goroutine profile's first line %q", line)
	}
	return n
}
