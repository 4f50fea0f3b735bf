package testphone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Audio is a test phone's RTP endpoint: it sends G.711 frames filled with a
// marker byte and records the marker bytes that arrive, so a test can prove
// audio crossed the PBX in each direction.
type Audio struct {
	conn *net.UDPConn
	ip   netip.Addr

	mu      sync.Mutex
	remote  netip.AddrPort
	seen    map[byte]int
	packets int
	levels  []float64 // RMS of each received packet of our codec
	// varied counts loud packets whose payload is not one repeated byte:
	// a prompt or music, not a test phone's fill (hold.go).
	varied  int
	waiters []audioWaiter
	pt      uint8 // 0 PCMU, 8 PCMA
	seq     uint16
	ts      uint32
	ssrc    uint32
	done    chan struct{}
}

type audioWaiter struct {
	fill byte
	ch   chan struct{}
}

// NewAudio opens an RTP socket on ip (port chosen by the OS).
func NewAudio(ip netip.Addr) (*Audio, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("testphone audio: %w", err)
	}
	a := &Audio{conn: c, ip: ip, seen: map[byte]int{}, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), done: make(chan struct{})}
	go a.read()
	return a, nil
}

// Port is the local RTP port.
func (a *Audio) Port() int { return a.conn.LocalAddr().(*net.UDPAddr).Port }

// SDP is the phone's offer or answer: one codec (PCMU, or PCMA after
// UsePCMA) and telephone-event, so the PBX relays our payloads untouched
// when both phones use the same codec.
func (a *Audio) SDP() []byte {
	a.mu.Lock()
	pt := a.pt
	a.mu.Unlock()
	codec := "PCMU"
	if pt == 8 {
		codec = "PCMA"
	}
	id := strconv.FormatUint(uint64(rand.Uint32()), 10)
	return []byte("v=0\r\n" +
		"o=testphone " + id + " " + id + " IN IP4 " + a.ip.String() + "\r\n" +
		"s=-\r\n" +
		"c=IN IP4 " + a.ip.String() + "\r\n" +
		"t=0 0\r\n" +
		"m=audio " + strconv.Itoa(a.Port()) + " RTP/AVP " + strconv.Itoa(int(pt)) + " 101\r\n" +
		"a=rtpmap:" + strconv.Itoa(int(pt)) + " " + codec + "/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\n" +
		"a=fmtp:101 0-15\r\n" +
		"a=ptime:20\r\n" +
		"a=sendrecv\r\n")
}

// UsePCMA makes the phone offer, send and expect PCMA instead of PCMU
// (call it before the call starts).
func (a *Audio) UsePCMA() {
	a.mu.Lock()
	a.pt = 8
	a.mu.Unlock()
}

// SetRemote points the audio at the address in the peer's SDP.
func (a *Audio) SetRemote(sdp []byte) error {
	ap, err := SDPAddr(sdp)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.remote = ap
	a.mu.Unlock()
	return nil
}

// SDPAddr extracts the audio address (c= and m=audio port) from SDP.
func SDPAddr(sdp []byte) (netip.AddrPort, error) {
	var ip netip.Addr
	port := -1
	for _, line := range strings.Split(string(sdp), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "):
			if a, err := netip.ParseAddr(strings.TrimPrefix(line, "c=IN IP4 ")); err == nil {
				ip = a
			}
		case strings.HasPrefix(line, "m=audio "):
			f := strings.Fields(line)
			if len(f) >= 2 {
				if p, err := strconv.Atoi(f[1]); err == nil {
					port = p
				}
			}
		}
	}
	if !ip.IsValid() || port < 0 || port > 65535 {
		return netip.AddrPort{}, errors.New("testphone: no audio address in SDP")
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Send sends n 20 ms packets of the phone's codec whose payload bytes all equal fill.
func (a *Audio) Send(n int, fill byte) error {
	payload := bytes.Repeat([]byte{fill}, 160)
	for i := 0; i < n; i++ {
		a.mu.Lock()
		remote := a.remote
		a.seq++
		a.ts += 160
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: a.pt, SequenceNumber: a.seq, Timestamp: a.ts, SSRC: a.ssrc}, Payload: payload}
		a.mu.Unlock()
		if !remote.IsValid() {
			return errors.New("testphone: no remote audio address")
		}
		b, err := pkt.Marshal()
		if err != nil {
			return err
		}
		if _, err := a.conn.WriteToUDPAddrPort(b, remote); err != nil {
			return fmt.Errorf("testphone: send rtp: %w", err)
		}
	}
	return nil
}

// Received reports how many packets filled with fill have arrived.
func (a *Audio) Received(fill byte) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[fill]
}

// Packets reports how many RTP packets of any kind have arrived.
func (a *Audio) Packets() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.packets
}

// WaitFor blocks until a packet filled with fill arrives (or ctx ends).
func (a *Audio) WaitFor(ctx context.Context, fill byte) error {
	a.mu.Lock()
	if a.seen[fill] > 0 {
		a.mu.Unlock()
		return nil
	}
	w := audioWaiter{fill: fill, ch: make(chan struct{})}
	a.waiters = append(a.waiters, w)
	a.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testphone: no audio 0x%02x: %w", fill, context.Cause(ctx))
	}
}

// SendUntil keeps sending fill packets every few milliseconds until the
// far side's waiter is satisfied by check, or ctx ends. Relays latch on the
// first packet, so a test sends from both ends while it waits.
func (a *Audio) SendUntil(ctx context.Context, fill byte, check func() bool) error {
	for !check() {
		if err := a.Send(1, fill); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (a *Audio) read() {
	buf := make([]byte, 1500)
	for {
		n, _, err := a.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			close(a.done)
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil || len(p.Payload) == 0 {
			continue
		}
		a.mu.Lock()
		a.packets++
		pt := a.pt
		a.mu.Unlock()
		if p.PayloadType != pt {
			continue
		}
		level := rms(p.Payload, pt)
		a.mu.Lock()
		a.levels = append(a.levels, level)
		a.mu.Unlock()
		fill := p.Payload[0]
		if !bytes.Equal(p.Payload, bytes.Repeat([]byte{fill}, len(p.Payload))) {
			if level >= loudLevel {
				a.mu.Lock()
				a.varied++
				a.mu.Unlock()
			}
			continue
		}
		a.mu.Lock()
		a.seen[fill]++
		kept := a.waiters[:0]
		for _, w := range a.waiters {
			if w.fill == fill {
				close(w.ch)
				continue
			}
			kept = append(kept, w)
		}
		a.waiters = kept
		a.mu.Unlock()
	}
}

// Close releases the socket.
func (a *Audio) Close() {
	a.conn.Close()
	<-a.done
}
