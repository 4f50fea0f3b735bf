package interop

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// baresip is a real softphone, headless: its own config directory (-f),
// aufile as the microphone (a WAV of the agent tone), the sndfile filter as
// the recorder (it writes what the phone decodes, dump-*-dec.wav, in the
// receive path before the player), aubridge as a silent speaker, and
// ctrl_tcp (JSON netstrings) for the test to watch events and accept, reject
// or dial. Auto-answer is done by the test on CALL_INCOMING so each step
// chooses whether the phone answers, rejects (486) or keeps ringing.
type baresip struct {
	t      testing.TB
	proc   *proc
	dir    string
	recDir string
	conn   net.Conn

	wmu sync.Mutex // serialises writes to conn
	lmu sync.Mutex // serialises the ctrl log
	ctl *os.File   // artifacts/baresip-USER-ctrl.log: every ctrl_tcp message both ways
	// sipPort is its SIP port (UDP and TCP; TLS on the next one).
	sipPort int
	// rtpLo is the first of the 64 UDP ports baresip takes RTP (and RTCP)
	// from.
	rtpLo int

	mu     sync.Mutex
	evs    []bsEvent
	more   chan struct{}
	policy func(ev bsEvent) string // "accept", "hangup" (486) or "" (ring)
	token  int

	archived int // recordings moved to recordings/old
}

// bsEvent is one ctrl_tcp message (event or command response).
type bsEvent struct {
	Event    bool   `json:"event"`
	Response bool   `json:"response"`
	Type     string `json:"type"`
	Class    string `json:"class"`
	ID       string `json:"id"`
	Param    string `json:"param"`
	PeerURI  string `json:"peeruri"`
	OK       bool   `json:"ok"`
	Data     string `json:"data"`
	Token    string `json:"token"`
	At       time.Time
}

func startBaresip(t testing.TB, e *env, user string) *baresip {
	t.Helper()
	return startBaresipWith(t, e, user, bsSecure{})
}

// bsSecure makes baresip a remote agent: SIP over TLS to the profile's
// TLS port, trusting caFile, and SRTP required (mediaenc=srtp-mand).
type bsSecure struct {
	tlsPort int
	caFile  string
}

// startBaresipWith starts baresip on quiet ports (b.sipPort, its TLS
// listener on the next port, ctrl_tcp), and again on fresh ones when it
// exits because one was taken meanwhile.
func startBaresipWith(t testing.TB, e *env, user string, sec bsSecure) *baresip {
	t.Helper()
	var b *baresip
	pbxtest.RetryAddrInUse(t, 3, func() error {
		var err error
		b, err = launchBaresip(t, e, user, baresipSIPPort(t), pbxtest.QuietPorts(t, "127.0.0.1", []string{"tcp"}), sec)
		return err
	})
	return b
}

