package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// kamailioModules is where Debian's kamailio package keeps its modules.
const kamailioModules = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

// kamailioIP is Kamailio's address in the test: another loopback address
// than ccpbx's, so a request that crossed it is plain from its Via.
const kamailioIP = "127.0.0.2"

// kamailio is the shipped packaging/kamailio/kamailio.cfg running in
// front of a test PBX.
type kamailio struct {
	phones, trunks string // host:port for phones and for trunks
	proc           *proc
}

// kamailioBinary finds kamailio; without it the test skips, or fails
// under CI=true (.ci/run installs it).
func kamailioBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		msg := "the Kamailio test needs kamailio on PATH (Debian: apt-get install kamailio)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return bin
}

// startKamailio runs Debian's kamailio (bin) with the shipped config, its
// addresses and ports given as defines (-A) and its node list pointing at
// p's two profiles plus the extra dispatcher.list lines, logging to the
// artifacts.
func startKamailio(t *testing.T, bin, root, art string, p pbxPorts, extra ...string) *kamailio {
	t.Helper()
	dir := t.TempDir()
	list := filepath.Join(dir, "dispatcher.list")
	shipped := string(mustRead(t, filepath.Join(root, "packaging", "kamailio", "dispatcher.list")))
	shipped = rewrite(t, shipped, `(?m)^1 sip:127\.0\.0\.1:5080 `, fmt.Sprintf("1 sip:127.0.0.1:%d ", p.Trunk), 1)
	shipped = rewrite(t, shipped, `(?m)^2 sip:127\.0\.0\.1:5060 `, fmt.Sprintf("2 sip:127.0.0.1:%d ", p.Internal), 1)
	for _, l := range extra {
		shipped += l + "\n"
	}
	if err := writeFile(list, shipped); err != nil {
		t.Fatal(err)
	}
	k := &kamailio{}
	phonePort, trunkPort := sipPort(t), sipPort(t)
	k.phones, k.trunks = fmt.Sprintf("%s:%d", kamailioIP, phonePort), fmt.Sprintf("%s:%d", kamailioIP, trunkPort)
	k.proc = startProc(t, "kamailio", filepath.Join(art, "kamailio.log"), dir, bin,
		"-f", filepath.Join(root, "packaging", "kamailio", "kamailio.cfg"),
		"-DD", "-E", "-L", kamailioModules, "-w", dir, "-Y", dir, "-m", "64", "-M", "8",
		"-A", "KAM_IP="+kamailioIP, "-A", fmt.Sprintf("PHONE_PORT=%d", phonePort),
		"-A", fmt.Sprintf("TRUNK_PORT=%d", trunkPort), "-A", fmt.Sprintf("DS_LIST=%q", list),
		"-A", "DS_PING_INTERVAL=1")
	return k
}

