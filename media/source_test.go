package media

import (
	"bytes"
	"context"
	"testing"
	"testing/fstest"
	"time"

	"ccpbx/internal/pbxtest"
)

// The attacks of issue 10 ("RTP bleed", "Amplification") and the
// multi-homed phone, over real sockets on 127.0.0.x. The attacker sits on
// another loopback address than the phone, as it would on another host.

const attackerIP = "127.0.0.66"

// secureEngine runs the consent policy ccpbx ships with.
func secureEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.Consent = ConsentConfirmOrRTP
	return newEngine(t, cfg)
}

// callLeg is a leg that answered p's offer, knows the signalling came from
// p's IP, and was confirmed (the ACK arrived).
func callLeg(t *testing.T, e *Engine, p *peer) *Leg {
	t.Helper()
	l := answeredLeg(t, e, p, "0")
	l.SetSignallingSource(p.addr().Addr())
	l.Confirm()
	return l
}

// hears reports whether p receives a packet within a short wait.
func hears(p *peer) bool {
	_, ok := p.tryRecv(100 * time.Millisecond)
	return ok
}

// recvPayload reads until a packet whose payload starts with b arrives.
func recvPayload(t *testing.T, p *peer, b byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		pkt, ok := p.tryRecv(time.Until(deadline))
		if ok && len(pkt.Payload) > 0 && pkt.Payload[0] == b {
			return
		}
	}
	t.Fatalf("no packet with payload 0x%02x arrived", b)
}

// TestSpoofBeforePhoneSpeaksDoesNotStealMusic: one packet to the port from
// a stranger before the phone sent anything leaves the music with the phone.
func TestSpoofBeforePhoneSpeaksDoesNotStealMusic(t *testing.T) {
	e := secureEngine(t, Config{})
	phone, attacker := newPeer(t), newPeerOn(t, attackerIP)
	l := callLeg(t, e, phone)
	stop, err := l.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	phone.recv()
	attacker.ssrc = 0x666
	attacker.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().UnexpectedSource == 1 }, "spoofed packet dropped")
	for range 10 { // music goes on, to the phone
		phone.recv()
	}
	if hears(attacker) {
		t.Fatal("the attacker received music")
	}
	if s := l.Stats(); s.Remote != phone.addr() || s.PacketsIn != 0 || s.Learned != 0 {
		t.Fatalf("after the spoof: %+v", s)
	}
}

// TestAttackerCannotRelatchEstablishedStream: the phone spoke; a long
// consistent run from a stranger (the old guard gave up after 5) never
// moves the stream, nor does it move a stream learned from a stranger.
func TestAttackerCannotRelatchEstablishedStream(t *testing.T) {
	e := secureEngine(t, Config{})
	phone, attacker := newPeer(t), newPeerOn(t, attackerIP)
	l := callLeg(t, e, phone)
	stop, err := l.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	phone.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().PacketsIn == 1 }, "phone accepted")
	attacker.ssrc = 0x666
	const run = 5 * DefaultProbation
	for range run {
		attacker.send(l, 0, false, make([]byte, 160))
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().UnexpectedSource == run }, "attack dropped")
	phone.recv()
	if hears(attacker) {
		t.Fatal("the attacker received music")
	}
	if s := l.Stats(); s.Remote != phone.addr() || s.PacketsIn != 1 {
		t.Fatalf("after the attack: %+v", s)
	}

	// A stream learned from an unexpected source (a multi-homed phone) is
	// just as firm against another stranger.
	sdpSock, media2 := newPeer(t), newPeerOn(t, "127.0.0.2")
	l2 := answeredLeg(t, e, sdpSock, "0")
	l2.Confirm()
	for range DefaultProbation {
		media2.send(l2, 0, false, make([]byte, 160))
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l2.Stats().Learned == 1 }, "learned")
	for range run {
		attacker.send(l2, 0, false, make([]byte, 160))
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l2.Stats().UnexpectedSource == DefaultProbation-1+run }, "attack dropped")
	if s := l2.Stats(); s.Remote != media2.addr() {
		t.Fatalf("learned stream moved to %v", s.Remote)
	}
}

// TestMultiHomedPhoneTwoWayAudio: the caller's SDP and registration say
// 127.0.0.1 but its RTP comes from 127.0.0.2, which matches neither. After
// the probation the leg learns that source, and a call bridged to an agent
// has audio both ways.
func TestMultiHomedPhoneTwoWayAudio(t *testing.T) {
	e := secureEngine(t, Config{})
	callerSDP, callerRTP := newPeer(t), newPeerOn(t, "127.0.0.2")
	agent := newPeer(t)
	caller := answeredLeg(t, e, callerSDP, "0")
	caller.SetSignallingSource(loopback)
	caller.Confirm()
	agentLeg := callLeg(t, e, agent)
	disconnect, err := Connect(caller, agentLeg)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect()

	frame := bytes.Repeat([]byte{0x11}, 160)
	for range DefaultProbation {
		callerRTP.send(caller, 0, false, frame)
	}
	recvPayload(t, agent, 0x11) // the agent hears the caller
	if s := caller.Stats(); s.Learned != 1 || s.Remote != callerRTP.addr() || s.UnexpectedSource != DefaultProbation-1 {
		t.Fatalf("caller leg: %+v", s)
	}
	agent.send(agentLeg, 0, false, bytes.Repeat([]byte{0x22}, 160))
	recvPayload(t, callerRTP, 0x22) // the caller hears the agent
}

