package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// modeslVersion is the npm modesl release the test drives.
const modeslVersion = "1.2.1"

// eslMsg is one line the modesl client prints.
type eslMsg struct {
	T        string            `json:"t"`
	ID       int               `json:"id"`
	Name     string            `json:"name"`
	Headers  map[string]string `json:"headers"`
	Count    int               `json:"count"`
	Body     string            `json:"body"`
	App      string            `json:"app"`
	UUID     string            `json:"uuid"`
	Response string            `json:"response"`
	Dest     string            `json:"dest"`
	Error    string            `json:"error"`
}

// modesl is the running node client (test/interop/modesl/client.js).
type modesl struct {
	t     *testing.T
	stdin io.WriteCloser
	mu    sync.Mutex
	msgs  []eslMsg
	cond  chan struct{} // closed and replaced on every new message
	next  int
}

// installModesl puts the npm modesl package into a temporary directory
// with npm, as a FreeSWITCH user would, and returns its node_modules.
func installModesl(t *testing.T) string {
	dir := t.TempDir()
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--prefix", dir, "modesl@"+modeslVersion)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("npm install modesl@%s: %v\n%s", modeslVersion, err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return filepath.Join(dir, "node_modules")
}

func startModesl(t *testing.T, e *env, outboundPort int, password string) *modesl {
	nodeModules := installModesl(t)
	script := filepath.Join(e.root, "test", "interop", "modesl", "client.js")
	cmd := exec.Command(e.tools["node"], script, "127.0.0.1", itoa(e.ports.ESL), password, itoa(outboundPort))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(e.art, "modesl.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &modesl{t: t, stdin: stdin, cond: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			var msg eslMsg
			if json.Unmarshal(sc.Bytes(), &msg) != nil {
				continue
			}
			m.mu.Lock()
			m.msgs = append(m.msgs, msg)
			close(m.cond)
			m.cond = make(chan struct{})
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		m.send(map[string]any{"op": "quit"})
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = cmd.Wait()
		logf.Close()
	})
	return m
}

func (m *modesl) send(v map[string]any) {
	b, _ := json.Marshal(v)
	_, _ = m.stdin.Write(append(b, '\n'))
}

// waitFor returns the first message at or after index from that matches.
func (m *modesl) waitFor(from int, timeout time.Duration, what string, match func(eslMsg) bool) (eslMsg, int) {
	m.t.Helper()
	deadline := time.After(timeout)
	for i := from; ; {
		m.mu.Lock()
		for ; i < len(m.msgs); i++ {
			if match(m.msgs[i]) {
				msg := m.msgs[i]
				m.mu.Unlock()
				return msg, i
			}
		}
		wake := m.cond
		m.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			m.t.Fatalf("modesl: no %s within %s", what, timeout)
		}
	}
}

func (m *modesl) mark() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

func (m *modesl) api(cmd string) string {
	m.t.Helper()
	m.next++
	id := m.next
	from := m.mark()
	m.send(map[string]any{"op": "api", "id": id, "cmd": cmd})
	msg, _ := m.waitFor(from, 20*time.Second, "reply to api "+cmd, func(x eslMsg) bool { return x.T == "api" && x.ID == id })
	return msg.Body
}

