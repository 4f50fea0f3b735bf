//go:build cluster

package cluster

// The harness: the processes of a cluster on loopback addresses, each
// started by the test, known by its pid and stopped (or SIGKILLed on
// purpose) only through it.
//
//	127.0.0.1:random   PostgreSQL (store/pgtest: a throwaway server per test binary)
//	127.0.0.10         Kamailio, the shipped packaging/kamailio/kamailio.cfg
//	127.0.0.11, .12    ccpbx nodes n1 and n2 (the shipped config.toml, rewritten)
//	127.0.0.1          phones: sipp agents, Go agents and trunk callers

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ccpbx/internal/pbxtest"
	"ccpbx/store/pgtest"
)

const (
	kamIP = "127.0.0.10"
	// kamailioModules is where Debian's kamailio package keeps its modules.
	kamailioModules = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
	// The cluster's lease in the test (scale-out.md §4.8).
	leaseTTL      = 2 * time.Second
	renewInterval = 500 * time.Millisecond
	wrapUp        = 1 // seconds, every agent
)

var nodeIPs = map[string]string{"n1": "127.0.0.11", "n2": "127.0.0.12"}

// TestMain fails the run if a harness goroutine outlives the tests.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// need finds a tool on PATH; without it the test skips, or fails under
// CI=true (.ci/run installs it).
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		msg := fmt.Sprintf("the cluster test needs %s on PATH (Debian: apt-get install %s)", tool, pkg)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return p
}

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

