package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// env is one run of the suite: the PBX, its event stream and the phones.
type env struct {
	t         *testing.T
	root      string
	art       string
	scenarios string
	tools     map[string]string
	ports     pbxPorts
	pbx       *pbx
	ev        *eventStream
	hangups   *eventStream // CHANNEL_HANGUP_COMPLETE (issue 12)
	dataDir   string

	b1001    *baresip // agent 1001: baresip
	sip1001  int
	port1002 int // agent 1002: sipp, always on this port (its registered contact)

	calls int // trunk calls placed, for caller numbers 555000N

	// What the queue's counters should say: calls answered by an agent and
	// calls whose caller left while waiting.
	answered, abandoned int

	// offered lists the agent each queue call was first offered to, in
	// order: round-robin is judged on it.
	offered []string
}

// TestArticle is the reference article's test (issue #6), step by step.
func TestArticle(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: interop suite (real binary, sipp, baresip) does not run with -short")
	}
	tools := requireTools(t, "sipp", "baresip")
	e := &env{t: t, root: repoRoot(t), tools: tools}
	e.art = artifactsDir(t)
	e.scenarios = filepath.Join(e.root, "test", "interop", "sipp")
	t.Logf("artifacts (SIP traces, ccpbx debug log, events, recordings): %s", e.art)

	bin := os.Getenv("CCPBX_BIN") // a prebuilt binary to test instead of ./cmd/ccpbx
	if bin == "" {
		bin = buildBinary(t, e.root, t.TempDir())
	}
	shipped, err := os.ReadFile(filepath.Join(e.root, "config.toml"))
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	// The PBX binds the ports itself, so they are numbers chosen a moment
	// before; if another process takes one meanwhile ccpbx exits at start
	// and the setup runs again with fresh ones.
	pbxtest.RetryAddrInUse(t, 5, func() error {
		e.ports.Internal, e.ports.Trunk, e.ports.ESL = sipPort(t), sipPort(t), sipPort(t)
		e.ports.RTPStart = pbxtest.UDPPortRange(t, 400)
		e.ports.RTPEnd = e.ports.RTPStart + 399
		// The config lives in a private directory (ccpbx cli reads the event
		// socket's address from it); the artifacts get a copy.
		cfgPath := filepath.Join(t.TempDir(), "config.toml")
		e.dataDir = t.TempDir()
		cfg := []byte(testConfig(t, string(shipped), e.ports, e.dataDir))
		for _, p := range []string{cfgPath, filepath.Join(e.art, "config.toml")} {
			if err := os.WriteFile(p, cfg, 0o644); err != nil {
				t.Fatalf("setup: %v", err)
			}
		}
		if out, err := runOut(bin, e.root, "check", "-config", cfgPath); err != nil {
			t.Fatalf("setup: ccpbx check rejects the test config: %v\n%s", err, out)
		}
		e.pbx, err = startPBX(t, bin, cfgPath, e.root, e.art, e.ports)
		return err
	})
	e.ev = startEvents(t, e.pbx, e.art)
	e.hangups = startEventsFor(t, e.pbx, filepath.Join(e.art, "hangup-events.txt"), "CHANNEL_HANGUP_COMPLETE")
	e.waitEventsFlowing()

	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"1_register", e.stepRegister},
		{"2_login_300", e.stepLogin},
		{"2b_extension_calls", e.stepExtensionCalls},
		{"3_trunk_call_audio", e.stepTrunkCall},
		{"4_round_robin", e.stepRoundRobin},
		{"5_caller_hangs_up_while_queued", e.stepAbandon},
		{"6a_agent_busy_486", e.stepBusy},
		{"7_logout_301", e.stepLogout},
		{"6b_no_answer_thrice_on_break", e.stepNoAnswer},
		{"8_event_headers_match_freeswitch", e.stepEventShapes},
		{"8b_cdrs_recording_statistics", e.stepRecords},
		{"9_sigterm_hangs_up_live_calls", e.stepShutdown},
		{"10_restart_keeps_statistics_and_status", e.stepRestart},
	}
	for i, s := range steps {
		if !t.Run(s.name, s.run) {
			var rest []string
			for _, r := range steps[i+1:] {
				rest = append(rest, r.name)
			}
			if len(rest) > 0 {
				t.Errorf("step %s failed; not run because they build on it: %s", s.name, strings.Join(rest, ", "))
			}
			return
		}
	}
}

