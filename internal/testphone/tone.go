package testphone

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// SendTone sends n 20 ms packets of a sine tone at freq Hz (-10 dBFS,
// continuous phase) in the phone's codec, paced every 20 ms as a phone
// sends them, so a recording or a tone detector on the far side sees one
// steady tone. It returns early with ctx's error.
func (a *Audio) SendTone(ctx context.Context, freq float64, n int) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	payload := make([]byte, 160)
	for k := range n {
		a.mu.Lock()
		remote, alaw := a.remote, a.pt == 8
		a.seq++
		a.ts += 160
		hdr := rtp.Header{Version: 2, Marker: k == 0, PayloadType: a.pt, SequenceNumber: a.seq, Timestamp: a.ts, SSRC: a.ssrc}
		a.mu.Unlock()
		if !remote.IsValid() {
			return errors.New("testphone: no remote audio address")
		}
		for i := range payload {
			v := int16(10362 * math.Sin(2*math.Pi*freq*float64(k*160+i)/8000))
			if alaw {
				payload[i] = g711.EncodeAlawFrame(v)
			} else {
				payload[i] = g711.EncodeUlawFrame(v)
			}
		}
		b, err := (&rtp.Packet{Header: hdr, Payload: payload}).Marshal()
		if err != nil {
			return err
		}
		if _, err := a.conn.WriteToUDPAddrPort(b, remote); err != nil {
			return fmt.Errorf("testphone: send rtp: %w", err)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// ToneFraction is the share of the samples' energy at freq Hz (Goertzel,
// 8 kHz): about 1 for a pure tone at freq, near 0 for another tone or
// silence. Frequencies that are multiples of 50 Hz fall on an exact bin of
// a 160-sample frame.
func ToneFraction(s []int16, freq float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/8000)
	var s1, s2, energy float64
	for _, v := range s {
		x := float64(v)
		energy += x * x
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	if energy == 0 {
		return 0
	}
	return 2 * (s1*s1 + s2*s2 - coeff*s1*s2) / (float64(len(s)) * energy)
}

// ToneFrames counts the 20 ms frames of 8 kHz samples that freq dominates
// (more than 60 % of their energy).
func ToneFrames(s []int16, freq float64) int {
	n := 0
	for off := 0; off+160 <= len(s); off += 160 {
		if ToneFraction(s[off:off+160], freq) >= 0.6 {
			n++
		}
	}
	return n
}

// ReadWAV reads a canonical 16-bit PCM WAV file at 8 kHz (44-byte header,
// as ccpbx records) and returns one slice of samples per channel. It
// fails when the header's sizes do not match the file.
func ReadWAV(path string) ([][]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		return nil, fmt.Errorf("%s: not a canonical WAV header", path)
	}
	channels := int(binary.LittleEndian.Uint16(b[22:]))
	if rate, bits := binary.LittleEndian.Uint32(b[24:]), binary.LittleEndian.Uint16(b[34:]); rate != 8000 || bits != 16 || channels < 1 {
		return nil, fmt.Errorf("%s: %d channels, %d Hz, %d bits", path, channels, rate, bits)
	}
	size := int(binary.LittleEndian.Uint32(b[40:]))
	if size != len(b)-44 || int(binary.LittleEndian.Uint32(b[4:])) != 36+size {
		return nil, fmt.Errorf("%s: header says %d data bytes, the file holds %d", path, size, len(b)-44)
	}
	frames := size / (2 * channels)
	out := make([][]int16, channels)
	for c := range out {
		out[c] = make([]int16, frames)
		for i := range frames {
			out[c][i] = int16(binary.LittleEndian.Uint16(b[44+2*(i*channels+c):]))
		}
	}
	return out, nil
}
