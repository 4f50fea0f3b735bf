package media

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/zaf/g711"
)

const (
	sampleRate    = 8000
	frameSamples  = 160 // 20 ms at 8 kHz, one G.711 byte per sample
	frameDuration = 20 * time.Millisecond
	silenceULaw   = 0xFF
	silenceALaw   = 0xD5
	maxWAVSeconds = 3600 // refuse absurd files instead of allocating gigabytes
)

// Sound is a WAV file pre-encoded to both G.711 laws, padded with silence to
// whole 20 ms frames, so playing it costs one slice expression per packet.
type Sound struct {
	Name string
	ulaw []byte
	alaw []byte
}

// Frames is the number of 20 ms frames.
func (s *Sound) Frames() int { return len(s.ulaw) / frameSamples }

// Duration is the playing time.
func (s *Sound) Duration() time.Duration { return time.Duration(s.Frames()) * frameDuration }

// Frame returns frame i (0 <= i < Frames) encoded for codec "PCMU" or "PCMA".
func (s *Sound) Frame(i int, codec string) []byte {
	if codec == "PCMA" {
		return s.alaw[i*frameSamples : (i+1)*frameSamples]
	}
	return s.ulaw[i*frameSamples : (i+1)*frameSamples]
}

func (s *Sound) frames(i int) (ulaw, alaw []byte) {
	o := i * frameSamples
	return s.ulaw[o : o+frameSamples], s.alaw[o : o+frameSamples]
}

// DecodeWAV loads a RIFF/WAVE file: mono PCM 16-bit, µ-law or A-law. Other
// sample rates are resampled to 8 kHz (linear interpolation, enough for
// telephone audio). Errors name the file.
func DecodeWAV(name string, b []byte) (*Sound, error) {
	pcm, err := decodeWAVSamples(b)
	if err != nil {
		return nil, fmt.Errorf("media: sound %s: %w", name, err)
	}
	return newSound(name, pcm), nil
}

func newSound(name string, pcm []int16) *Sound {
	n := (len(pcm) + frameSamples - 1) / frameSamples * frameSamples
	if n == 0 {
		n = frameSamples // an empty file still plays one silent frame
	}
	s := &Sound{Name: name, ulaw: make([]byte, n), alaw: make([]byte, n)}
	for i := range n {
		if i < len(pcm) {
			s.ulaw[i] = g711.EncodeUlawFrame(pcm[i])
			s.alaw[i] = g711.EncodeAlawFrame(pcm[i])
		} else {
			s.ulaw[i], s.alaw[i] = silenceULaw, silenceALaw
		}
	}
	return s
}

const (
	wavPCM        = 1
	wavALaw       = 6
	wavULaw       = 7
	wavExtensible = 0xFFFE
)

func decodeWAVSamples(b []byte) ([]int16, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("not a RIFF/WAVE file")
	}
	var (
		haveFmt          bool
		format, channels uint16
		rate             uint32
		bits             uint16
		data             []byte
		haveData         bool
	)
	rest := b[12:]
	for len(rest) >= 8 {
		id := string(rest[0:4])
		size := int64(binary.LittleEndian.Uint32(rest[4:8]))
		rest = rest[8:]
		if size > int64(len(rest)) {
			if id == "data" {
				// Streaming writers leave the size unset; take what is there.
				size = int64(len(rest))
			} else {
				return nil, fmt.Errorf("chunk %q runs past the end of the file", id)
			}
		}
		body := rest[:size]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, fmt.Errorf("fmt chunk of %d bytes", len(body))
			}
			format = binary.LittleEndian.Uint16(body[0:])
			channels = binary.LittleEndian.Uint16(body[2:])
			rate = binary.LittleEndian.Uint32(body[4:])
			bits = binary.LittleEndian.Uint16(body[14:])
			if format == wavExtensible {
				if len(body) < 26 {
					return nil, fmt.Errorf("extensible fmt chunk of %d bytes", len(body))
				}
				format = binary.LittleEndian.Uint16(body[24:]) // sub-format GUID starts with the tag
			}
			haveFmt = true
		case "data":
			data, haveData = body, true
		}
		// Chunks are padded to even sizes.
		if size%2 == 1 && size < int64(len(rest)) {
			size++
		}
		rest = rest[size:]
		if haveData && haveFmt {
			break
		}
	}
	if !haveFmt {
		return nil, fmt.Errorf("no fmt chunk")
	}
	if !haveData {
		return nil, fmt.Errorf("no data chunk")
	}
	if channels != 1 {
		return nil, fmt.Errorf("%d channels, only mono is supported (convert with: sox in.wav -c 1 -r 8000 -b 16 out.wav)", channels)
	}
	if rate < 1000 || rate > 192000 {
		return nil, fmt.Errorf("sample rate %d Hz is not supported", rate)
	}
	var pcm []int16
	switch {
	case format == wavPCM && bits == 16:
		if int64(len(data)/2) > int64(rate)*maxWAVSeconds {
			return nil, fmt.Errorf("longer than %d s", maxWAVSeconds)
		}
		pcm = make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case (format == wavULaw || format == wavALaw) && bits == 8:
		if int64(len(data)) > int64(rate)*maxWAVSeconds {
			return nil, fmt.Errorf("longer than %d s", maxWAVSeconds)
		}
		pcm = make([]int16, len(data))
		for i, c := range data {
			if format == wavULaw {
				pcm[i] = g711.DecodeUlawFrame(c)
			} else {
				pcm[i] = g711.DecodeAlawFrame(c)
			}
		}
	default:
		return nil, fmt.Errorf("format %d with %d bits is not supported (want PCM 16-bit, µ-law or A-law)", format, bits)
	}
	if rate != sampleRate {
		pcm = resample(pcm, int(rate), sampleRate)
	}
	return pcm, nil
}

// resample converts by linear interpolation. Downsampling without a low-pass
// filter aliases a little; prompts are speech and this only rescues files
// that were not converted offline.
func resample(in []int16, from, to int) []int16 {
	if len(in) == 0 {
		return in
	}
	n := int(int64(len(in)) * int64(to) / int64(from))
	out := make([]int16, n)
	for i := range out {
		pos := int64(i) * int64(from)
		j := int(pos / int64(to))
		frac := pos % int64(to)
		a := int64(in[j])
		b := a
		if j+1 < len(in) {
			b = int64(in[j+1])
		}
		out[i] = int16(a + (b-a)*frac/int64(to))
	}
	return out
}
