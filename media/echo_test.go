package media

import (
	"bytes"
	"errors"
	"testing"
)

// TestEchoReturnsAudioToSender checks that an echoing leg sends the caller's
// own payload back on its stream, refuses a bridge meanwhile, and hands back
// to the music when stopped.
func TestEchoReturnsAudioToSender(t *testing.T) {
	e := newEngine(t, Config{})
	p := newPeer(t)
	l := answeredLeg(t, e, p, "0 101", "a=rtpmap:101 telephone-event/8000")
	stopMusic, err := l.Music(mohPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stopMusic()
	first := p.recv()

	stop, err := l.Echo()
	if err != nil {
		t.Fatal(err)
	}
	other := answeredLeg(t, e, newPeer(t), "0")
	if _, err := Connect(l, other); !errors.Is(err, ErrBridged) {
		t.Fatalf("Connect while echoing: %v", err)
	}
	payload := bytes.Repeat([]byte{0x42}, 160)
	p.send(l, 0, false, payload)
	for {
		pk := p.recv()
		if pk.SSRC != first.SSRC {
			t.Fatalf("echo changed SSRC %x -> %x", first.SSRC, pk.SSRC)
		}
		if bytes.Equal(pk.Payload, payload) {
			if !pk.Marker {
				t.Fatal("first echoed packet should carry the marker bit")
			}
			break
		}
	}
	stop()
	stop() // idempotent
	music, _ := e.Sound(mohPath)
	frames := frameIndex(music, "PCMU")
	// Music flows without pause, so read up to the first music frame after
	// the stop, then prove new audio is no longer sent back.
	for {
		if _, ok := frames[string(p.recv().Payload)]; ok {
			break
		}
	}
	p.send(l, 0, false, payload)
	for range 10 {
		pk := p.recv()
		if bytes.Equal(pk.Payload, payload) {
			t.Fatal("audio still echoed after stop")
		}
		if _, ok := frames[string(pk.Payload)]; !ok {
			t.Fatal("music did not resume after echo stopped")
		}
	}
}
