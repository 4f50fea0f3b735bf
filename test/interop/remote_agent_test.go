package interop

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// TestRemoteAgentTLSSRTP is issue 17's remote agent against a real client:
// baresip registers over TLS (trusting a `ccpbx cert` certificate), with
// SRTP mandatory on both sides (rtp_secure_media=mandatory on the profile,
// mediaenc=srtp-mand on the phone); it logs in with 300 and hears the
// prompt (generated audio, encrypted for its leg), then dials the echo
// test and hears its own tone back (SRTP both ways through ccpbx); then a
// plain-RTP trunk caller (sipp) calls queue 3000, the agent answers, and
// each side hears the other's tone through ccpbx's decrypt and encrypt.
// A capture on loopback (tshark) of the whole test shows the agent's side
// carries no SIP and no RTP in clear, while the trunk's plain side does.
func TestRemoteAgentTLSSRTP(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: interop suite (real binary, sipp, baresip) does not run with -short")
	}
	tools := requireTools(t, "sipp", "baresip")
	e := &env{t: t, root: repoRoot(t), tools: tools}
	e.art = artifactsDir(t)
	e.scenarios = filepath.Join(e.root, "test", "interop", "sipp")
	bin := os.Getenv("CCPBX_BIN")
	if bin == "" {
		bin = buildBinary(t, e.root, t.TempDir())
	}
	shipped, err := os.ReadFile(filepath.Join(e.root, "config.toml"))
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	certDir := t.TempDir()
	cert, key := filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem")
	if out, err := runOut(bin, e.root, "cert", "--host", "127.0.0.1", "-cert", cert, "-key", key); err != nil {
		t.Fatalf("setup: ccpbx cert: %v\n%s", err, out)
	}
	var tlsPort int
	pbxtest.RetryAddrInUse(t, 5, func() error {
		e.ports.Internal, e.ports.Trunk, e.ports.ESL = sipPort(t), sipPort(t), sipPort(t)
		tlsPort = pbxtest.PortFor(t, "tcp")
		e.ports.RTPStart = pbxtest.UDPPortRange(t, 100)
		e.ports.RTPEnd = e.ports.RTPStart + 99
		c := testConfig(t, string(shipped), e.ports, t.TempDir())
		c = rewrite(t, c, `(?m)^transports = \["udp", "tcp"\]\n# tls_port = 5061$`, fmt.Sprintf(
			"transports = [\"udp\", \"tcp\", \"tls\"]\ntls_port = %d\ntls_cert_file = %q\ntls_key_file = %q\nrtp_secure_media = \"mandatory\"",
			tlsPort, cert, key), 1)
		c = rewrite(t, c, `(?m)^# \[http\]$`, "[http]\nenabled = false", 1)
		cfgPath := filepath.Join(t.TempDir(), "config.toml")
		for _, p := range []string{cfgPath, filepath.Join(e.art, "config-tls.toml")} {
			if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
				t.Fatalf("setup: %v", err)
			}
		}
		if out, err := runOut(bin, e.root, "check", "-config", cfgPath); err != nil {
			t.Fatalf("setup: ccpbx check rejects the TLS config: %v\n%s", err, out)
		}
		e.pbx, err = startPBX(t, bin, cfgPath, e.root, e.art, e.ports)
		return err
	})

	// The capture takes ccpbx's side of everything: its TLS port, its trunk
	// port, its RTP ports (which every RTP packet of the agent's and of the
	// caller's has at one end) and the agent's own SIP port over UDP, which
	// must stay silent (baresip picks that port when it starts, from the
	// quiet range, which the filter takes whole).
	capt := startCapture(t, e.art, "remote-agent", fmt.Sprintf("tcp port %d or udp port %d or udp portrange %d-%d or udp portrange %d-%d",
		tlsPort, e.ports.Trunk, pbxtest.QuietLo, pbxtest.QuietHi, e.ports.RTPStart, e.ports.RTPEnd))

	b := startBaresipWith(t, e, "1001", bsSecure{tlsPort: tlsPort, caFile: cert})
	agentSIP := b.sipPort
	if err := b.waitRegistered(15 * time.Second); err != nil {
		t.Fatalf("baresip did not register over TLS: %v\nbaresip log tail:\n%s", err, tail(b.proc.outPath, 20))
	}
	if regs := e.pbx.mustCLI(t, "register", "show registrations"); !strings.Contains(strings.ToLower(regs), "tls") {
		t.Fatalf("`show registrations` shows no TLS binding:\n%s", regs)
	}

	// decoded waits until the phone has decoded talk's worth of audio in
	// a recording not in before (its dump grows as it plays).
	decoded := func(step string, before []string, talk time.Duration) {
		t.Helper()
		want := int64(44 + talk.Seconds()*sampleRate*2)
		pbxtest.WaitFor(t, 20*time.Second, func() bool {
			for _, r := range b.recordings() {
				if fi, err := os.Stat(r); err == nil && !slices.Contains(before, r) && fi.Size() >= want {
					return true
				}
			}
			return false
		}, "%s: the phone to decode %v of audio", step, talk)
	}
	srtpOn := func(step string, from int) {
		t.Helper()
		for _, ev := range b.since(from) {
			if ev.Type == "CALL_MENC" && strings.Contains(ev.Param, "AES_CM_128_HMAC_SHA1") {
				return
			}
		}
		t.Fatalf("%s: baresip reported no SRTP (CALL_MENC) for the call; events:\n%s", step, bsList(b.since(from)))
	}

	// call dials ext over TLS, requires SRTP to be on, and returns what the
	// phone heard once the call is closed (by the PBX, or by hangup after
	// talk).
	call := func(step, ext string, talk time.Duration) []int16 {
		t.Helper()
		before := b.newCall()
		bm := b.mark()
		if err := b.command("dial", fmt.Sprintf("sip:%s@127.0.0.1:%d;transport=tls", ext, tlsPort)); err != nil {
			t.Fatalf("%s: dial: %v", step, err)
		}
		if _, err := b.waitEvent(bm, "CALL_ESTABLISHED", 20*time.Second); err != nil {
			t.Fatalf("%s: not answered: %v", step, err)
		}
		srtpOn(step, bm)
		if talk > 0 {
			decoded(step, before, talk) // the echo only ends by hangup
			if err := b.command("hangup", ""); err != nil {
				t.Fatalf("%s: hangup: %v", step, err)
			}
		}
		if _, err := b.waitEvent(bm, "CALL_CLOSED", 30*time.Second); err != nil {
			t.Fatalf("%s: not closed: %v", step, err)
		}
		s, path, err := b.heard(before)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		t.Logf("%s: heard (%s) %s", step, filepath.Base(path), analyse(s))
		return s
	}

	// Login with 300: the prompt reaches the agent encrypted for its leg.
	heard := call("login 300", "300", 0)
	if rep := analyse(heard); rep.Loud < 25 {
		t.Errorf("login 300: the agent heard no prompt over SRTP: %s", rep)
	}
	e.expectSound(t, "login 300", "1001", heard, "ivr-you_are_now_logged_in", false)
	if st := strings.TrimSpace(e.pbx.mustCLI(t, "login 300", "callcenter_config agent get status 1001")); st != "Available" {
		t.Errorf("login 300 over TLS: agent status %q, want Available", st)
	}

	// Echo: the agent's tone goes up decrypted and comes back encrypted.
	heard = call("echo 9196", "9196", 3*time.Second)
	if f := toneFraction(heard, agentTone); f < 0.5 {
		t.Errorf("echo 9196: the agent did not hear its own %v Hz tone back over SRTP (fraction %.2f): %s", agentTone, f, analyse(heard))
	}

	// A queue call from the plain trunk: the agent (logged in above) answers
	// on SRTP; the caller is plain RTP.
	const step = "queue call 3000"
	before := b.newCall()
	bm := b.mark()
	b.setPolicy(always("accept"))
	defer b.setPolicy(nil)
	c := e.placeCall(t)
	if _, err := b.waitEvent(bm, "CALL_ESTABLISHED", 30*time.Second); err != nil {
		t.Fatalf("%s: the agent was not offered or did not answer: %v\ncaller trace:\n%s", step, err, tail(c.run.msgFile, 30))
	}
	srtpOn(step, bm)
	bridgedAt := c.peer.count()
	decoded(step, before, 2*time.Second)
	if err := c.peer.waitPackets(bridgedAt, 100, 10*time.Second); err != nil {
		t.Errorf("%s: caller after the bridge: %v", step, err)
	}
	c.hangup(t, step)
	if _, err := b.waitEvent(bm, "CALL_CLOSED", 15*time.Second); err != nil {
		t.Fatalf("%s: the agent's leg did not end after the caller's BYE: %v", step, err)
	}
	s, path, err := b.heard(before)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	agentHeard := analyse(s)
	callerHeard := analyse(samplesOf(c.peer.packets(bridgedAt+10, -1)))
	t.Logf("%s: agent heard (%s) %s; caller heard after the bridge %s", step, filepath.Base(path), agentHeard, callerHeard)
	if agentHeard.CallerTone < 25 {
		t.Errorf("%s: the SRTP agent did not hear the plain caller's %v Hz tone (want >= 0.5 s): %s", step, callerTone, agentHeard)
	}
	if callerHeard.AgentTone < 25 {
		t.Errorf("%s: the plain caller did not hear the SRTP agent's %v Hz tone (want >= 0.5 s): %s", step, agentTone, callerHeard)
	}

	if capt != nil {
		checkCapture(t, capt.stop(t), captureSides{tlsPort: tlsPort, agentSIP: agentSIP, agentRTPLo: b.rtpLo,
			trunk: e.ports.Trunk, callerRTP: c.peer.port()})
	}
}

