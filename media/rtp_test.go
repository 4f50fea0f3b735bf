package media

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/pion/rtp"
)

func TestParseRTP(t *testing.T) {
	good := rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 8, SequenceNumber: 7, Timestamp: 99, SSRC: 5,
		CSRC: []uint32{1, 2}, Extension: true, ExtensionProfile: 0xBEDE}, Payload: []byte{1, 2, 3}}
	if err := good.SetExtension(1, []byte{0xAA}); err != nil {
		t.Fatal(err)
	}
	goodBytes, _ := good.Marshal()
	padded := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, Padding: true}, Payload: []byte{9, 9}, PaddingSize: 3}
	paddedBytes, _ := padded.Marshal()

	tests := []struct {
		name    string
		b       []byte
		ok      bool
		payload []byte
	}{
		{"csrc and extension", goodBytes, true, []byte{1, 2, 3}},
		{"padding", paddedBytes, true, []byte{9, 9}},
		{"short", goodBytes[:11], false, nil},
		{"version 1", append([]byte{0x40}, goodBytes[1:]...), false, nil},
		{"csrc past end", []byte{0x8f, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, false, nil},
		{"extension header past end", []byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe}, false, nil},
		{"extension body past end", []byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 9}, false, nil},
		{"padding longer than payload", []byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 5}, false, nil},
		{"zero padding count", []byte{0xa0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0}, false, nil},
	}
	for _, tc := range tests {
		var h rtpHeader
		ok := parseRTP(tc.b, &h)
		if ok != tc.ok {
			t.Errorf("%s: ok=%v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if ok && !bytes.Equal(tc.b[h.payloadOff:h.payloadEnd], tc.payload) {
			t.Errorf("%s: payload %v, want %v", tc.name, tc.b[h.payloadOff:h.payloadEnd], tc.payload)
		}
	}
	var h rtpHeader
	parseRTP(goodBytes, &h)
	if !h.marker || h.pt != 8 || h.seq != 7 || h.ts != 99 || h.ssrc != 5 {
		t.Errorf("header fields %+v", h)
	}
}

func TestPutRTPHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 12+4)
	putRTPHeader(b, true, 101, 65535, 0xdeadbeef, 42)
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if p.Version != 2 || !p.Marker || p.PayloadType != 101 || p.SequenceNumber != 65535 || p.Timestamp != 0xdeadbeef || p.SSRC != 42 {
		t.Fatalf("round trip %+v", p.Header)
	}
}

// FuzzParseRTP checks that the parser never panics, never returns a payload
// outside the buffer, and agrees with pion/rtp on every packet pion accepts.
// (pion also validates RFC 8285 extension elements, which a relay that skips
// extensions as opaque need not do, so pion rejecting is not an error here.)
func FuzzParseRTP(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff})
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 5})
	f.Add([]byte{0xa2, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 7, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h rtpHeader
		if !parseRTP(b, &h) {
			return
		}
		if h.payloadOff < 12 || h.payloadOff > h.payloadEnd || h.payloadEnd > len(b) {
			t.Fatalf("payload bounds %d..%d of %d", h.payloadOff, h.payloadEnd, len(b))
		}
		var p rtp.Packet
		if err := p.Unmarshal(b); err != nil {
			return
		}
		if p.SequenceNumber != h.seq || p.Timestamp != h.ts || p.PayloadType != h.pt {
			t.Fatalf("fields differ from pion")
		}
		if !bytes.Equal(p.Payload, b[h.payloadOff:h.payloadEnd]) {
			t.Fatalf("payload differs from pion: %v vs %v", p.Payload, b[h.payloadOff:h.payloadEnd])
		}
	})
}

// FuzzLegRTP drives arbitrary datagrams through a bridged leg's receive
// path (validation, latching, DTMF detection, relay with transcoding and
// payload-type remapping): it must never panic, and everything it does not
// accept must be counted.
func FuzzLegRTP(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xfe})
	f.Add([]byte{0x80, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5, 0x8a, 0, 160})
	f.Add([]byte{0x80, 13, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 40})
	f.Add([]byte{0xb1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 0, 3})
	e := newEngine(f, Config{})
	pA, pB := newPeer(f), newPeer(f)
	a := answeredLeg(f, e, pA, "0 101 13", "a=rtpmap:101 telephone-event/8000")
	b := answeredLeg(f, e, pB, "8 96", "a=rtpmap:96 telephone-event/8000")
	disconnect, err := Connect(a, b)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(disconnect)
	from := netip.AddrPortFrom(loopback, uint16(pA.port()))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		before := a.Stats()
		var h rtpHeader
		readAs(a, pkt, from, &h)
		after := a.Stats()
		counted := (after.PacketsIn - before.PacketsIn) + (after.Bad - before.Bad) + (after.RTCPIn - before.RTCPIn) +
			(after.UnknownPT - before.UnknownPT) + (after.UnexpectedSource - before.UnexpectedSource)
		if counted != 1 {
			t.Fatalf("datagram counted %d times", counted)
		}
	})
}