// legEvents lists the event names about one channel from index from on.
func (m *modesl) legEvents(from int, uuid string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, x := range m.msgs[from:] {
		if x.T == "event" && x.Headers["Unique-ID"] == uuid && x.Name != "CUSTOM" {
			out = append(out, x.Name)
		}
	}
	return out
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// modeslConfig adds the extensions the test dials on the trunk: 4000
// parks, 5000 hands the call to the outbound socket program.
func modeslConfig(t *testing.T, cfg string, outboundPort int) string {
	ext := fmt.Sprintf(`name = "blueivr"

[[dialplan.context.extension]]
name = "park_4000"
[[dialplan.context.extension.condition]]
field = "destination_number"
expression = "^4000$"
actions = ["answer", "park"]

[[dialplan.context.extension]]
name = "outbound_socket_5000"
[[dialplan.context.extension.condition]]
field = "destination_number"
expression = "^5000$"
actions = ["socket 127.0.0.1:%d async full"]
`, outboundPort)
	return rewrite(t, cfg, `(?m)^name = "blueivr"\n\n\[\[dialplan\.context\.extension\]\]`, strings.TrimSuffix(ext, "\n")+"\n\n[[dialplan.context.extension]]", 1)
}

// TestModesl drives the built binary with the real npm modesl client, the
// way FreeSWITCH tooling does (issue 14): the channel events of a queue
// call per leg, sendmsg playback into a parked call, uuid_transfer of a
// waiting caller, a queue's strategy edited and reloadxml'd while a call
// stays up, and an outbound socket program that answers and bridges a
// trunk call.
func TestModesl(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: interop suite does not run with -short")
	}
	tools := requireTools(t, "sipp", "node", "npm")
	e := &env{t: t, root: repoRoot(t), tools: tools}
	e.art = filepath.Join(artifactsDir(t), "modesl")
	if err := os.MkdirAll(e.art, 0o755); err != nil {
		t.Fatal(err)
	}
	e.scenarios = filepath.Join(e.root, "test", "interop", "sipp")
	bin := os.Getenv("CCPBX_BIN")
	if bin == "" {
		bin = buildBinary(t, e.root, t.TempDir())
	}
	shipped, err := os.ReadFile(filepath.Join(e.root, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	outboundPort := pbxtest.PortFor(t, "tcp")
	var cfgPath string
	pbxtest.RetryAddrInUse(t, 5, func() error {
		e.ports.Internal, e.ports.Trunk, e.ports.ESL = sipPort(t), sipPort(t), sipPort(t)
		e.ports.RTPStart = pbxtest.UDPPortRange(t, 200)
		e.ports.RTPEnd = e.ports.RTPStart + 199
		cfgPath = filepath.Join(t.TempDir(), "config.toml")
		cfg := modeslConfig(t, testConfig(t, string(shipped), e.ports, t.TempDir()), outboundPort)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		e.pbx, err = startPBX(t, bin, cfgPath, e.root, e.art, e.ports)
		return err
	})
	pw := regexp.MustCompile(`(?ms)^\[event_socket\].*?^password = "([^"]*)"`).FindSubmatch(shipped)
	if pw == nil {
		t.Fatal("setup: no [event_socket] password in config.toml")
	}
	m := startModesl(t, e, outboundPort, string(pw[1]))
	m.waitFor(0, 30*time.Second, "modesl ready", func(x eslMsg) bool { return x.T == "ready" })
	m.waitFor(0, 30*time.Second, "modesl outbound listener", func(x eslMsg) bool { return x.T == "listening" })

	e.port1002 = sipPort(t)
	reg := e.runSipp(t, "reg1002", "register.xml", e.internalAddr(), e.port1002, "-s", "1002", "-au", "1002", "-ap", "1234", "-m", "1",
		"-key", "expires", "3600", "-key", "contact_params", "")
	if err := reg.finish(20 * time.Second); err != nil {
		t.Fatalf("register 1002: %v", err)
	}

	t.Run("queue_call_events_per_leg", func(t *testing.T) {
		if got := m.api("callcenter_config agent set status 1002 Available"); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("agent 1002 Available: %q", got)
		}
		from := m.mark()
		uas, _ := e.agent1002(t, "modesl-answer", "agent_answer.xml", 1, 500)
		c := e.placeCall(t)
		start, _ := m.waitFor(from, 30*time.Second, "bridge-agent-start", func(x eslMsg) bool {
			return x.T == "event" && x.Headers["CC-Action"] == "bridge-agent-start"
		})
		member, agent := start.Headers["CC-Member-Session-UUID"], start.Headers["Unique-ID"]
		c.hangup(t, "queue call")
		if err := uas.finish(20 * time.Second); err != nil {
			t.Errorf("agent 1002: %v", err)
		}
		for _, leg := range []struct{ name, uuid string }{{"member", member}, {"agent", agent}} {
			m.waitFor(from, 20*time.Second, leg.name+" CHANNEL_DESTROY", func(x eslMsg) bool {
				return x.T == "event" && x.Name == "CHANNEL_DESTROY" && x.Headers["Unique-ID"] == leg.uuid
			})
		}
		wantMember := []string{"CHANNEL_CREATE", "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_EXECUTE",
			"CHANNEL_CALLSTATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_CALLSTATE", "CHANNEL_HANGUP",
			"CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_STATE", "CHANNEL_DESTROY"}
		wantAgent := []string{"CHANNEL_CREATE", "CHANNEL_STATE", "CHANNEL_PROGRESS", "CHANNEL_CALLSTATE", "CHANNEL_ANSWER",
			"CHANNEL_STATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}
		if got := m.legEvents(from, member); !isSubsequence(wantMember, got) {
			t.Errorf("member leg events\n got %v\nwant (in order) %v", got, wantMember)
		}
		if got := m.legEvents(from, agent); !isSubsequence(wantAgent, got) {
			t.Errorf("agent leg events\n got %v\nwant (in order) %v", got, wantAgent)
		}
		// The channel data FreeSWITCH puts on the member's answer.
		ans, _ := m.waitFor(from, time.Second, "member CHANNEL_ANSWER", func(x eslMsg) bool {
			return x.T == "event" && x.Name == "CHANNEL_ANSWER" && x.Headers["Unique-ID"] == member
		})
		for _, h := range []string{"Channel-State", "Channel-Call-State", "Channel-State-Number", "Caller-ANI", "Caller-Context",
			"Caller-Destination-Number", "Channel-Read-Codec-Name", "FreeSWITCH-IPv4", "Event-Calling-Function"} {
			if ans.Headers[h] == "" {
				t.Errorf("member CHANNEL_ANSWER lacks %s (has %v)", h, ans.Headers)
			}
		}
		br, _ := m.waitFor(from, time.Second, "member CHANNEL_BRIDGE", func(x eslMsg) bool {
			return x.T == "event" && x.Name == "CHANNEL_BRIDGE" && x.Headers["Unique-ID"] == member
		})
		if br.Headers["Other-Leg-Unique-ID"] != agent || br.Headers["Bridge-B-Unique-ID"] != agent || br.Headers["Other-Type"] != "originatee" {
			t.Errorf("CHANNEL_BRIDGE on the member: %v, want the agent %s as Other-Leg", br.Headers, agent)
		}
		if got := m.api("callcenter_config agent set status 1002 'Logged Out'"); !strings.HasPrefix(got, "+OK") {
			t.Fatalf("agent 1002 Logged Out: %q", got)
		}
	})

	t.Run("sendmsg_playback_into_parked_call", func(t *testing.T) {
		from := m.mark()
		c := e.placeCallWithService(t, "4000")
		park, _ := m.waitFor(from, 20*time.Second, "CHANNEL_PARK", func(x eslMsg) bool {
			return x.T == "event" && x.Name == "CHANNEL_PARK" && x.Headers["Caller-Destination-Number"] == "4000"
		})
		id := park.Headers["Unique-ID"]
		heard := c.peer.count()
		m.next++
		n := m.next
		m.send(map[string]any{"op": "execute", "id": n, "uuid": id, "app": "playback", "arg": "sounds/ivr/common/ivr-you_are_now_logged_in.wav"})
		done, _ := m.waitFor(from, 30*time.Second, "execute('playback') callback", func(x eslMsg) bool { return x.T == "executed" && x.ID == n })
		if done.App != "playback" || done.UUID != id || done.Response != "FILE PLAYED" {
			t.Errorf("execute callback: %+v, want playback on %s with FILE PLAYED", done, id)
		}
		if c.peer.count()-heard < 25 {
			t.Errorf("the parked caller got %d RTP packets during the playback", c.peer.count()-heard)
		}
		c.hangup(t, "parked call")
	})

	t.Run("uuid_transfer_moves_a_waiting_caller", func(t *testing.T) {
		from := m.mark()
		c := e.placeCall(t) // no agent is available: the caller waits in 3000
		start, _ := m.waitFor(from, 20*time.Second, "member-queue-start", func(x eslMsg) bool {
			return x.T == "event" && x.Headers["CC-Action"] == "member-queue-start"
		})
		id := start.Headers["CC-Member-Session-UUID"]
		if got := m.api("uuid_transfer " + id + " 4000 XML blueivr"); got != "+OK\n" {
			t.Fatalf("uuid_transfer: %q", got)
		}
		m.waitFor(from, 20*time.Second, "member-queue-end", func(x eslMsg) bool {
			return x.T == "event" && x.Headers["CC-Action"] == "member-queue-end" && x.Headers["CC-Member-Session-UUID"] == id
		})
		m.waitFor(from, 20*time.Second, "CHANNEL_PARK at 4000", func(x eslMsg) bool {
			return x.T == "event" && x.Name == "CHANNEL_PARK" && x.Headers["Unique-ID"] == id && x.Headers["Caller-Destination-Number"] == "4000"
		})
		if got := m.api("uuid_transfer 00000000-0000-0000-0000-000000000000 4000"); got != "-ERR No Such Channel!\n" {
			t.Errorf("uuid_transfer of no channel: %q", got)
		}
		c.hangup(t, "transferred caller")
	})

	t.Run("reloadxml_changes_the_next_dispatch_while_a_call_stays_up", func(t *testing.T) {
		from := m.mark()
		parked := e.placeCallWithService(t, "4000")
		park, _ := m.waitFor(from, 20*time.Second, "CHANNEL_PARK", func(x eslMsg) bool {
			return x.T == "event" && x.Name == "CHANNEL_PARK" && x.Headers["Caller-Destination-Number"] == "4000"
		})
		port1001 := sipPort(t)
		reg := e.runSipp(t, "reg1001", "register.xml", e.internalAddr(), port1001, "-s", "1001", "-au", "1001", "-ap", "1234", "-m", "1",
			"-key", "expires", "3600", "-key", "contact_params", "")
		if err := reg.finish(20 * time.Second); err != nil {
			t.Fatalf("register 1001: %v", err)
		}
		cfg, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		edited := rewrite(t, string(cfg), `(?m)^strategy = "round-robin"$`, `strategy = "ring-all"`, 1)
		if err := os.WriteFile(cfgPath, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := m.api("reloadxml"); got != "+OK [Success]\n" {
			t.Fatalf("reloadxml: %q", got)
		}
		m.waitFor(from, 10*time.Second, "RELOADXML", func(x eslMsg) bool { return x.T == "event" && x.Name == "RELOADXML" })
		if got := m.api("callcenter_config queue list"); !strings.Contains(got, "\n3000@default|ring-all|") {
			t.Fatalf("queue list after reloadxml: %q", got)
		}
		for _, a := range []string{"1001", "1002"} {
			if got := m.api("callcenter_config agent set status " + a + " Available"); !strings.HasPrefix(got, "+OK") {
				t.Fatalf("agent %s Available: %q", a, got)
			}
		}
		ring := e.runSipp(t, "agent1001-ring", "agent_ring.xml", "", port1001, "-s", "1001", "-m", "1")
		waitUDPBound(t, "sipp agent 1001", port1001, ring.proc)
		uas, _ := e.agent1002(t, "modesl-ringall", "agent_answer.xml", 1, 1000)
		c := e.placeCall(t)
		// ring-all: both agents are offered the one caller.
		for _, a := range []string{"1001", "1002"} {
			m.waitFor(from, 20*time.Second, "agent-offering to "+a, func(x eslMsg) bool {
				return x.T == "event" && x.Headers["CC-Action"] == "agent-offering" && x.Headers["CC-Agent"] == a
			})
		}
		m.waitFor(from, 20*time.Second, "bridge-agent-start", func(x eslMsg) bool {
			return x.T == "event" && x.Headers["CC-Action"] == "bridge-agent-start"
		})
		if got := m.api("uuid_exists " + park.Headers["Unique-ID"]); got != "true" {
			t.Errorf("the parked call did not survive reloadxml: uuid_exists = %q", got)
		}
		c.hangup(t, "ring-all call")
		if err := uas.finish(20 * time.Second); err != nil {
			t.Errorf("agent 1002: %v", err)
		}
		if err := ring.finish(20 * time.Second); err != nil {
			t.Errorf("agent 1001 (rang, then CANCEL): %v", err)
		}
		parked.hangup(t, "parked call")
		for _, a := range []string{"1001", "1002"} {
			m.api("callcenter_config agent set status " + a + " 'Logged Out'")
		}
	})

	t.Run("outbound_socket_answers_and_bridges", func(t *testing.T) {
		from := m.mark()
		m.send(map[string]any{"op": "outbound", "bridge": "user/1002"})
		uas, _ := e.agent1002(t, "modesl-outbound", "agent_answer.xml", 1, 300)
		c := e.placeCallWithService(t, "5000")
		ob, _ := m.waitFor(from, 20*time.Second, "outbound connection", func(x eslMsg) bool { return x.T == "outbound" })
		if ob.Dest != "5000" || ob.Count < 40 {
			t.Errorf("outbound connect: %+v, want the channel data of the 5000 call", ob)
		}
		m.waitFor(from, 20*time.Second, "outbound answer callback", func(x eslMsg) bool { return x.T == "outbound-answered" && x.UUID == ob.UUID })
		m.waitFor(from, 30*time.Second, "CHANNEL_BRIDGE of the socket's call", func(x eslMsg) bool {
			return x.T == "event" && x.Name == "CHANNEL_BRIDGE" && x.Headers["Unique-ID"] == ob.UUID
		})
		c.hangup(t, "outbound socket call")
		if err := uas.finish(20 * time.Second); err != nil {
			t.Errorf("agent 1002 (bridged by the socket program): %v", err)
		}
	})
}

// placeCallWithService is placeCall to another extension than 3000.
func (e *env) placeCallWithService(t *testing.T, service string) *caller {
	t.Helper()
	e.calls++
	c := &caller{number: fmt.Sprintf("555%04d", e.calls)}
	c.peer = newRTPPeer(t, "caller-"+c.number, callerTone)
	c.run = e.runSipp(t, fmt.Sprintf("c%d-%s", e.calls, c.number), "trunk_caller.xml", e.trunk(), sipPort(t),
		"-s", service, "-key", "caller", c.number, "-key", "rtp_port", itoa(c.peer.port()), "-m", "1")
	return c
}
