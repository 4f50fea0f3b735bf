package interop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zaf/g711"

	"ccpbx/internal/pbxtest"
)

// capture is a tshark capture on the loopback interface, written as a
// classic pcap file to the artifacts and read back by readPcap.
type capture struct {
	proc *proc
	path string
}

// startCapture captures loopback traffic matching the BPF filter. Without
// tshark it fails the test under CI=true (.ci/run installs it) and returns
// nil elsewhere, so a local run goes on without the capture's checks.
func startCapture(t *testing.T, art, name, filter string) *capture {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		msg := "the capture needs tshark on PATH (Debian: apt-get install tshark)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Logf("SKIPPED the capture: %s", msg)
		return nil
	}
	c := &capture{path: filepath.Join(art, name+".pcap")}
	out := filepath.Join(art, name+"-tshark.log")
	c.proc = startProc(t, "tshark", out, art, bin, "-i", "lo", "-f", filter, "-F", "pcap", "-w", c.path)
	// tshark says so on stderr once the capture runs; packets before it are
	// not seen.
	pbxtest.WaitFor(t, 20*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		select {
		case <-c.proc.done:
			t.Fatalf("tshark exited: %s", b)
		default:
		}
		return bytes.Contains(b, []byte("Capturing on"))
	}, "tshark to start capturing (log %s)", out)
	return c
}

// stop ends the capture (tshark writes out its buffers on SIGTERM) and
// returns the packets.
func (c *capture) stop(t *testing.T) []capPacket {
	t.Helper()
	c.proc.kill()
	pkts, err := readPcap(c.path)
	if err != nil {
		t.Fatalf("capture %s: %v", c.path, err)
	}
	return pkts
}

// capPacket is one captured IPv4 UDP datagram or TCP segment.
type capPacket struct {
	tcp              bool
	srcPort, dstPort int
	payload          []byte
}

// readPcap reads the IPv4 UDP and TCP packets of a classic pcap file whose
// link type is Ethernet (Linux loopback) or Linux cooked capture.
func readPcap(path string) ([]capPacket, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 24 {
		return nil, fmt.Errorf("short pcap file (%d bytes)", len(b))
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("not a classic pcap file")
	}
	var linkHdr int
	switch lt := bo.Uint32(b[20:]); lt {
	case 1:
		linkHdr = 14
	case 113:
		linkHdr = 16
	default:
		return nil, fmt.Errorf("link type %d not handled", lt)
	}
	var out []capPacket
	for off := 24; off+16 <= len(b); {
		n := int(bo.Uint32(b[off+8:]))
		off += 16
		if off+n > len(b) {
			break // cut short as tshark stopped
		}
		frame := b[off : off+n]
		off += n
		if len(frame) < linkHdr+20 || frame[linkHdr]>>4 != 4 {
			continue
		}
		ip := frame[linkHdr:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) || ihl < 20 || total < ihl {
			continue
		}
		l4 := ip[ihl:total]
		switch ip[9] {
		case 17:
			if len(l4) >= 8 {
				out = append(out, capPacket{srcPort: int(binary.BigEndian.Uint16(l4)), dstPort: int(binary.BigEndian.Uint16(l4[2:])), payload: l4[8:]})
			}
		case 6:
			if len(l4) >= 20 && int(l4[12]>>4)*4 <= len(l4) {
				out = append(out, capPacket{tcp: true, srcPort: int(binary.BigEndian.Uint16(l4)), dstPort: int(binary.BigEndian.Uint16(l4[2:])), payload: l4[int(l4[12]>>4)*4:]})
			}
		}
	}
	return out, nil
}

// clearSIP is a request or status line of SIP in clear, if payload has one.
func clearSIP(payload []byte) string {
	for _, s := range []string{"SIP/2.0", "REGISTER ", "INVITE "} {
		if bytes.Contains(payload, []byte(s)) {
			return s
		}
	}
	return ""
}

// g711Frame reports an RTP packet (version 2) carrying PCMU or PCMA and
// returns its payload type and the bytes after the 12-byte header (no CSRC
// or extension: what ccpbx and baresip send).
func g711Frame(p []byte) (pt byte, body []byte, ok bool) {
	if len(p) < 12 || p[0] != 0x80 {
		return 0, nil, false
	}
	pt = p[1] & 0x7f
	if pt != 0 && pt != 8 {
		return 0, nil, false
	}
	return pt, p[12:], true
}

// decodeG711 decodes frames as G.711 of their payload type, as a receiver
// of plain RTP would.
func decodeG711(pt byte, frame []byte) []int16 {
	lin := g711.DecodeUlaw(frame)
	if pt == 8 {
		lin = g711.DecodeAlaw(frame)
	}
	s := make([]int16, len(lin)/2)
	for i := range s {
		s[i] = int16(uint16(lin[2*i]) | uint16(lin[2*i+1])<<8)
	}
	return s
}

// portIn reports whether port is in [lo, hi].
func portIn(port, lo, hi int) bool { return port >= lo && port <= hi }

// describe summarises a few packets for a failure message.
func describe(pkts []capPacket) string {
	var sb strings.Builder
	for i, p := range pkts {
		if i == 5 {
			fmt.Fprintf(&sb, "… %d more\n", len(pkts)-5)
			break
		}
		proto := "udp"
		if p.tcp {
			proto = "tcp"
		}
		body := p.payload
		if len(body) > 80 {
			body = body[:80]
		}
		fmt.Fprintf(&sb, "%s %d -> %d (%d bytes): %q\n", proto, p.srcPort, p.dstPort, len(p.payload), body)
	}
	return sb.String()
}
