package main

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

const (
	callerHz = 450.0  // the customer's tone
	agentHz  = 1250.0 // the agent's tone
)

// recordingPBX is the shipped PBX with queue 3000@default's record-template
// set to template, recordings in a temporary folder, agent 1001 logged in.
func recordingPBX(t *testing.T, template string) (p *pbx, dir string, agent *testphone.Phone, events <-chan *call.Event) {
	t.Helper()
	dir = t.TempDir()
	p = testPBX(t, func(c *config.Config) {
		c.Core.RecordingsDir = dir
		c.Callcenter.Queue("3000@default").RecordTemplate = template
	})
	events, cancel := p.core.Bus.Subscribe(64, func(e *call.Event) bool {
		return e.Name == "RECORD_START" || e.Name == "RECORD_STOP"
	})
	t.Cleanup(cancel)
	agent = agentPhone(t, p, "1001")
	dialAndWaitHangup(t, agent, "300")
	return p, dir, agent, events
}

func nextEvent(t *testing.T, events <-chan *call.Event, name string) *call.Event {
	t.Helper()
	select {
	case e := <-events:
		if e.Name != name {
			t.Fatalf("event %s (%v), want %s", e.Name, e.Headers, name)
		}
		return e
	case <-time.After(15 * time.Second):
		t.Fatalf("no %s event", name)
	}
	return nil
}

// A queue call with record-template is recorded from bridge to hangup:
// the customer's tone on the left, the agent's on the right.
func TestQueueCallRecorded(t *testing.T) {
	p, dir, agent, events := recordingPBX(t, "queue/${caller_id_number}.wav")
	trunk := testphone.New(t)
	begin := time.Now()
	cust := trunkCall(t, p, trunk, "5550001")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := agent.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	start := nextEvent(t, events, "RECORD_START")
	if got := start.Get("Record-File-Path"); got != "queue/5550001.wav" {
		t.Fatalf("Record-File-Path %q", got)
	}
	// The bridge is up once the recording runs; both talk, each its tone.
	const n = 50
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cust.Audio.SendTone(ctx, callerHz, n) }()
	go func() { defer wg.Done(); in.Audio.SendTone(ctx, agentHz, n) }()
	wg.Wait()
	// Both tones have crossed the PBX before the customer hangs up.
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return cust.Audio.Packets() > 0 && in.Audio.Packets() >= n }, "the tones to cross")
	if err := cust.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	stop := nextEvent(t, events, "RECORD_STOP")
	elapsed := time.Since(begin)
	if stop.Get("Record-File-Path") != "queue/5550001.wav" || stop.Get("Record-Completion-Cause") != "" {
		t.Fatalf("RECORD_STOP %v", stop.Headers)
	}
	ch, err := testphone.ReadWAV(filepath.Join(dir, "queue", "5550001.wav"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 {
		t.Fatalf("%d channels, want stereo", len(ch))
	}
	left, right := ch[0], ch[1]
	t.Logf("%d samples: left %d caller / %d agent frames, right %d caller / %d agent frames",
		len(left), testphone.ToneFrames(left, callerHz), testphone.ToneFrames(left, agentHz),
		testphone.ToneFrames(right, callerHz), testphone.ToneFrames(right, agentHz))
	// Bridge to hangup: at least the n frames both sent, at most the call.
	if lo, hi := n*160, int(elapsed.Seconds()*8000); len(left) < lo || len(left) > hi {
		t.Errorf("%d samples, want %d..%d", len(left), lo, hi)
	}
	if got := testphone.ToneFrames(left, callerHz); got < n-3 {
		t.Errorf("left: %d frames of the caller's tone, want >= %d", got, n-3)
	}
	if got := testphone.ToneFrames(right, agentHz); got < n-3 {
		t.Errorf("right: %d frames of the agent's tone, want >= %d", got, n-3)
	}
	if testphone.ToneFrames(left, agentHz) != 0 || testphone.ToneFrames(right, callerHz) != 0 {
		t.Error("a tone is on the wrong channel")
	}
}

// A record-template outside recordings_dir records nothing; the call goes
// on and RECORD_STOP says why.
func TestQueueCallUnwritableRecording(t *testing.T) {
	p, _, agent, events := recordingPBX(t, "/proc/ccpbx-no/${caller_id_number}.wav")
	trunk := testphone.New(t)
	cust := trunkCall(t, p, trunk, "5550002")
	in := answerAndTalk(t, agent, cust) // audio crosses both ways
	stop := nextEvent(t, events, "RECORD_STOP")
	if stop.Get("Record-Completion-Cause") != "error" || stop.Get("Record-Error") == "" || stop.Get("Record-File-Path") != "/proc/ccpbx-no/5550002.wav" {
		t.Fatalf("RECORD_STOP %v", stop.Headers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cust.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}