func runOut(bin, dir string, args ...string) (string, error) {
	cmd := newCmd(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitEventsFlowing makes sure the event listener is subscribed before any
// step: `agent get status` fires agent-status-get (README §2), so the
// probe's event proves the subscription is live.
func (e *env) waitEventsFlowing() {
	t := e.t
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		m := e.ev.mark()
		out, err := e.pbx.cli(5*time.Second, "callcenter_config agent get status 1001")
		if err == nil && strings.TrimSpace(out) != "Logged Out" {
			t.Fatalf("setup: `callcenter_config agent get status 1001` = %q, want \"Logged Out\" (README §2)", out)
		}
		if _, _, err := e.ev.waitFor(m, time.Second, "agent-status-get", action("agent-status-get", "CC-Agent", "1001")); err == nil {
			return
		}
	}
	t.Fatalf("setup: no agent-status-get event on `ccpbx cli -events 'CUSTOM callcenter::info'` after `callcenter_config agent get status 1001` (FreeSWITCH fires one, README §2); events listener log:\n%s",
		tail(e.ev.proc.outPath, 20))
}

// ---------------------------------------------------------------- step 1

func (e *env) stepRegister(t *testing.T) {
	const step = "step 1 (register)"
	e.b1001 = startBaresip(e.t, e, "1001") // lives for the whole run
	e.sip1001 = e.b1001.sipPort
	if err := e.b1001.waitRegistered(15 * time.Second); err != nil {
		hint := ""
		if strings.Contains(tail(e.b1001.proc.outPath, 40), "Function not implemented") {
			hint = "\n(baresip 1.0/libre aborts authentication with ENOSYS when any challenge is not MD5: a 401 that also offers SHA-256 locks it out)"
		}
		t.Fatalf("%s: baresip 1001 did not register with password 1234: %v\nbaresip log tail:\n%s%s", step, err, tail(e.b1001.proc.outPath, 20), hint)
	}
	e.port1002 = sipPort(t)
	reg := e.runSipp(t, "reg1002", "register.xml", e.internalAddr(), e.port1002, "-s", "1002", "-au", "1002", "-ap", "1234", "-m", "1",
		"-key", "expires", "3600", "-key", "contact_params", "")
	if err := reg.finish(20 * time.Second); err != nil {
		t.Fatalf("%s: sipp 1002 REGISTER with digest auth: %v", step, err)
	}
	if got, want := strings.Join(replyLines(e.pbx.mustCLI(t, step, "sofia status")), "\n"), sofiaStatus(e.ports.Internal, e.ports.Trunk); got != want {
		t.Errorf("%s: `sofia status` differs from FreeSWITCH's layout (README §1)\n  got:\n%s\n  want:\n%s", step, got, want)
	}
	out := e.pbx.mustCLI(t, step, "show registrations")
	rows, err := parseRegistrations(out)
	if err != nil {
		t.Fatalf("%s: `show registrations` layout: %v\nreply:\n%s", step, err, out)
	}
	want := map[string]int{"1001": e.sip1001, "1002": e.port1002}
	seen := map[string]bool{}
	for _, r := range rows {
		user := r["reg_user"]
		port, ok := want[user]
		if !ok {
			t.Errorf("%s: unexpected registration row %v", step, r)
			continue
		}
		seen[user] = true
		checks := map[string]string{"realm": "127.0.0.1", "network_ip": "127.0.0.1", "network_port": itoa(port), "network_proto": "udp"}
		for k, v := range checks {
			if r[k] != v {
				t.Errorf("%s: registration of %s: %s = %q, want %q", step, user, k, r[k], v)
			}
		}
		if !strings.HasPrefix(r["url"], "sofia/internal/sip:") || !strings.Contains(r["url"], fmt.Sprintf("@127.0.0.1:%d", port)) {
			t.Errorf("%s: registration of %s: url = %q, want sofia/internal/sip:…@127.0.0.1:%d as FreeSWITCH shows", step, user, r["url"], port)
		}
		if exp, err := strconv.ParseInt(r["expires"], 10, 64); err != nil || exp <= time.Now().Unix() {
			t.Errorf("%s: registration of %s: expires = %q, want a future epoch", step, user, r["expires"])
		}
		if r["token"] == "" || r["hostname"] == "" {
			t.Errorf("%s: registration of %s: empty token or hostname: %v", step, user, r)
		}
	}
	for u := range want {
		if !seen[u] {
			t.Errorf("%s: `show registrations` does not list %s:\n%s", step, u, out)
		}
	}

	// The internal profile takes TCP too (issue #2): a second contact for
	// 1002 registered over TCP shows as tcp while its connection is open
	// (sipp holds it after the 200), and goes when the connection closes
	// (issue 17), leaving the UDP binding alone, so the calls below ring
	// one phone.
	tcpPort := sipPort(t)
	tcpArgs := []string{"-s", "1002", "-au", "1002", "-ap", "1234", "-m", "1", "-t", "t1", "-key", "contact_params", ";transport=tcp"}
	regTCP := e.runSipp(t, "reg1002-tcp", "register.xml", e.internalAddr(), tcpPort, append(tcpArgs, "-key", "expires", "3600", "-d", "120000")...)
	var last string
	bothRows := func() bool {
		last = e.pbx.mustCLI(t, step, "show registrations")
		rows, err := parseRegistrations(last)
		return err == nil && len(rows) == 3 && hasReg(rows, "1002", tcpPort, "tcp") && hasReg(rows, "1002", e.port1002, "udp")
	}
	if !pbxtest.Until(20*time.Second, bothRows) {
		t.Fatalf("%s: after 1002 also registered over TCP from port %d, want 3 rows incl. 1002 tcp and 1002 udp; got:\n%s\nsipp trace:\n%s",
			step, tcpPort, last, tail(regTCP.msgFile, 30))
	}
	regTCP.proc.kill() // closes its connection
	udpOnly := func() bool {
		last = e.pbx.mustCLI(t, step, "show registrations")
		rows, err := parseRegistrations(last)
		return err == nil && len(rows) == 2 && !hasReg(rows, "1002", tcpPort, "tcp") && hasReg(rows, "1002", e.port1002, "udp")
	}
	if !pbxtest.Until(20*time.Second, udpOnly) {
		t.Errorf("%s: after the TCP connection closed, want the two UDP rows only; got:\n%s", step, last)
	}
}

func hasReg(rows []regRow, user string, port int, proto string) bool {
	for _, r := range rows {
		if r["reg_user"] == user && r["network_port"] == itoa(port) && r["network_proto"] == proto {
			return true
		}
	}
	return false
}

// internalAddr is the internal profile's address (where extensions register
// and dial).
func (e *env) internalAddr() string { return fmt.Sprintf("127.0.0.1:%d", e.ports.Internal) }

// trunk is the blueivr profile's address (where the trunk delivers calls).
func (e *env) trunk() string { return fmt.Sprintf("127.0.0.1:%d", e.ports.Trunk) }

// ---------------------------------------------------------------- step 2

func (e *env) stepLogin(t *testing.T) {
	const step = "step 2 (login 300)"
	m := e.ev.mark()

	// 1001 (baresip) dials 300 and records what it hears.
	e.dialFromBaresip(t, step, "300", "ivr-you_are_now_logged_in")

	// 1002 (sipp) dials 300; the test's socket records what it hears.
	peer := newRTPPeer(t, "1002-300", agentTone)
	run := e.runSipp(t, "ext300-1002", "extension_caller.xml", e.internalAddr(), e.port1002,
		"-s", "300", "-key", "caller", "1002", "-key", "rtp_port", itoa(peer.port()), "-au", "1002", "-ap", "1234", "-m", "1",
		"-auth_uri", fmt.Sprintf("300@127.0.0.1:%d", e.ports.Internal)) // sipp prefixes "sip:"; digest uri = Request-URI, as phones do
	if err := run.finish(40 * time.Second); err != nil {
		t.Fatalf("%s: 1002 dials 300 (answer, prompt, hang-up by the PBX): %v", step, err)
	}
	rep := analyse(samplesOf(peer.packets(0, -1)))
	t.Logf("%s: 1002 heard %s", step, rep)
	if rep.Loud < 25 || rep.AgentTone > rep.Loud/2 {
		t.Errorf("%s: 1002 heard no login prompt: want at least 0.5 s above %.0f dBFS that is not its own tone echoed; got %s", step, speechLevel, rep)
	}
	e.expectSound(t, step, "1002", samplesOf(peer.packets(0, -1)), "ivr-you_are_now_logged_in", false)

	e.expectSequence(t, step, m, []string{
		"agent-status-change agent=1001 status=Available",
		"agent-status-change agent=1002 status=Available",
	}, 5*time.Second)

	if got := strings.Join(replyLines(e.pbx.mustCLI(t, step, "callcenter_config tier list")), "\n"); got != tierList {
		t.Errorf("%s: `callcenter_config tier list` differs from FreeSWITCH's\n  got:\n%s\n  want:\n%s", step, got, tierList)
	}
	if got, want := strings.Join(replyLines(e.pbx.mustCLI(t, step, "callcenter_config queue list")), "\n"), queueList(0, 0); got != want {
		t.Errorf("%s: `callcenter_config queue list` differs from FreeSWITCH's\n  got:\n%s\n  want:\n%s", step, got, want)
	}
	rows := e.agentList(t, step)
	for _, a := range []string{"1001", "1002"} {
		if err := expectAgent(rows, a, map[string]string{
			"status": "Available", "state": "Waiting", "uuid": "",
			"last_bridge_start": "0", "last_bridge_end": "0", "last_offered_call": "0",
			"no_answer_count": "0", "calls_answered": "0", "talk_time": "0", "ready_time": "0",
		}); err != nil {
			t.Errorf("%s: `callcenter_config agent list` after login: %v", step, err)
		}
	}
}

// dialFromBaresip makes 1001 dial an extension that answers, plays a
// prompt and hangs up, and checks what 1001 recorded is speech-level audio.
func (e *env) dialFromBaresip(t *testing.T, step, ext, prompt string) {
	t.Helper()
	b := e.b1001
	before := b.newCall()
	bm := b.mark()
	if err := b.command("dial", fmt.Sprintf("sip:%s@127.0.0.1:%d", ext, e.ports.Internal)); err != nil {
		t.Fatalf("%s: baresip dial: %v", step, err)
	}
	if _, err := b.waitEvent(bm, "CALL_ESTABLISHED", 20*time.Second); err != nil {
		t.Fatalf("%s: 1001 dials %s: not answered: %v", step, ext, err)
	}
	if _, err := b.waitEvent(bm, "CALL_CLOSED", 30*time.Second); err != nil {
		t.Fatalf("%s: 1001 dials %s: the PBX did not hang up after the prompt: %v", step, ext, err)
	}
	s, path, err := b.heard(before)
	if err != nil {
		t.Fatalf("%s: 1001's recording of %s: %v", step, ext, err)
	}
	rep := analyse(s)
	t.Logf("%s: 1001 heard (%s) %s", step, filepath.Base(path), rep)
	if rep.Loud < 25 || rep.AgentTone > rep.Loud/2 {
		t.Errorf("%s: 1001 did not hear the %s prompt: want at least 0.5 s above %.0f dBFS that is not its own tone echoed; got %s (recording %s)",
			step, prompt, speechLevel, rep, path)
	}
	e.expectSound(t, step, "1001", s, prompt, false)
}

// expectSound checks that heard contains the shipped sound name: for a
// prompt, its loudest quarter second must appear in what the phone heard;
// for the (looping) music, a quarter second of what the phone heard must
// appear in the music file. PCMU keeps the waveform, so the normalised
// correlation is close to 1; other audio stays far below 0.9.
func (e *env) expectSound(t *testing.T, step, who string, heard []int16, name string, music bool) {
	t.Helper()
	ref, err := soundFile(e.root, name)
	if err != nil {
		t.Errorf("%s: %v", step, err)
		return
	}
	const win = sampleRate / 4
	var score float64
	if music {
		if len(heard) < 3*win {
			t.Errorf("%s: %s heard only %d samples of music", step, who, len(heard))
			return
		}
		mid := len(heard)/2 - win/2
		score, _ = matchIn(heard[mid:mid+win], ref, true)
	} else {
		score, _ = matchIn(loudest(ref, win), heard, false)
	}
	t.Logf("%s: %s heard %s.wav (correlation %.3f)", step, who, name, score)
	if score < 0.9 {
		t.Errorf("%s: what %s heard is not %s.wav (best normalised correlation %.3f, want >= 0.9)", step, who, name, score)
	}
}

// agentList fetches and parses `callcenter_config agent list`.
func (e *env) agentList(t *testing.T, step string) map[string]agentRow {
	t.Helper()
	out := e.pbx.mustCLI(t, step, "callcenter_config agent list")
	rows, err := parseAgentList(out)
	if err != nil {
		t.Fatalf("%s: `callcenter_config agent list` layout: %v\nreply:\n%s", step, err, out)
	}
	return rows
}

// expectSequence waits until the events since m are as many as want, then
// compares them one by one (README §3's compact form).
func (e *env) expectSequence(t *testing.T, step string, m int, want []string, timeout time.Duration) {
	t.Helper()
	pbxtest.Until(timeout, func() bool { return len(e.ev.since(m)) >= len(want) })
	// Events that should not be there come after the expected ones, if at
	// all; nothing signals their absence, so this check watches for a
	// while. The window is the check, not synchronisation.
	time.Sleep(300 * time.Millisecond)
	got := compactAll(e.ev.since(m))
	if !slices.Equal(got, want) {
		t.Errorf("%s: callcenter::info events differ from FreeSWITCH's sequence (README §3/§4)\n  got:\n%s\n  want:\n%s",
			step, indent(got), indent(want))
	}
}

// expectSubsequence checks want appears in order among the events since m
// (for situations the FreeSWITCH capture has no full sequence of).
func (e *env) expectSubsequence(t *testing.T, step string, m int, want []string) {
	t.Helper()
	var got []string
	i := 0
	// Events of a call may still be on their way: give them a few seconds.
	pbxtest.Until(5*time.Second, func() bool {
		got = compactAll(e.ev.since(m))
		i = 0
		for _, g := range got {
			if i < len(want) && g == want[i] {
				i++
			}
		}
		return i == len(want)
	})
	if i < len(want) {
		t.Errorf("%s: callcenter::info events: %q missing or out of order\n  got:\n%s\n  want in this order:\n%s",
			step, want[i], indent(got), indent(want))
	}
}

func indent(lines []string) string {
	if len(lines) == 0 {
		return "    (none)"
	}
	return "    " + strings.Join(lines, "\n    ")
}

// normalCall is FreeSWITCH's sequence for a member answered by an idle
// agent and ended by the caller's BYE (README §4, c1–c6).
func normalCall(agent, member string) []string {
	return []string{
		"member-queue-start member=" + member,
		"members-count count=1",
		"agent-state-change agent=" + agent + " state=Receiving",
		"agent-offering agent=" + agent + " member=" + member,
		"bridge-agent-start agent=" + agent + " member=" + member,
		"members-count count=1",
		"agent-state-change agent=" + agent + " state=In a queue call",
		"bridge-agent-end agent=" + agent + " member=" + member,
		"member-queue-end agent=" + agent + " member=" + member + " cause=Terminated",
		"agent-state-change agent=" + agent + " state=Waiting",
	}
}

// ---------------------------------------------------------------- calls

// caller is one trunk call (sipp on the blueivr profile + the test's RTP).
type caller struct {
	run    *sippRun
	peer   *rtpPeer
	number string
}

func (e *env) placeCall(t *testing.T) *caller {
	t.Helper()
	return e.placeCallWith(t, "trunk_caller.xml")
}

func (e *env) placeCallWith(t *testing.T, scenario string) *caller {
	t.Helper()
	e.calls++
	c := &caller{number: fmt.Sprintf("555%04d", e.calls)}
	c.peer = newRTPPeer(t, "caller-"+c.number, callerTone)
	c.run = e.runSipp(t, fmt.Sprintf("c%d-%s", e.calls, c.number), scenario, e.trunk(), sipPort(t),
		"-s", "3000", "-key", "caller", c.number, "-key", "rtp_port", itoa(c.peer.port()), "-m", "1")
	return c
}

// hangup sends the caller's BYE and waits for the 200.
func (c *caller) hangup(t *testing.T, step string) {
	t.Helper()
	if err := c.run.hangup(); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if err := c.run.finish(20 * time.Second); err != nil {
		t.Fatalf("%s: caller %s (INVITE 3000, ACK, BYE after the test's trigger): %v", step, c.number, err)
	}
}

// agent1002 starts 1002's sipp phone with one of the agent scenarios; it
// keeps serving calls (up to calls) until the step ends.
func (e *env) agent1002(t *testing.T, name, scenario string, calls int, ringMs int) (*sippRun, *rtpPeer) {
	t.Helper()
	peer := newRTPPeer(t, "1002-"+name, agentTone)
	run := e.runSipp(t, "agent1002-"+name, scenario, "", e.port1002,
		"-s", "1002", "-key", "rtp_port", itoa(peer.port()), "-m", itoa(calls), "-d", itoa(ringMs))
	waitUDPBound(t, "sipp agent 1002 ("+scenario+")", e.port1002, run.proc)
	return run, peer
}

// waitIdle waits until agent's state is Waiting again after event index m.
func (e *env) waitIdle(t *testing.T, step string, m int, agent string) {
	t.Helper()
	if _, _, err := e.ev.waitFor(m, 15*time.Second, "agent-state-change "+agent+" Waiting",
		action("agent-state-change", "CC-Agent", agent, "CC-Agent-State", "Waiting")); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// wrapUp waits out the agents' wrap-up time (FreeSWITCH compares whole
// seconds from last_bridge_end), so the next call sees both agents idle
// and only the strategy decides, as in the reference capture. It sleeps:
// the PBX's wrap-up timer runs in real time and no event marks its end.
func wrapUp() { time.Sleep(time.Duration(testWrapUp)*time.Second + 1500*time.Millisecond) }

// ---------------------------------------------------------------- step 3

func (e *env) stepTrunkCall(t *testing.T) {
	const step = "step 3 (trunk call 3000: music, agent answers, audio both ways, caller's BYE)"
	m := e.ev.mark()
	bm := e.b1001.mark()
	before := e.b1001.newCall()
	const ringMs = 2000 // < call_timeout

	// Whoever is offered rings for 2 s, so the caller hears music first,
	// then answers.
	uas, agentPeer := e.agent1002(t, "answer-audio", "agent_answer.xml", 1, ringMs)
	e.b1001.setPolicy(func(bsEvent) string {
		time.Sleep(ringMs * time.Millisecond) // the phone rings this long: behaviour, not synchronisation
		return "accept"
	})
	defer e.b1001.setPolicy(nil)
	c := e.placeCall(t)

	_, start, err := e.ev.waitFor(m, 30*time.Second, "bridge-agent-start", action("bridge-agent-start"))
	if err != nil {
		t.Fatalf("%s: %v\ncaller trace:\n%s", step, err, tail(c.run.msgFile, 30))
	}
	agent := start.get("CC-Agent")
	bridgedAt := c.peer.count()

	// Music on hold before the bridge: 50 packets/s of music, not silence.
	moh := c.peer.packets(0, bridgedAt)
	rate, gaps, err := streamCheck(moh)
	if err != nil {
		t.Errorf("%s: music on hold RTP to the caller: %v", step, err)
	}
	mohRep := analyse(samplesOf(moh))
	t.Logf("%s: caller heard before the bridge: %d packets at %.1f/s (%d sender-side gaps), %s", step, len(moh), rate, gaps, mohRep)
	if mohRep.Frames == 0 || mohRep.Loud*2 < mohRep.Frames || mohRep.CallerTone*4 > mohRep.Frames || mohRep.AgentTone*4 > mohRep.Frames {
		t.Errorf("%s: caller did not hear music on hold: want most frames above %.0f dBFS and not a test tone; got %s", step, speechLevel, mohRep)
	}
	// The music is matched inside the longest run the sender did not skip:
	// a frame the loaded machine's clock dropped is a gap streamCheck
	// reports, and a window across it would match neither side of it.
	e.expectSound(t, step, "the caller", samplesOf(gapFree(moh)), "music-on-hold", true)

	// The listings during the call, as FreeSWITCH shows them (README §6,
	// "call c1 in progress").
	e.checkDuringCall(t, step, agent, c.number)

	// Talk: both sides send their tone for a while, then the caller hangs up.
	if err := c.peer.waitPackets(bridgedAt, 100, 10*time.Second); err != nil {
		t.Errorf("%s: caller after the bridge: %v", step, err)
	}
	if agent == "1002" {
		if err := agentPeer.waitPackets(0, 100, 10*time.Second); err != nil {
			t.Errorf("%s: agent 1002 after answering: %v", step, err)
		}
	}
	c.hangup(t, step)
	e.answered++

	// The caller's BYE ends the agent's leg too.
	var agentHeard audioReport
	switch agent {
	case "1002":
		if err := uas.finish(15 * time.Second); err != nil {
			t.Errorf("%s: agent 1002 leg after the caller's BYE: %v", step, err)
		}
		agentHeard = analyse(samplesOf(agentPeer.packets(10, -1)))
		if n := e.b1001.count(bm, "CALL_INCOMING"); n != 0 {
			t.Errorf("%s: 1001 rang too (%d calls); one agent should ring", step, n)
		}
	case "1001":
		if _, err := e.b1001.waitEvent(bm, "CALL_CLOSED", 15*time.Second); err != nil {
			t.Errorf("%s: agent 1001 leg not ended after the caller's BYE: %v", step, err)
		}
		s, path, err := e.b1001.heard(before)
		if err != nil {
			t.Errorf("%s: %v", step, err)
		}
		agentHeard = analyse(s)
		t.Logf("%s: 1001's recording %s", step, path)
		uas.kill()
		if n := sippCount(uas.msgFile, "INVITE"); n != 0 {
			t.Errorf("%s: 1002 rang too (%d INVITEs); one agent should ring", step, n)
		}
	default:
		t.Fatalf("%s: bridge-agent-start names agent %q", step, agent)
	}
	callerHeard := analyse(samplesOf(c.peer.packets(bridgedAt+10, -1)))
	t.Logf("%s: agent %s heard %s", step, agent, agentHeard)
	t.Logf("%s: caller heard after the bridge %s", step, callerHeard)
	if agentHeard.CallerTone < 25 {
		t.Errorf("%s: agent %s did not hear the caller's %v Hz tone through ccpbx (want >= 0.5 s of it): %s", step, agent, callerTone, agentHeard)
	}
	if callerHeard.AgentTone < 25 {
		t.Errorf("%s: the caller did not hear agent %s's %v Hz tone through ccpbx (want >= 0.5 s of it): %s", step, agent, agentTone, callerHeard)
	}

	e.waitIdle(t, step, m, agent)
	e.expectSequence(t, step, m, normalCall(agent, c.number), 5*time.Second)
	e.offered = append(e.offered, agent)

	// After a normal end the member row is gone and the agent counted the call.
	if out := e.pbx.mustCLI(t, step, "callcenter_config queue list members 3000@default"); strings.Join(replyLines(out), "\n") != "+OK" {
		t.Errorf("%s: members after the call: got %q, want only +OK (row deleted)", step, out)
	}
	if out := e.pbx.mustCLI(t, step, "callcenter_config queue count members 3000@default"); strings.TrimSpace(out) != "0" {
		t.Errorf("%s: `queue count members` after the call = %q, want 0", step, out)
	}
	rows := e.agentList(t, step)
	if err := expectAgent(rows, agent, map[string]string{"status": "Available", "state": "Waiting", "uuid": "", "calls_answered": "1", "no_answer_count": "0"}); err != nil {
		t.Errorf("%s: agent list after the call: %v", step, err)
	}
}

// checkDuringCall compares agent, tier and member listings while agent
// talks to member with FreeSWITCH's snapshot of call c1 in progress.
func (e *env) checkDuringCall(t *testing.T, step, agent, member string) {
	t.Helper()
	rows := e.agentList(t, step)
	if err := expectAgent(rows, agent, map[string]string{"status": "Available", "state": "In a queue call", "calls_answered": "1"}); err != nil {
		t.Errorf("%s: agent list during the call: %v", step, err)
	} else if len(rows[agent]["uuid"]) != 36 {
		t.Errorf("%s: agent list during the call: %s's uuid = %q, want the agent leg's UUID", step, agent, rows[agent]["uuid"])
	}
	if err := expectAgent(rows, other(agent), map[string]string{"status": "Available", "state": "Waiting", "uuid": ""}); err != nil {
		t.Errorf("%s: agent list during the call: %v", step, err)
	}
	want := "queue|agent|state|level|position\n3000@default|1001|Ready|1|1\n3000@default|1002|Ready|1|1\n+OK"
	want = strings.Replace(want, "3000@default|"+agent+"|Ready", "3000@default|"+agent+"|Active Inbound", 1)
	if got := strings.Join(replyLines(e.pbx.mustCLI(t, step, "callcenter_config tier list")), "\n"); got != want {
		t.Errorf("%s: tier list during the call\n  got:\n%s\n  want:\n%s", step, got, want)
	}
	out := e.pbx.mustCLI(t, step, "callcenter_config queue list members 3000@default")
	members, err := parsePipeList(out, memberListHeader)
	switch {
	case err != nil:
		t.Errorf("%s: `queue list members`: %v", step, err)
	case len(members) != 1:
		t.Errorf("%s: `queue list members` during the call has %d rows, want 1:\n%s", step, len(members), out)
	default:
		if d := diffRow(members[0], map[string]string{"queue": "3000@default", "instance_id": "single_box", "cid_number": member,
			"cid_name": memberCIDName, "rejoined_epoch": "0", "abandoned_epoch": "0", "serving_agent": agent,
			"serving_system": "single_box", "state": "Answered"}); d != "" {
			t.Errorf("%s: member row during the call: %s", step, d)
		}
		if members[0]["bridge_epoch"] == "0" || len(members[0]["session_uuid"]) != 36 {
			t.Errorf("%s: member row during the call: bridge_epoch %q, session_uuid %q; want set", step, members[0]["bridge_epoch"], members[0]["session_uuid"])
		}
	}
	if out := e.pbx.mustCLI(t, step, "callcenter_config queue count members 3000@default"); strings.TrimSpace(out) != "1" {
		t.Errorf("%s: `queue count members` during the call = %q, want 1", step, out)
	}
}
