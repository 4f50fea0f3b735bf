package media

import (
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// TestStreamSourceSwitch: sources stack, only the top one is heard, and a
// switch continues the sequence, sets the marker and advances the timestamp
// by the elapsed time (at least one frame).
func TestStreamSourceSwitch(t *testing.T) {
	e := newEngine(t, Config{})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0")
	frame := make([]byte, 160)
	music, prompt := &source{kind: "music"}, &source{kind: "prompt"}
	l.out.push(music)
	l.out.sendFrame(music, frame, frame, 160, true)
	l.out.sendFrame(music, frame, frame, 160, true)
	l.out.push(prompt)
	l.out.sendFrame(music, frame, frame, 160, true) // not on top: silent
	// Real time passing between two frames is what this test is about: the
	// switch must advance the timestamp by the elapsed time, so it sleeps.
	time.Sleep(100 * time.Millisecond)
	l.out.sendFrame(prompt, frame, frame, 160, true)
	l.out.sendFrame(prompt, frame, frame, 160, true)
	l.out.remove(prompt)
	l.out.remove(prompt)                             // twice is harmless
	l.out.sendFrame(prompt, frame, frame, 160, true) // removed: silent
	l.out.sendFrame(music, frame, frame, 160, true)

	var pk [5]rxPacket
	for i := range pk {
		pk[i] = p.recv()
	}
	if _, ok := p.tryRecv(50 * time.Millisecond); ok {
		t.Fatal("a source that was not on top was heard")
	}
	for i := 1; i < len(pk); i++ {
		if pk[i].SSRC != pk[0].SSRC || pk[i].SequenceNumber != pk[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: SSRC/seq not continuous", i)
		}
	}
	wantMarker := []bool{true, false, true, false, true}
	for i, m := range wantMarker {
		if pk[i].Marker != m {
			t.Fatalf("packet %d marker %v", i, pk[i].Marker)
		}
	}
	if d := pk[1].Timestamp - pk[0].Timestamp; d != 160 {
		t.Fatalf("same source step %d", d)
	}
	if d := pk[2].Timestamp - pk[1].Timestamp; d < 800 {
		t.Fatalf("switch after 100 ms advanced the timestamp by %d, want >= 800", d)
	}
	if d := pk[4].Timestamp - pk[3].Timestamp; d < 160 {
		t.Fatalf("immediate switch advanced the timestamp by %d, want >= 160", d)
	}
}

// TestMusicReplacesMusic: a second Music call replaces the first, and the
// first stop function then does nothing to the second.
func TestMusicReplacesMusic(t *testing.T) {
	e := newEngine(t, Config{})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0")
	stop1, err := l.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	stop2, err := l.Music(loggedInPath)
	if err != nil {
		t.Fatal(err)
	}
	l.out.mu.Lock()
	n := len(l.out.sources)
	l.out.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d sources after two Music calls, want 1", n)
	}
	stop1()
	if l.out.top.Load() == nil {
		t.Fatal("the first stop removed the second music")
	}
	stop2()
	if l.out.top.Load() != nil {
		t.Fatal("music left on the stream after stop")
	}
}

// TestMusicShards: many subscribers spread over clock goroutines of at most
// mohShardSize each, at distinct phases; the clocks end when the last
// listener leaves.
func TestMusicShards(t *testing.T) {
	e := newEngine(t, Config{})
	music, err := e.Sound(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.broadcaster(music)
	if err != nil {
		t.Fatal(err)
	}
	// Legs without sockets or SDP: the clocks run but send nothing.
	var subs []*mohSub
	for range 2*mohShardSize + 10 {
		subs = append(subs, b.subscribe(&Leg{}))
	}
	b.mu.Lock()
	phases := map[int64]bool{}
	for _, sh := range b.shards {
		if sh.n > mohShardSize || !sh.running {
			t.Errorf("shard with %d subscribers, running %v", sh.n, sh.running)
		}
		phases[sh.phase] = true
	}
	nshards := len(b.shards)
	b.mu.Unlock()
	if nshards != 3 || len(phases) != 3 {
		t.Fatalf("%d shards at %d phases, want 3", nshards, len(phases))
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { ticks, _ := e.MusicStats(mohPath); return ticks > 3 }, "clock ticks")
	for _, s := range subs {
		b.unsubscribe(s)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, sh := range b.shards {
			if sh.running {
				return false
			}
		}
		return true
	}, "every MOH shard's clock to stop")
	for i, want := range []int64{0, frameNs / 2, frameNs / 4, 3 * frameNs / 4} {
		if got := shardPhase(i); got != want {
			t.Errorf("shardPhase(%d) = %d, want %d", i, got, want)
		}
	}
}
