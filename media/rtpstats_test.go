package media

import (
	"fmt"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// TestSeqTracker: lost counts the numbers a forward jump skipped, late the
// packets at or before the highest number, and a new SSRC or a jump past
// RFC 3550's bounds starts over without counting.
func TestSeqTracker(t *testing.T) {
	type pkt struct {
		ssrc uint32
		seq  uint16
	}
	for _, tc := range []struct {
		name       string
		pkts       []pkt
		late, lost uint64
	}{
		{"in order", []pkt{{1, 10}, {1, 11}, {1, 12}}, 0, 0},
		{"gap", []pkt{{1, 10}, {1, 13}}, 0, 2},
		{"reordered", []pkt{{1, 10}, {1, 12}, {1, 11}}, 1, 1},
		{"duplicate", []pkt{{1, 10}, {1, 10}}, 1, 0},
		{"wraps", []pkt{{1, 65535}, {1, 0}, {1, 2}}, 0, 1},
		{"new ssrc", []pkt{{1, 10}, {2, 500}, {2, 501}}, 0, 0},
		{"restart forward", []pkt{{1, 10}, {1, 10 + maxDropout + 1}, {1, 10 + maxDropout + 2}}, 0, 0},
		{"restart backward", []pkt{{1, 1000}, {1, 1000 - maxMisorder - 1}, {1, 1000 - maxMisorder}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q seqTracker
			var tot rtpTotals
			for _, p := range tc.pkts {
				q.feed(&rtpHeader{ssrc: p.ssrc, seq: p.seq}, &tot)
			}
			if late, lost := tot.late.Load(), tot.lost.Load(); late != tc.late || lost != tc.lost {
				t.Fatalf("late %d lost %d, want %d %d", late, lost, tc.late, tc.lost)
			}
		})
	}
}

// TestEngineStats: the engine's totals count packets over real sockets:
// accepted, sent, late, lost, and refused before any SDP.
func TestEngineStats(t *testing.T) {
	e := newEngine(t, Config{})
	a := newPeer(t)
	l := answeredLeg(t, e, a, "0 100", "a=rtpmap:100 telephone-event/8000")
	payload := make([]byte, 160)
	a.sendRaw(l, 0, false, 100, 16000, payload)
	a.sendRaw(l, 0, false, 103, 16480, payload) // 101 and 102 lost
	a.sendRaw(l, 0, false, 102, 16320, payload) // late
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return e.Stats().PacketsIn == 3 }, "3 packets in: %v", statsOf{e})

	bare, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	a.send(bare, 0, false, payload)
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return e.Stats().SourceRejected == 1 }, "a rejected packet: %v", statsOf{e})

	if err := l.SendDigits("1"); err != nil {
		t.Fatal(err)
	}
	for range 8 { // one digit is 8 RFC 4733 packets
		a.recv()
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return e.Stats().PacketsOut == 8 }, "8 packets out: %v", statsOf{e})
	if s := e.Stats(); s.PacketsIn != 3 || s.Late != 1 || s.Lost != 2 || s.SourceRejected != 1 {
		t.Fatalf("engine stats %+v, leg %+v", s, l.Stats())
	}
}

// statsOf prints an engine's counters when a wait fails.
type statsOf struct{ e *Engine }

func (s statsOf) String() string { return fmt.Sprintf("%+v", s.e.Stats()) }
