package interop

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"ccpbx/internal/testphone"
)

// Audio analysis for what the phones hear: 8 kHz mono 16-bit samples cut
// into 20 ms frames (one RTP packet's worth).

const (
	sampleRate = 8000
	frameLen   = 160 // 20 ms

	callerTone = 450.0  // Hz the trunk caller sends (multiple of 50 Hz: exact Goertzel bin for 160 samples)
	agentTone  = 1250.0 // Hz the agents send

	// speechLevel: a frame louder than this is sound, not silence. Speech
	// and music sit around -20 dBFS; comfort noise and silence are far below.
	speechLevel = -45.0
	// toneShare: the fraction of a frame's energy at the tone frequency for
	// the frame to count as "that tone".
	toneShare = 0.6
)

// rmsDBFS is a frame's level relative to full scale.
func rmsDBFS(s []int16) float64 {
	if len(s) == 0 {
		return math.Inf(-1)
	}
	var sum float64
	for _, v := range s {
		f := float64(v)
		sum += f * f
	}
	rms := math.Sqrt(sum / float64(len(s)))
	if rms == 0 {
		return math.Inf(-1)
	}
	return 20 * math.Log10(rms/32768)
}

// toneFraction is the share of the frame's energy at freq (Goertzel): about
// 1 for a pure tone at freq, near 0 for other tones, music or speech.
func toneFraction(s []int16, freq float64) float64 { return testphone.ToneFraction(s, freq) }

// audioReport summarises a stretch of received audio.
type audioReport struct {
	Frames     int // 20 ms frames analysed
	Loud       int // frames above speechLevel
	CallerTone int // frames dominated by the caller's tone
	AgentTone  int // frames dominated by the agents' tone
	PeakDBFS   float64
}

func (r audioReport) String() string {
	return fmt.Sprintf("%d frames (%.1fs): %d above %.0f dBFS, %d of the caller's %v Hz tone, %d of the agent's %v Hz tone, peak frame %.1f dBFS",
		r.Frames, float64(r.Frames)*0.02, r.Loud, speechLevel, r.CallerTone, callerTone, r.AgentTone, agentTone, r.PeakDBFS)
}

func analyse(samples []int16) audioReport {
	r := audioReport{PeakDBFS: math.Inf(-1)}
	for off := 0; off+frameLen <= len(samples); off += frameLen {
		f := samples[off : off+frameLen]
		r.Frames++
		db := rmsDBFS(f)
		if db > r.PeakDBFS {
			r.PeakDBFS = db
		}
		if db < speechLevel {
			continue
		}
		r.Loud++
		if toneFraction(f, callerTone) >= toneShare {
			r.CallerTone++
		}
		if toneFraction(f, agentTone) >= toneShare {
			r.AgentTone++
		}
	}
	return r
}

// sine makes n samples of a tone at -10 dBFS starting at phase sample off.
func sine(freq float64, off, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(10362 * math.Sin(2*math.Pi*freq*float64(off+i)/sampleRate))
	}
	return out
}