// launchBaresip starts baresip once; the error is its log's tail when it
// exited before its ctrl_tcp port opened saying an address was in use.
func launchBaresip(t testing.TB, e *env, user string, sipPort, ctrlPort int, sec bsSecure) (*baresip, error) {
	t.Helper()
	b := &baresip{t: t, dir: filepath.Join(e.art, "baresip-"+user), more: make(chan struct{}), sipPort: sipPort}
	b.recDir = filepath.Join(b.dir, "recordings")
	for _, d := range []string{b.dir, b.recDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("baresip %s: %v", user, err)
		}
	}
	tone := filepath.Join(b.dir, "agent-tone.wav")
	if err := writeWAV(tone, sine(agentTone, 0, 120*sampleRate)); err != nil {
		t.Fatalf("baresip %s: %v", user, err)
	}
	rtpLo := pbxtest.UDPPortRange(t, 64)
	b.rtpLo = rtpLo
	modules := "/usr/lib/baresip/modules"
	if _, err := os.Stat(modules); err != nil {
		if m, _ := filepath.Glob("/usr/lib/*/baresip/modules"); len(m) > 0 {
			modules = m[0]
		}
	}
	conf := strings.Join([]string{
		"poll_method\t\tepoll",
		// Loopback for SIP and media alike: otherwise baresip puts the
		// host's first interface address in its SDP while its packets to
		// 127.0.0.1 leave from 127.0.0.1.
		"net_interface\t\t127.0.0.1",
		fmt.Sprintf("sip_listen\t\t127.0.0.1:%d", sipPort),
		"sip_trans_def\t\tudp",
		"call_local_timeout\t120",
		"call_max_calls\t\t4",
		// aubridge as the speaker: a player that paces itself and costs no
		// CPU (ALSA's "null" device busy-loops a core per call).
		"audio_player\t\taubridge,speaker",
		"audio_alert\t\taubridge,speaker",
		"audio_source\t\taufile," + tone,
		"audio_level\t\tno",
		fmt.Sprintf("rtp_ports\t\t%d-%d", rtpLo, rtpLo+63),
		"module_path\t\t" + modules,
		"module\t\t\tg711.so",
		"module\t\t\taufile.so",
		"module\t\t\taubridge.so",
		"module\t\t\tsndfile.so",
		"module_app\t\taccount.so",
		"module_app\t\tmenu.so",
		"module\t\t\tctrl_tcp.so",
		fmt.Sprintf("ctrl_tcp_listen\t\t127.0.0.1:%d", ctrlPort),
		"snd_path\t\t" + b.recDir,
		"",
	}, "\n")
	if sec.tlsPort != 0 {
		conf += "module\t\t\tsrtp.so\nsip_cafile\t\t" + sec.caFile + "\n"
	}
	if err := os.WriteFile(filepath.Join(b.dir, "config"), []byte(conf), 0o644); err != nil {
		t.Fatalf("baresip %s: %v", user, err)
	}
	// The account registers on the internal profile with the directory's
	// password; answermode=manual because the test answers per step.
	acct := fmt.Sprintf("<sip:%s@127.0.0.1:%d>;auth_pass=1234;regint=3600;answermode=manual;audio_codecs=PCMU;ptime=20\n", user, e.ports.Internal)
	if sec.tlsPort != 0 {
		acct = fmt.Sprintf("<sip:%s@127.0.0.1:%d;transport=tls>;auth_pass=1234;regint=3600;answermode=manual;audio_codecs=PCMU;ptime=20;mediaenc=srtp-mand\n", user, sec.tlsPort)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "accounts"), []byte(acct), 0o644); err != nil {
		t.Fatalf("baresip %s: %v", user, err)
	}
	b.proc = startProc(t, "baresip-"+user, filepath.Join(e.art, "baresip-"+user+".log"), b.dir,
		e.tools["baresip"], "-f", b.dir)

	var err error
	var exited bool
	pbxtest.Until(10*time.Second, func() bool {
		if exited, _ = b.proc.wait(0); exited {
			return true
		}
		b.conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrlPort))
		return err == nil
	})
	if b.conn == nil {
		if log := tail(b.proc.outPath, 20); exited && pbxtest.IsAddrInUse(errors.New(log)) {
			return nil, fmt.Errorf("baresip %s on SIP port %d (TLS %d), ctrl_tcp %d: %s", user, sipPort, sipPort+1, ctrlPort, log)
		}
		t.Fatalf("baresip %s: ctrl_tcp on port %d not reachable (exited: %v, %v); log tail:\n%s", user, ctrlPort, exited, err, tail(b.proc.outPath, 20))
	}
	if b.ctl, err = os.Create(filepath.Join(e.art, "baresip-"+user+"-ctrl.log")); err != nil {
		t.Fatalf("baresip %s: %v", user, err)
	}
	go b.readLoop()
	t.Cleanup(func() {
		b.conn.Close()
		b.proc.kill()
		b.lmu.Lock()
		b.ctl.Close()
		b.ctl = nil
		b.lmu.Unlock()
	})
	return b, nil
}

