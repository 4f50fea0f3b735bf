package interop

import (
	"fmt"
	"testing"
	"time"
)

// stepExtensionCalls: extension to extension through ccpbx with real SIP
// software on both ends (issue #4's interop check), each way round: sipp
// 1002 calls baresip 1001, then baresip 1001 calls sipp 1002. The two ends
// send different tones and each must hear the other's; the caller's BYE
// ends the callee's leg.
func (e *env) stepExtensionCalls(t *testing.T) {
	const step = "step 2b (extension calls 1002 -> 1001 and 1001 -> 1002)"
	b := e.b1001

	// sipp 1002 (450 Hz) calls baresip 1001 (1250 Hz), which answers.
	before := b.newCall()
	bm := b.mark()
	b.setPolicy(always("accept"))
	defer b.setPolicy(nil)
	peer := newRTPPeer(t, "1002-calls-1001", callerTone)
	run := e.runSipp(t, "ext-1002-to-1001", "extension_call.xml", e.internalAddr(), e.port1002,
		"-s", "1001", "-key", "caller", "1002", "-key", "rtp_port", itoa(peer.port()), "-au", "1002", "-ap", "1234", "-m", "1",
		"-auth_uri", fmt.Sprintf("1001@127.0.0.1:%d", e.ports.Internal))
	if _, err := b.waitEvent(bm, "CALL_ESTABLISHED", 20*time.Second); err != nil {
		t.Fatalf("%s: 1001 never answered 1002's call: %v\ncaller trace:\n%s", step, err, tail(run.msgFile, 30))
	}
	if err := peer.waitPackets(0, 100, 10*time.Second); err != nil {
		t.Fatalf("%s: 1002 (caller): %v", step, err)
	}
	if err := run.hangup(); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if err := run.finish(20 * time.Second); err != nil {
		t.Fatalf("%s: 1002 calls 1001: %v", step, err)
	}
	if _, err := b.waitEvent(bm, "CALL_CLOSED", 15*time.Second); err != nil {
		t.Fatalf("%s: 1002's BYE did not end 1001's leg: %v", step, err)
	}
	calleeHeard, path, err := b.heard(before)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	callee := analyse(calleeHeard)
	caller := analyse(samplesOf(peer.packets(10, -1)))
	t.Logf("%s: 1001 heard (%s) %s; 1002 heard %s", step, path, callee, caller)
	if callee.CallerTone < 25 {
		t.Errorf("%s: 1001 did not hear 1002's %v Hz tone through ccpbx (want >= 0.5 s of it): %s", step, callerTone, callee)
	}
	if caller.AgentTone < 25 {
		t.Errorf("%s: 1002 did not hear 1001's %v Hz tone through ccpbx (want >= 0.5 s of it): %s", step, agentTone, caller)
	}
	b.setPolicy(nil)

	// baresip 1001 (1250 Hz) calls sipp 1002 (450 Hz), which answers after
	// ringing a second; 1001 hangs up.
	before = b.newCall()
	bm = b.mark()
	calleePeer := newRTPPeer(t, "1002-called-by-1001", callerTone)
	uas := e.runSipp(t, "ext-1001-to-1002", "agent_answer.xml", "", e.port1002,
		"-s", "1002", "-key", "rtp_port", itoa(calleePeer.port()), "-m", "1", "-d", "1000")
	waitUDPBound(t, "sipp 1002 (called by 1001)", e.port1002, uas.proc)
	if err := b.command("dial", fmt.Sprintf("sip:1002@127.0.0.1:%d", e.ports.Internal)); err != nil {
		t.Fatalf("%s: baresip dial 1002: %v", step, err)
	}
	if _, err := b.waitEvent(bm, "CALL_ESTABLISHED", 20*time.Second); err != nil {
		t.Fatalf("%s: 1002 never answered 1001's call: %v\ncallee trace:\n%s", step, err, tail(uas.msgFile, 30))
	}
	if err := calleePeer.waitPackets(0, 100, 10*time.Second); err != nil {
		t.Fatalf("%s: 1002 (callee): %v", step, err)
	}
	if err := b.command("hangup", ""); err != nil {
		t.Fatalf("%s: baresip hangup: %v", step, err)
	}
	if err := uas.finish(15 * time.Second); err != nil {
		t.Fatalf("%s: 1001's BYE did not end 1002's leg: %v", step, err)
	}
	callerHeard, path, err := b.heard(before)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	caller = analyse(callerHeard)
	callee = analyse(samplesOf(calleePeer.packets(10, -1)))
	t.Logf("%s: 1001 heard (%s) %s; 1002 heard %s", step, path, caller, callee)
	if caller.CallerTone < 25 {
		t.Errorf("%s: 1001 did not hear 1002's %v Hz tone through ccpbx (want >= 0.5 s of it): %s", step, callerTone, caller)
	}
	if callee.AgentTone < 25 {
		t.Errorf("%s: 1002 did not hear 1001's %v Hz tone through ccpbx (want >= 0.5 s of it): %s", step, agentTone, callee)
	}
}
