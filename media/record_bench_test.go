package media

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
)

// BenchmarkRelayBridgesRecording is BenchmarkRelayBridges with every bridge
// recorded to a stereo WAV file (BENCHMARKS.md compares the two).
func BenchmarkRelayBridgesRecording(b *testing.B) { relayBridges(b, true) }

// BenchmarkRelayPacketRecording is BenchmarkRelayPacket with the leg being
// recorded: the tap's cost on the packet path (both directions are copied
// into the ring: what the leg received and what it sent).
func BenchmarkRelayPacketRecording(b *testing.B) {
	for _, record := range []bool{false, true} {
		name := "off"
		if record {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			e := newEngine(b, Config{RecordingsDir: b.TempDir()})
			pA, pB := newPeer(b), newPeer(b)
			pB.conn.SetReadBuffer(1 << 20)
			la := answeredLeg(b, e, pA, "0")
			lb := answeredLeg(b, e, pB, "8")
			disconnect, err := Connect(la, lb)
			if err != nil {
				b.Fatal(err)
			}
			defer disconnect()
			if record {
				// Record the receiving leg and the sending one: a packet
				// is tapped once on each side of the relay.
				for i, l := range []*Leg{la, lb} {
					r, err := l.Record(fmt.Sprintf("bench%d.wav", i), RecordOptions{Stereo: true})
					if err != nil {
						b.Fatal(err)
					}
					defer r.Stop()
				}
			}
			pkt := make([]byte, 12+160)
			putRTPHeader(pkt, false, 0, 1, 160, 99)
			from := netip.AddrPortFrom(loopback, uint16(pA.port()))
			var h rtpHeader
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				binary.BigEndian.PutUint32(pkt[4:], uint32(i)*160)
				la.handleRTP(pkt, from, &h)
			}
		})
	}
}