// artifacts is this test's folder test/cluster/artifacts/NAME-TIME-PID
// (kept after the run; older than an hour: removed), with "latest-NAME"
// pointing at it.
func artifacts(t testing.TB, root, name string) string {
	t.Helper()
	base := filepath.Join(root, "test", "cluster", "artifacts")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if old, _ := filepath.Glob(filepath.Join(base, "*-*T*-*")); len(old) > 0 {
		for _, d := range old {
			if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(d)
			}
		}
	}
	dirName := fmt.Sprintf("%s-%s-%d", name, time.Now().UTC().Format("20060102T150405"), os.Getpid())
	dir := filepath.Join(base, dirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	latest := filepath.Join(base, "latest-"+name)
	_ = os.Remove(latest)
	_ = os.Symlink(dirName, latest)
	return dir
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// binary builds ./cmd/ccpbx once per test binary into
// test/cluster/artifacts/bin (CCPBX_BIN: use that one).
func binary(t *testing.T, root string) string {
	t.Helper()
	if b := os.Getenv("CCPBX_BIN"); b != "" {
		return b
	}
	buildOnce.Do(func() {
		// One place, overwritten by the next run (a temporary folder would
		// outlive the test binary: nothing removes it after both tests).
		buildDir = filepath.Join(root, "test", "cluster", "artifacts", "bin")
		if buildErr = os.MkdirAll(buildDir, 0o755); buildErr != nil {
			return
		}
		// Built beside and renamed into place: another run may be
		// executing the previous binary.
		builtBin = filepath.Join(buildDir, "ccpbx")
		tmp := fmt.Sprintf("%s.%d", builtBin, os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, "./cmd/ccpbx")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			buildErr = fmt.Errorf("go build ./cmd/ccpbx: %v\n%s", err, out)
			return
		}
		buildErr = os.Rename(tmp, builtBin)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// proc is a process the test started; its output goes to a file.
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
	f, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
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
	t.Cleanup(p.stop)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process by its own pid: SIGTERM, SIGKILL after 6 s.
func (p *proc) stop() {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(6 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// kill9 is the chaos: SIGKILL, and wait until the process is gone.
func (p *proc) kill9() {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

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

// rewrite applies one change to the shipped config and insists it matched
// exactly want times, so a changed config.toml fails here loudly.
func rewrite(t testing.TB, cfg, pattern, repl string, want int) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	if n := len(re.FindAllStringIndex(cfg, -1)); n != want {
		t.Fatalf("setup: pattern %q matched %d times in config.toml, want %d", pattern, n, want)
	}
	return re.ReplaceAllLiteralString(cfg, repl)
}

// node is one ccpbx node: its config, ports and current process.
type node struct {
	id, ip          string
	internal, trunk int
	esl, http       int
	cfg, log        string
	bin, root       string
	proc            *proc
	starts          int
	// diag writes the diagnostics if the test failed (cluster.diagnose);
	// registered again at each start, so it runs before any of the
	// test's processes is stopped (cleanups run last-in first-out).
	diag func()
}

// Ports of the nodes and of Kamailio. pbxtest.PortFor asks the kernel for
// a free port on 127.0.0.1, but the nodes listen on 127.0.0.11/.12 and
// Kamailio on .10: its check says nothing of those addresses, and as each
// call releases its port, two calls (a node's esl and http) may return the
// same number, and any process's outgoing connection may take an
// ephemeral port before the node binds it. quietPort chooses below the
// kernel's ephemeral range (32768 up) and ccpbx's RTP range (16384 up),
// free on the very address and networks the process will bind, and never
// the same number twice in this test binary (pbxtest.QuietPorts).
func quietPort(t testing.TB, ip string, networks ...string) int {
	t.Helper()
	return pbxtest.QuietPorts(t, ip, networks)
}

// cluster is the test's processes.
type cluster struct {
	t        *testing.T
	root     string
	art      string
	bin      string
	dsn      string
	kam      *proc
	phones   string // Kamailio's phone side, host:port
	trunks   string // Kamailio's trunk side
	nodes    []*node
	diagOnce sync.Once
}

// extraAgents adds the agents beyond the shipped 1001 and 1002 to a
// config: each a directory user, an agent and a tier in the shipped
// entries' form.
func extraAgents(cfg string, names []string) string {
	var b strings.Builder
	b.WriteString(cfg)
	for _, n := range names {
		if n == "1001" || n == "1002" {
			continue
		}
		fmt.Fprintf(&b, `
[[directory.user]]
id = "%[1]s"
[directory.user.params]
password = "1234"
[directory.user.variables]
user_context = "default"
effective_caller_id_name = "Extension %[1]s"
effective_caller_id_number = "%[1]s"

[[callcenter.agent]]
name = "%[1]s"
type = "callback"
contact = "[call_timeout=6]user/%[1]s"
max-no-answer = 3
wrap-up-time = %[2]d
reject-delay-time = 20
busy-delay-time = 20
no-answer-delay-time = 1

[[callcenter.tier]]
agent = "%[1]s"
queue = "3000@default"
level = 1
position = 1
`, n, wrapUp)
	}
	return b.String()
}

// nodeConfig is the shipped config.toml for one node: its address and
// ports, its data, the shared database, [cluster] with the test's lease,
// shorter agent timers (as the interop suite's), agents keeping their
// stored status across restarts, and abandoned callers resumed when they
// call back (abandoned-resume-allowed).
func nodeConfig(t *testing.T, shipped string, n *node, dir, dsn string, rtpStart int, agents []string) string {
	c := shipped
	c = rewrite(t, c, `(?m)^listen_ip = "0\.0\.0\.0"$`, fmt.Sprintf("listen_ip = %q\nadvertise_ip = %q", n.ip, n.ip), 2)
	c = rewrite(t, c, `(?m)^port = 5060$`, fmt.Sprintf("port = %d", n.internal), 1)
	c = rewrite(t, c, `(?m)^port = 5080$`, fmt.Sprintf("port = %d", n.trunk), 1)
	c = rewrite(t, c, `(?m)^listen = "127\.0\.0\.1:8021"$`, fmt.Sprintf("listen = \"%s:%d\"", n.ip, n.esl), 1)
	c = rewrite(t, c, `(?m)^rtp_start = \d+$`, fmt.Sprintf("rtp_start = %d", rtpStart), 1)
	c = rewrite(t, c, `(?m)^rtp_end = \d+$`, fmt.Sprintf("rtp_end = %d", rtpStart+399), 1)
	c = rewrite(t, c, `(?m)^data_dir = "[^"]*"$`, fmt.Sprintf("data_dir = %q", dir), 1)
	c = rewrite(t, c, `(?m)^recordings_dir = "[^"]*"$`, fmt.Sprintf("recordings_dir = %q", filepath.Join(dir, "recordings")), 1)
	c = rewrite(t, c, `(?m)^log_level = "[^"]*"$`, `log_level = "debug"`, 1)
	c = rewrite(t, c, `(?m)^driver = "sqlite"$`, fmt.Sprintf("driver = \"postgres\"\ndsn = %q", dsn), 1)
	c = rewrite(t, c, `\[call_timeout=60\]user/`, "[call_timeout=6]user/", 2)
	c = rewrite(t, c, `(?m)^wrap-up-time = 10$`, fmt.Sprintf("wrap-up-time = %d", wrapUp), 2)
	c = rewrite(t, c, `(?m)^busy-delay-time = 60$`, "busy-delay-time = 20", 2)
	c = rewrite(t, c, `(?m)^reject-delay-time = 30$`, "reject-delay-time = 20", 2)
	c = rewrite(t, c, `(?m)^no-answer-delay-time = 10$`, "no-answer-delay-time = 1", 2)
	c = rewrite(t, c, `(?m)^status = "Logged Out"\n`, "", 2)
	c = rewrite(t, c, `(?m)^abandoned-resume-allowed = false$`, "abandoned-resume-allowed = true", 1)
	c += fmt.Sprintf(`
# ---------------------------------------------------------------- test/cluster
[http]
listen = "%s:%d"

[cluster]
node_id = %q
lease_ttl = %q
renew_interval = %q
`, n.ip, n.http, n.id, leaseTTL, renewInterval)
	return extraAgents(c, agents)
}

// newCluster starts PostgreSQL (a fresh database), two nodes and Kamailio
// in front of them, with the agents given configured on both nodes.
func newCluster(t *testing.T, name string, agents []string) *cluster {
	t.Helper()
	kam := need(t, "kamailio", "kamailio")
	root := repoRoot(t)
	c := &cluster{t: t, root: root, art: artifacts(t, root, name)}
	c.dsn = pgtest.NewDatabase(t) // skips, or fails under CI=true, without PostgreSQL
	c.bin = binary(t, root)
	shipped, err := os.ReadFile(filepath.Join(root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2"} {
		n := &node{id: id, ip: nodeIPs[id], bin: c.bin, root: root}
		n.internal, n.trunk = quietPort(t, n.ip, "udp", "tcp"), quietPort(t, n.ip, "udp", "tcp")
		n.esl, n.http = quietPort(t, n.ip, "tcp"), quietPort(t, n.ip, "tcp")
		dir := t.TempDir()
		n.cfg = filepath.Join(dir, "config.toml")
		n.log = filepath.Join(c.art, id+".log")
		rtp := pbxtest.UDPPortRange(t, 400)
		if err := os.WriteFile(n.cfg, []byte(nodeConfig(t, string(shipped), n, filepath.Join(dir, "data"), c.dsn, rtp, agents)), 0o644); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	if out, err := exec.Command(c.bin, "check", "-config", c.nodes[0].cfg).CombinedOutput(); err != nil {
		t.Fatalf("setup: ccpbx check of the node's config: %v\n%s", err, out)
	}
	for _, n := range c.nodes {
		n.diag = c.diagnose
		n.start(t)
	}
	for _, n := range c.nodes {
		n.waitUp(t)
	}
	c.startKamailio(t, kam)
	t.Cleanup(c.diagnose)
	return c
}

// diagnose writes artifacts/…/diagnostics.txt once when the test failed:
// each live node's `cluster acd` (the ACD loop's own view of every agent:
// claim flags, holds, last_offered_call, mirror reads), `cluster status`
// and agent/tier/member listings, the shared rows in PostgreSQL, and the
// tail of every node's log (the whole logs stay beside it).
func (c *cluster) diagnose() {
	if !c.t.Failed() {
		return
	}
	c.diagOnce.Do(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "diagnostics of %s at %s\n", c.t.Name(), time.Now().Format("15:04:05.000"))
		for _, n := range c.nodes {
			if n.proc == nil || n.proc.exited() {
				fmt.Fprintf(&b, "\n===== %s: not running\n", n.id)
				continue
			}
			for _, cmd := range []string{"cluster acd", "cluster status", "callcenter_config agent list",
				"callcenter_config tier list", "callcenter_config member list"} {
				out, err := n.cli(10*time.Second, cmd)
				fmt.Fprintf(&b, "\n===== %s: %s\n%s", n.id, cmd, out)
				if err != nil {
					fmt.Fprintf(&b, "(error: %v)\n", err)
				}
			}
		}
		for _, q := range []string{
			"SELECT name, status, state, last_offered_call, last_bridge_end, ready_time, instance_id FROM agents ORDER BY name",
			"SELECT queue, agent, state, level, position FROM tiers ORDER BY queue, agent",
			"SELECT * FROM cc_claims",
			"SELECT queue, uuid, instance_id, state, joined_epoch, serving_agent FROM members ORDER BY joined_epoch",
		} {
			rows, err := c.query(q)
			fmt.Fprintf(&b, "\n===== PostgreSQL: %s\n", q)
			if err != nil {
				fmt.Fprintf(&b, "(error: %v)\n", err)
			}
			for _, r := range rows {
				b.WriteString(strings.Join(r, "|") + "\n")
			}
		}
		for _, n := range c.nodes {
			fmt.Fprintf(&b, "\n===== %s log, claims and mirror (last 300 such lines of %s)\n%s\n", n.id, n.log,
				grepTail(n.log, regexp.MustCompile(`claim|mirror|cluster|resync|fenced`), 300))
			fmt.Fprintf(&b, "\n===== %s log (last 300 lines)\n%s\n", n.id, tail(n.log, 300))
		}
		if c.kam != nil {
			fmt.Fprintf(&b, "\n===== kamailio log (last 50 lines)\n%s\n", tail(c.kam.outPath, 50))
		}
		path := filepath.Join(c.art, "diagnostics.txt")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			c.t.Logf("diagnostics not written: %v", err)
			return
		}
		c.t.Logf("diagnostics (cluster acd of each node, shared rows, logs): %s", path)
	})
}

// grepTail is the last n lines of the file at path that match re.
func grepTail(path string, re *regexp.Regexp, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if re.MatchString(l) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start runs `ccpbx serve` for the node, from the repository root (the
// shipped relative sounds/ and scripts/ paths), appending to its log.
func (n *node) start(t *testing.T) {
	t.Helper()
	n.starts++
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		fmt.Fprintf(f, "\n===== test: start %d of %s at %s\n", n.starts, n.id, time.Now().Format("15:04:05.000"))
		f.Close()
	}
	n.proc = startProc(t, n.id, n.log, n.root, n.bin, "serve", "-config", n.cfg)
	if n.diag != nil {
		t.Cleanup(n.diag)
	}
}

// waitUp waits until the node answers `status` on its event socket.
func (n *node) waitUp(t *testing.T) {
	t.Helper()
	pbxtest.WaitFor(t, 30*time.Second, func() bool {
		if n.proc.exited() {
			t.Fatalf("%s exited during startup: %v\n%s", n.id, n.proc.err, tail(n.log, 30))
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", n.ip, n.esl), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		_, err = n.cli(5*time.Second, "status")
		return err == nil
	}, "%s to answer `status` on its event socket", n.id)
}

// cli runs `ccpbx cli -config CFG -x CMD` against the node.
func (n *node) cli(timeout time.Duration, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, "cli", "-config", n.cfg, "-x", command)
	cmd.Dir = n.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: ccpbx cli -x %q: %w (stderr: %s)", n.id, command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (n *node) mustCLI(t *testing.T, command string) string {
	t.Helper()
	out, err := n.cli(10*time.Second, command)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startKamailio runs the shipped kamailio.cfg on kamIP with a generated
// node list: trunk calls round-robin over both nodes (DS_TRUNK_ALG=4),
// phones to n1, or n2 while n1 is down.
func (c *cluster) startKamailio(t *testing.T, bin string) {
	t.Helper()
	dir := t.TempDir()
	n1, n2 := c.nodes[0], c.nodes[1]
	list := fmt.Sprintf("1 sip:%s:%d 0 10\n1 sip:%s:%d 0 10\n2 sip:%s:%d 0 10\n2 sip:%s:%d 0 5\n",
		n1.ip, n1.trunk, n2.ip, n2.trunk, n1.ip, n1.internal, n2.ip, n2.internal)
	listPath := filepath.Join(dir, "dispatcher.list")
	if err := os.WriteFile(listPath, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	phonePort, trunkPort := quietPort(t, kamIP, "udp", "tcp"), quietPort(t, kamIP, "udp", "tcp")
	c.phones, c.trunks = fmt.Sprintf("%s:%d", kamIP, phonePort), fmt.Sprintf("%s:%d", kamIP, trunkPort)
	c.kam = startProc(t, "kamailio", filepath.Join(c.art, "kamailio.log"), dir, bin,
		"-f", filepath.Join(c.root, "packaging", "kamailio", "kamailio.cfg"),
		"-DD", "-E", "-L", kamailioModules, "-w", dir, "-Y", dir, "-m", "64", "-M", "8",
		"-A", "KAM_IP="+kamIP, "-A", fmt.Sprintf("PHONE_PORT=%d", phonePort),
		"-A", fmt.Sprintf("TRUNK_PORT=%d", trunkPort), "-A", fmt.Sprintf("DS_LIST=%q", listPath),
		"-A", "DS_PING_INTERVAL=1", "-A", "DS_TRUNK_ALG=4", "-A", "NODE_FR_TIMER=1000")
}

// agentRow is a row of `callcenter_config agent list`.
type agentRow struct{ status, state, instance string }

// agents lists the agents as one node sees them.
func (n *node) agents(t *testing.T) (map[string]agentRow, error) {
	out, err := n.cli(10*time.Second, "callcenter_config agent list")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "name|") {
		return nil, fmt.Errorf("%s: agent list: %q", n.id, out)
	}
	cols := strings.Split(lines[0], "|")
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	rows := map[string]agentRow{}
	for _, l := range lines[1:] {
		f := strings.Split(l, "|")
		if len(f) != len(cols) {
			continue // "+OK" and the like
		}
		rows[f[idx["name"]]] = agentRow{status: f[idx["status"]], state: f[idx["state"]], instance: f[idx["instance_id"]]}
	}
	return rows, nil
}

// query runs one SQL query on the cluster's database and returns its rows
// as text.
func (c *cluster) query(sql string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		r := make([]string, len(vals))
		for i, v := range vals {
			r[i] = fmt.Sprint(v)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// live returns the nodes whose process runs.
func (c *cluster) live() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n.proc != nil && !n.proc.exited() {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) logs() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "\n----- %s log (%s):\n%s\n", n.id, n.log, tail(n.log, 20))
	}
	fmt.Fprintf(&b, "\n----- kamailio log:\n%s\n", tail(c.kam.outPath, 10))
	return b.String()
}