// writeWAV writes 8 kHz mono 16-bit PCM (what baresip's aufile reads).
func writeWAV(path string, samples []int16) error {
	data := make([]byte, 44+2*len(samples))
	copy(data[0:], "RIFF")
	binary.LittleEndian.PutUint32(data[4:], uint32(36+2*len(samples)))
	copy(data[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(data[16:], 16)
	binary.LittleEndian.PutUint16(data[20:], 1) // PCM
	binary.LittleEndian.PutUint16(data[22:], 1) // mono
	binary.LittleEndian.PutUint32(data[24:], sampleRate)
	binary.LittleEndian.PutUint32(data[28:], sampleRate*2)
	binary.LittleEndian.PutUint16(data[32:], 2)
	binary.LittleEndian.PutUint16(data[34:], 16)
	copy(data[36:], "data")
	binary.LittleEndian.PutUint32(data[40:], uint32(2*len(samples)))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(data[44+2*i:], uint16(s))
	}
	return os.WriteFile(path, data, 0o644)
}

// parseWAV reads 16-bit PCM from a RIFF/WAVE file and returns mono samples
// (the first channel) and the sample rate. It is defensive: a data chunk
// whose size is zero or runs past the end (a recorder killed before it
// patched the header) is read to the end of the file.
func parseWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("not a RIFF/WAVE file")
	}
	var channels, bits, rate int
	fmtSeen := false
	pos := 12
	for pos+8 <= len(b) {
		id := string(b[pos : pos+4])
		size := int(binary.LittleEndian.Uint32(b[pos+4 : pos+8]))
		body := pos + 8
		switch id {
		case "fmt ":
			if size < 16 || body+16 > len(b) {
				return nil, 0, errors.New("short fmt chunk")
			}
			if f := binary.LittleEndian.Uint16(b[body:]); f != 1 && f != 0xFFFE {
				return nil, 0, fmt.Errorf("WAV format %d is not PCM", f)
			}
			channels = int(binary.LittleEndian.Uint16(b[body+2:]))
			rate = int(binary.LittleEndian.Uint32(b[body+4:]))
			bits = int(binary.LittleEndian.Uint16(b[body+14:]))
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, 0, errors.New("data chunk before fmt chunk")
			}
			if bits != 16 || channels < 1 {
				return nil, 0, fmt.Errorf("WAV is %d-bit %d-channel, want 16-bit", bits, channels)
			}
			end := body + size
			if size <= 0 || end > len(b) || end < body {
				end = len(b)
			}
			step := 2 * channels
			out := make([]int16, 0, (end-body)/step)
			for i := body; i+1 < end; i += step {
				out = append(out, int16(binary.LittleEndian.Uint16(b[i:])))
			}
			return out, rate, nil
		}
		if size < 0 || body+size < body {
			break
		}
		pos = body + size + size%2
	}
	return nil, 0, errors.New("no data chunk")
}

// matchIn looks for needle in hay by normalised cross-correlation and
// returns the best score (1 = the same waveform, up to gain; unrelated
// audio stays far below) and where. With loop, hay is treated as repeating
// (music on hold loops). This is how the suite tells that what a phone
// heard is the shipped prompt or music, not just any sound.
func matchIn(needle, hay []int16, loop bool) (best float64, at int) {
	n := len(needle)
	if n == 0 || len(hay) == 0 {
		return 0, -1
	}
	h := make([]float64, 0, len(hay)+n)
	for _, v := range hay {
		h = append(h, float64(v))
	}
	if loop {
		for i := 0; i < n && i < len(hay); i++ {
			h = append(h, float64(hay[i]))
		}
	}
	if len(h) < n {
		return 0, -1
	}
	nd := make([]float64, n)
	var ne float64
	for i, v := range needle {
		nd[i] = float64(v)
		ne += nd[i] * nd[i]
	}
	if ne == 0 {
		return 0, -1
	}
	// Running energy of the hay window.
	var he float64
	for i := 0; i < n; i++ {
		he += h[i] * h[i]
	}
	at = -1
	for off := 0; off+n <= len(h); off++ {
		if off > 0 {
			he += h[off+n-1]*h[off+n-1] - h[off-1]*h[off-1]
		}
		if he > 0 {
			var dot float64
			w := h[off : off+n]
			for i, v := range nd {
				dot += v * w[i]
			}
			if s := dot / math.Sqrt(ne*he); s > best {
				best, at = s, off
			}
		}
	}
	return best, at
}

// loudest returns the n-sample window of s with the most energy.
func loudest(s []int16, n int) []int16 {
	if len(s) <= n {
		return s
	}
	var e, bestE float64
	best := 0
	for i := 0; i < n; i++ {
		e += float64(s[i]) * float64(s[i])
	}
	bestE = e
	for off := 1; off+n <= len(s); off++ {
		e += float64(s[off+n-1])*float64(s[off+n-1]) - float64(s[off-1])*float64(s[off-1])
		if e > bestE {
			bestE, best = e, off
		}
	}
	return s[best : best+n]
}

// soundFile reads one of the shipped sounds (sounds/ivr/common/NAME.wav).
func soundFile(root, name string) ([]int16, error) {
	b, err := os.ReadFile(root + "/sounds/ivr/common/" + name + ".wav")
	if err != nil {
		return nil, err
	}
	s, rate, err := parseWAV(b)
	if err != nil {
		return nil, fmt.Errorf("%s.wav: %w", name, err)
	}
	if rate != sampleRate {
		return nil, fmt.Errorf("%s.wav: %d Hz, want %d", name, rate, sampleRate)
	}
	return s, nil
}