// parseNetstrings splits ctrl_tcp's stream ("len:payload,") into payloads
// and returns what is left incomplete. A malformed frame is an error (the
// stream cannot be resynchronised).
func parseNetstrings(buf []byte) (frames [][]byte, rest []byte, err error) {
	for len(buf) > 0 {
		colon := slices.Index(buf, ':')
		if colon < 0 {
			if len(buf) > 10 {
				return frames, nil, errors.New("netstring: length without ':'")
			}
			return frames, buf, nil
		}
		n, perr := strconv.Atoi(string(buf[:colon]))
		if perr != nil || n < 0 || colon > 10 {
			return frames, nil, fmt.Errorf("netstring: bad length %q", buf[:colon])
		}
		end := colon + 1 + n
		if end >= len(buf) {
			return frames, buf, nil
		}
		if buf[end] != ',' {
			return frames, nil, errors.New("netstring: missing ','")
		}
		frames = append(frames, buf[colon+1:end])
		buf = buf[end+1:]
	}
	return frames, nil, nil
}

func (b *baresip) readLoop() {
	r := bufio.NewReader(b.conn)
	var pending []byte
	chunk := make([]byte, 8192)
	for {
		n, err := r.Read(chunk)
		if n > 0 {
			pending = append(pending, chunk[:n]...)
			frames, rest, perr := parseNetstrings(pending)
			pending = rest
			for _, f := range frames {
				b.logCtl("<- %s", f)
				var ev bsEvent
				if json.Unmarshal(f, &ev) != nil {
					continue
				}
				ev.At = time.Now()
				b.mu.Lock()
				b.evs = append(b.evs, ev)
				close(b.more)
				b.more = make(chan struct{})
				policy := b.policy
				b.mu.Unlock()
				if ev.Event && ev.Type == "CALL_INCOMING" && policy != nil {
					go func() {
						if cmd := policy(ev); cmd != "" {
							_ = b.command(cmd, "")
						}
					}()
				}
			}
			if perr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// setPolicy decides what the phone does with incoming calls from now on.
func (b *baresip) setPolicy(p func(bsEvent) string) {
	b.mu.Lock()
	b.policy = p
	b.mu.Unlock()
}

func always(cmd string) func(bsEvent) string { return func(bsEvent) string { return cmd } }

// command sends one ctrl_tcp command ("dial", "accept", "hangup" …).
func (b *baresip) command(cmd, params string) error {
	_, err := b.send(cmd, params)
	return err
}

// query sends a command and returns the data of its response.
func (b *baresip) query(cmd string, timeout time.Duration) (string, error) {
	from := b.mark()
	tok, err := b.send(cmd, "")
	if err != nil {
		return "", err
	}
	var data string
	if pbxtest.Until(timeout, func() bool {
		for _, e := range b.since(from) {
			if e.Response && e.Token == tok {
				data = e.Data
				return true
			}
		}
		return false
	}) {
		return data, nil
	}
	return "", fmt.Errorf("no response to %q within %s", cmd, timeout)
}

// waitRegistered polls `reginfo` until the account shows OK (it registers
// at start, before the test's control connection exists, so the
// REGISTER_OK event may have gone by).
func (b *baresip) waitRegistered(timeout time.Duration) error {
	last := ""
	if pbxtest.Until(timeout, func() bool {
		data, err := b.query("reginfo", 2*time.Second)
		last = fmt.Sprintf("%q (%v)", data, err)
		return err == nil && strings.Contains(data, "OK")
	}) {
		return nil
	}
	return fmt.Errorf("not registered within %s; last reginfo: %s", timeout, last)
}

func (b *baresip) send(cmd, params string) (string, error) {
	b.mu.Lock()
	b.token++
	tok := strconv.Itoa(b.token)
	b.mu.Unlock()
	payload, err := json.Marshal(map[string]string{"command": cmd, "params": params, "token": tok})
	if err != nil {
		return "", err
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.logCtl("-> %s", payload)
	_, err = fmt.Fprintf(b.conn, "%d:%s,", len(payload), payload)
	return tok, err
}

func (b *baresip) logCtl(format string, args ...any) {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	if b.ctl != nil {
		fmt.Fprintf(b.ctl, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

func (b *baresip) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.evs)
}

func (b *baresip) since(from int) []bsEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	if from > len(b.evs) {
		return nil
	}
	return slices.Clone(b.evs[from:])
}

// waitEvent waits for a ctrl_tcp event of type typ at index >= from.
func (b *baresip) waitEvent(from int, typ string, timeout time.Duration) (bsEvent, error) {
	deadline := time.After(timeout)
	next := from
	for {
		b.mu.Lock()
		for ; next < len(b.evs); next++ {
			if e := b.evs[next]; e.Event && e.Type == typ {
				b.mu.Unlock()
				return e, nil
			}
		}
		more := b.more
		b.mu.Unlock()
		select {
		case <-more:
		case <-b.proc.done:
			return bsEvent{}, fmt.Errorf("baresip exited while waiting for %s; log tail:\n%s", typ, tail(b.proc.outPath, 20))
		case <-deadline:
			return bsEvent{}, fmt.Errorf("baresip event %s not seen within %s; its events since:\n%s", typ, timeout, bsList(b.since(from)))
		}
	}
}

// count is how many events of type typ arrived from index from on.
func (b *baresip) count(from int, typ string) int {
	n := 0
	for _, e := range b.since(from) {
		if e.Event && e.Type == typ {
			n++
		}
	}
	return n
}

func bsList(evs []bsEvent) string {
	var lines []string
	for _, e := range evs {
		if e.Event {
			lines = append(lines, fmt.Sprintf("  %s %s %s", e.Type, e.PeerURI, e.Param))
		}
	}
	if len(lines) == 0 {
		return "  (none)"
	}
	return strings.Join(lines, "\n")
}

// newCall moves earlier recordings into recordings/old/ so the next call's
// dump is the only one left: sndfile names dumps by the second, so two
// calls in the same second would otherwise share (and overwrite) a name.
// It returns the list to pass to heard.
func (b *baresip) newCall() []string {
	old := filepath.Join(b.recDir, "old")
	_ = os.MkdirAll(old, 0o755)
	m, _ := filepath.Glob(filepath.Join(b.recDir, "dump-*.wav"))
	for _, f := range m {
		b.archived++
		_ = os.Rename(f, filepath.Join(old, fmt.Sprintf("%03d-%s", b.archived, filepath.Base(f))))
	}
	return nil
}

// recordings lists the decoded-audio dumps (what the phone heard) of the
// calls since newCall, oldest first.
func (b *baresip) recordings() []string {
	m, _ := filepath.Glob(filepath.Join(b.recDir, "dump-*-dec.wav"))
	sort.Slice(m, func(i, j int) bool {
		fi, ei := os.Stat(m[i])
		fj, ej := os.Stat(m[j])
		if ei != nil || ej != nil {
			return m[i] < m[j]
		}
		return fi.ModTime().Before(fj.ModTime())
	})
	return m
}

// heard returns the audio of the newest recording not in before.
func (b *baresip) heard(before []string) ([]int16, string, error) {
	var fresh []string
	for _, r := range b.recordings() {
		if !slices.Contains(before, r) {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return nil, "", fmt.Errorf("baresip wrote no new recording in %s (sndfile dumps one per call)", b.recDir)
	}
	path := fresh[len(fresh)-1]
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, path, err
	}
	s, rate, err := parseWAV(raw)
	if err != nil {
		return nil, path, fmt.Errorf("%s: %w", path, err)
	}
	if rate != sampleRate {
		return nil, path, fmt.Errorf("%s: %d Hz, want %d (PCMU)", path, rate, sampleRate)
	}
	return s, path, nil
}