// waitUp waits until Kamailio answers an OPTIONS on its phone port.
func (k *kamailio) waitUp(t *testing.T, ph *testphone.Phone) {
	t.Helper()
	ap := netip.MustParseAddrPort(k.phones)
	pbxtest.WaitFor(t, 15*time.Second, func() bool {
		if exited, _ := k.proc.wait(0); exited {
			t.Fatalf("kamailio exited: %v\n%s", k.proc.err, tail(k.proc.outPath, 30))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req := sipmsg.NewRequest(sipmsg.OPTIONS, sipmsg.Uri{Scheme: "sip", Host: ap.Addr().String(), Port: int(ap.Port())})
		res, err := ph.Do(ctx, req)
		return err == nil && res.StatusCode == 200
	}, "kamailio to answer OPTIONS on %s", k.phones)
}

// TestBehindKamailio is README "Behind Kamailio" over real sockets: an
// agent's phone registers through Kamailio (which adds a Path), a trunk
// call enters through Kamailio's dispatcher to the queue 3000 (after a
// failing node's 503, on to the next node), the agent
// rings along the Path and answers, audio flows both ways directly
// between the phones and ccpbx, and the hang-up reaches the agent through
// Kamailio.
func TestBehindKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED: interop suite (real binary, kamailio) does not run with -short")
	}
	kam := kamailioBinary(t)
	root := repoRoot(t)
	// Its own folder: the article's test writes ccpbx.log to the run's.
	art := filepath.Join(artifactsDir(t), "kamailio")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("CCPBX_BIN")
	if bin == "" {
		bin = buildBinary(t, root, t.TempDir())
	}
	shipped := string(mustRead(t, filepath.Join(root, "config.toml")))
	var ports pbxPorts
	var pbx *pbx
	pbxtest.RetryAddrInUse(t, 5, func() error {
		ports = pbxPorts{Internal: sipPort(t), Trunk: sipPort(t), ESL: sipPort(t)}
		ports.RTPStart = pbxtest.UDPPortRange(t, 100)
		ports.RTPEnd = ports.RTPStart + 99
		cfgPath := filepath.Join(t.TempDir(), "config.toml")
		if err := writeFile(cfgPath, testConfig(t, shipped, ports, t.TempDir())); err != nil {
			t.Fatal(err)
		}
		var err error
		pbx, err = startPBX(t, bin, cfgPath, root, art, ports)
		return err
	})
	// A node that fails every call (503) comes first in the trunk set: the
	// dispatcher must move the call on to ccpbx. It answers the probes.
	down := testphone.New(t)
	down.SetPlan(testphone.Plan{Status: 503})
	k := startKamailio(t, kam, root, art, ports, fmt.Sprintf("1 sip:%s 0 20", down.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nkamailio log:\n%s\nccpbx log:\n%s", append(args, tail(k.proc.outPath, 25), tail(pbx.logPath, 25))...)
	}

	agent := testphone.New(t)
	k.waitUp(t, agent)

	// 1. The agent's phone registers through Kamailio; ccpbx keeps the Path
	// and lists it as FreeSWITCH does.
	res, err := agent.Register(ctx, k.phones, "1001", "1234", time.Hour)
	if err != nil || res.StatusCode != 200 {
		fail("register 1001 through kamailio: %v %v", res, err)
	}
	regs := pbx.mustCLI(t, "registrations", "show registrations")
	if !strings.Contains(regs, "fs_path=%3Csip%3A"+kamailioIP) {
		fail("`show registrations` has no Path through %s:\n%s", kamailioIP, regs)
	}
	pbx.mustCLI(t, "login", "callcenter_config agent set status 1001 'Available'")

	// 2. A trunk call to 3000 through Kamailio's dispatcher, which tries
	// the failing node first and then ccpbx; the agent rings along the Path.
	trunk := testphone.New(t)
	caller, err := trunk.Invite(ctx, k.trunks, "5551234", "3000")
	if err != nil {
		fail("trunk INVITE: %v", err)
	}
	if code, err := caller.WaitFinal(ctx); err != nil || code != 200 {
		fail("the queue did not answer the trunk call through kamailio: %d %v (codes %v)", code, err, caller.Codes())
	}
	if _, err := down.Incoming(ctx); err != nil {
		fail("the failing node was not tried first: %v", err)
	}
	for _, code := range caller.Codes() {
		if code == 503 {
			fail("the trunk saw the failing node's 503 (codes %v): no failover", caller.Codes())
		}
	}
	in, err := agent.Incoming(ctx)
	if err != nil {
		fail("agent 1001 did not ring: %v", err)
	}
	inv := in.Request()
	if v := inv.Via(); v == nil || v.Host != kamailioIP {
		fail("the agent's INVITE did not come through kamailio (top Via %v)", v)
	}
	if rr := inv.GetHeader("Record-Route"); rr == nil || !strings.Contains(rr.Value(), kamailioIP) {
		fail("kamailio did not record-route the agent's INVITE: %v", rr)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitAcked(ctx); err != nil {
		fail("the agent's 200 was not ACKed: %v", err)
	}

	// 3. Audio both ways, directly: the SDP each phone got is ccpbx's.
	for who, c := range map[string]*testphone.Call{"caller": caller, "agent": in} {
		var sdp []byte
		if c == caller {
			sdp = c.Final().Body()
		} else {
			sdp = c.Request().Body()
		}
		a, err := testphone.SDPAddr(sdp)
		if err != nil || a.Addr().String() != "127.0.0.1" {
			fail("%s's media address %v (%v), want ccpbx's 127.0.0.1, not kamailio", who, a, err)
		}
	}
	if err := caller.Audio.SendUntil(ctx, 0x11, func() bool { return in.Audio.Received(0x11) > 0 }); err != nil {
		fail("caller → agent audio: %v", err)
	}
	if err := in.Audio.SendUntil(ctx, 0x22, func() bool { return caller.Audio.Received(0x22) > 0 }); err != nil {
		fail("agent → caller audio: %v", err)
	}

	// 4. The caller hangs up; ccpbx's BYE reaches the agent through
	// Kamailio (the route set of the agent's dialog).
	if err := caller.Hangup(ctx); err != nil {
		fail("caller BYE: %v", err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		fail("the agent's call did not end: %v", err)
	}
	if bye := in.Bye(); bye == nil || bye.Via() == nil || bye.Via().Host != kamailioIP {
		fail("the agent's BYE did not come through kamailio: %v", bye)
	}
}