// captureSides names the ports that tell the agent's packets from the
// trunk's in a capture.
type captureSides struct {
	tlsPort, agentSIP, agentRTPLo int
	trunk, callerRTP              int
}

// checkCapture: the agent's side (ccpbx's TLS port; the agent's SIP and
// RTP ports) has no SIP in clear and only SRTP, i.e. G.711 packets whose
// 160 bytes of audio are followed by an authentication tag (10 bytes for
// _80, 4 for _32) and do not decode to the agent's tone; the trunk's side
// (plain) shows its INVITE and the caller's tone in clear, which proves the
// capture and these checks would have seen them.
func checkCapture(t *testing.T, pkts []capPacket, s captureSides) {
	t.Helper()
	agentRTP := func(port int) bool { return portIn(port, s.agentRTPLo, s.agentRTPLo+63) }
	var tlsBytes, fromAgent, toAgent, callerPlain int
	var fromAgentAudio, callerAudio []int16
	var clear, badSRTP []capPacket
	trunkInvite := false
	for _, p := range pkts {
		agent := (p.tcp && (p.srcPort == s.tlsPort || p.dstPort == s.tlsPort)) ||
			(!p.tcp && (agentRTP(p.srcPort) || agentRTP(p.dstPort) || p.srcPort == s.agentSIP || p.dstPort == s.agentSIP))
		switch {
		case agent:
			if clearSIP(p.payload) != "" {
				clear = append(clear, p)
			}
			if p.tcp {
				tlsBytes += len(p.payload)
				continue
			}
			pt, body, ok := g711Frame(p.payload)
			if !ok {
				continue // SRTCP, STUN and the like
			}
			if len(body) != 160+10 && len(body) != 160+4 {
				badSRTP = append(badSRTP, p)
				continue
			}
			if agentRTP(p.srcPort) {
				fromAgent++
				fromAgentAudio = append(fromAgentAudio, decodeG711(pt, body[:160])...)
			} else {
				toAgent++
			}
		case !p.tcp && (p.srcPort == s.trunk || p.dstPort == s.trunk):
			if bytes.Contains(p.payload, []byte("INVITE ")) {
				trunkInvite = true
			}
		case !p.tcp && p.srcPort == s.callerRTP:
			if pt, body, ok := g711Frame(p.payload); ok && len(body) == 160 {
				callerPlain++
				callerAudio = append(callerAudio, decodeG711(pt, body)...)
			}
		}
	}
	t.Logf("capture: %d packets; agent: %d bytes over TLS, %d SRTP packets from it, %d to it; trunk: INVITE seen %v, %d plain RTP packets from the caller",
		len(pkts), tlsBytes, fromAgent, toAgent, trunkInvite, callerPlain)
	if len(clear) > 0 {
		t.Errorf("capture: SIP in clear on the agent's side:\n%s", describe(clear))
	}
	if len(badSRTP) > 0 {
		t.Errorf("capture: RTP to or from the agent without an SRTP authentication tag:\n%s", describe(badSRTP))
	}
	if tlsBytes == 0 {
		t.Errorf("capture: no traffic on ccpbx's TLS port %d", s.tlsPort)
	}
	if fromAgent < 50 || toAgent < 50 {
		t.Errorf("capture: %d SRTP packets from the agent and %d to it, want 50 or more each", fromAgent, toAgent)
	}
	if f := toneFraction(fromAgentAudio, agentTone); f > 0.1 {
		t.Errorf("capture: the agent's packets decode to its %v Hz tone in clear (fraction %.2f)", agentTone, f)
	}
	if !trunkInvite {
		t.Errorf("capture: the trunk's INVITE (plain UDP) was not seen in clear; the capture misses traffic")
	}
	if f := toneFraction(callerAudio, callerTone); callerPlain < 50 || f < 0.5 {
		t.Errorf("capture: the caller's plain RTP (%d packets) does not decode to its %v Hz tone (fraction %.2f); the capture misses traffic",
			callerPlain, callerTone, f)
	}
}