// TestNoMediaBeforeConsent: a leg with an answered SDP sends nothing (here
// a whole prompt) until Confirm or the peer's first packet, as the policy
// says; ConsentNone keeps the old behaviour.
func TestNoMediaBeforeConsent(t *testing.T) {
	short := wavFile(1, 1, 8000, 16, pcm16(make([]int16, 800)...)) // 5 frames
	sounds := fstest.MapFS{"short.wav": {Data: short}}
	for _, tc := range []struct {
		policy            ConsentPolicy
		atOnce, rtp, conf bool // sends: before anything, after RTP only, after Confirm only
	}{
		{ConsentNone, true, true, true},
		{ConsentConfirmOrRTP, false, true, true},
		{ConsentConfirm, false, false, true},
		{ConsentRTP, false, true, false},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			e := newEngine(t, Config{Consent: tc.policy, SoundsFS: sounds})
			play := func(l *Leg, p *peer, want bool, when string) {
				t.Helper()
				before := l.Stats().PacketsOut
				if err := l.Play(context.Background(), "short.wav"); err != nil {
					t.Fatal(err)
				}
				sent := l.Stats().PacketsOut - before
				if want && (sent == 0 || !hears(p)) {
					t.Fatalf("%s: nothing sent", when)
				}
				if !want && (sent != 0 || hears(p)) {
					t.Fatalf("%s: %d packets sent before consent", when, sent)
				}
				p.drain()
			}
			p := newPeer(t)
			l := answeredLeg(t, e, p, "0")
			l.SetSignallingSource(loopback)
			play(l, p, tc.atOnce, "answered")
			p.send(l, 0, false, make([]byte, 160))
			pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().PacketsIn == 1 }, "packet")
			play(l, p, tc.rtp, "after RTP")

			p2 := newPeer(t)
			l2 := answeredLeg(t, e, p2, "0")
			l2.Confirm()
			play(l2, p2, tc.conf, "after Confirm")
			if l2.Stats().Consent != tc.conf {
				t.Fatalf("Stats.Consent %v", l2.Stats().Consent)
			}
		})
	}
}

// TestReinviteMoveNeedsRTP: a new SDP address takes effect only when RTP
// arrives from it or from the signalling source, so a re-INVITE cannot aim
// the leg at a third party; a re-INVITE for hold and resume changes nothing.
func TestReinviteMoveNeedsRTP(t *testing.T) {
	short := wavFile(1, 1, 8000, 16, pcm16(make([]int16, 800)...))
	e := secureEngine(t, Config{SoundsFS: fstest.MapFS{"short.wav": {Data: short}}})
	phone, victim := newPeer(t), newPeerOn(t, "127.0.0.5")
	l := callLeg(t, e, phone)
	phone.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().PacketsIn == 1 }, "phone accepted")

	// Hold and resume at the same address keep the stream where it is.
	for _, dir := range []string{"a=sendonly", "a=sendrecv"} {
		if _, err := l.AnswerOffer(phone.offer("0", dir)); err != nil {
			t.Fatal(err)
		}
		if got := l.Stats().Remote; got != phone.addr() {
			t.Fatalf("%s moved the stream to %v", dir, got)
		}
	}

	if _, err := l.AnswerOffer(victim.offer("0")); err != nil {
		t.Fatal(err)
	}
	before := l.Stats().PacketsOut
	if err := l.Play(context.Background(), "short.wav"); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.PacketsOut != before || s.Remote.IsValid() || hears(victim) {
		t.Fatalf("sent to an unproven address: %+v", s)
	}
	// The phone really moved there: its first packet from the new address
	// proves it.
	victim.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().Remote == victim.addr() }, "moved")
	if err := l.Play(context.Background(), "short.wav"); err != nil {
		t.Fatal(err)
	}
	victim.recv()

	// A move proven by RTP from the signalling source goes to that source.
	third := newPeerOn(t, "127.0.0.6")
	if _, err := l.AnswerOffer(third.offer("0")); err != nil {
		t.Fatal(err)
	}
	if l.Stats().Remote.IsValid() {
		t.Fatal("sending to an unproven address")
	}
	phone.send(l, 0, false, make([]byte, 160))
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return l.Stats().Remote == phone.addr() }, "signalling source")
	if hears(third) {
		t.Fatal("the third party received media")
	}
}
