package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/zaf/g711"
)

// wavFile builds a RIFF/WAVE file; extra chunks go before fmt.
func wavFile(format, channels uint16, rate uint32, bits uint16, data []byte, extra ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(0)) // patched below
	b.WriteString("WAVE")
	for _, c := range extra {
		b.Write(c)
	}
	b.WriteString("fmt ")
	binary.Write(&b, binary.LittleEndian, uint32(16))
	binary.Write(&b, binary.LittleEndian, format)
	binary.Write(&b, binary.LittleEndian, channels)
	binary.Write(&b, binary.LittleEndian, rate)
	binary.Write(&b, binary.LittleEndian, rate*uint32(bits/8)*uint32(channels))
	binary.Write(&b, binary.LittleEndian, channels*bits/8)
	binary.Write(&b, binary.LittleEndian, bits)
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	out := b.Bytes()
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func pcm16(samples ...int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

func TestDecodeWAVFormats(t *testing.T) {
	samples := make([]int16, 200) // 1.25 frames
	for i := range samples {
		samples[i] = int16(8000 * math.Sin(float64(i)/5))
	}
	ulaw := make([]byte, len(samples))
	alaw := make([]byte, len(samples))
	for i, s := range samples {
		ulaw[i] = g711.EncodeUlawFrame(s)
		alaw[i] = g711.EncodeAlawFrame(s)
	}
	list := []byte("LIST\x03\x00\x00\x00abc\x00") // odd size, padded
	for name, b := range map[string][]byte{
		"pcm16":           wavFile(1, 1, 8000, 16, pcm16(samples...)),
		"pcm16 with LIST": wavFile(1, 1, 8000, 16, pcm16(samples...), list),
		"ulaw":            wavFile(7, 1, 8000, 8, ulaw),
		"alaw":            wavFile(6, 1, 8000, 8, alaw),
	} {
		s, err := DecodeWAV(name, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Frames() != 2 {
			t.Fatalf("%s: %d frames, want 2 (padded)", name, s.Frames())
		}
		if !bytes.Equal(s.Frame(0, "PCMU"), ulaw[:160]) && name != "alaw" {
			t.Errorf("%s: PCMU frame differs", name)
		}
		if !bytes.Equal(s.Frame(0, "PCMA"), alaw[:160]) && name != "ulaw" {
			t.Errorf("%s: PCMA frame differs", name)
		}
		last := s.Frame(1, "PCMU")
		if last[40] != silenceULaw || last[159] != silenceULaw || s.Frame(1, "PCMA")[159] != silenceALaw {
			t.Errorf("%s: last frame not padded with silence", name)
		}
	}
}

func TestDecodeWAVResamples(t *testing.T) {
	samples := make([]int16, 16000) // 1 s at 16 kHz
	for i := range samples {
		samples[i] = int16(10000 * math.Sin(2*math.Pi*440*float64(i)/16000))
	}
	s, err := DecodeWAV("16k.wav", wavFile(1, 1, 16000, 16, pcm16(samples...)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Frames() != 50 {
		t.Fatalf("%d frames, want 50 for 1 s", s.Frames())
	}
	// The tone survives: energy close to the source's.
	var sum float64
	for i := range 50 {
		for _, c := range s.Frame(i, "PCMU") {
			v := float64(g711.DecodeUlawFrame(c))
			sum += v * v
		}
	}
	rms := math.Sqrt(sum / 8000)
	if rms < 6000 || rms > 8000 { // 10000/sqrt(2) = 7071
		t.Fatalf("resampled RMS %.0f", rms)
	}
}

func TestDecodeWAVRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"stereo":    wavFile(1, 2, 8000, 16, pcm16(1, 2, 3, 4)),
		"8-bit pcm": wavFile(1, 1, 8000, 8, []byte{1, 2}),
		"float":     wavFile(3, 1, 8000, 32, make([]byte, 8)),
		"not riff":  []byte("RIFX...."),
		"no data":   wavFile(1, 1, 8000, 16, nil)[:36],
		"bad chunk": append(wavFile(1, 1, 8000, 16, nil)[:12], []byte("junk\xff\xff\xff\x00")...),
		"rate 0":    wavFile(1, 1, 0, 16, pcm16(1)),
	} {
		_, err := DecodeWAV("x/"+name+".wav", b)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "x/"+name+".wav") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

func TestEngineSoundLookup(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "ivr"), 0o755); err != nil {
		t.Fatal(err)
	}
	disk := wavFile(1, 1, 8000, 16, pcm16(make([]int16, 320)...)) // 2 frames
	if err := os.WriteFile(filepath.Join(dir, "ivr", "disk.wav"), disk, 0o644); err != nil {
		t.Fatal(err)
	}
	embedded := fstest.MapFS{
		"ivr/disk.wav":     {Data: wavFile(1, 1, 8000, 16, pcm16(make([]int16, 160)...))},
		"ivr/embedded.wav": {Data: wavFile(1, 1, 8000, 16, pcm16(make([]int16, 480)...))},
	}
	e := newEngine(t, Config{SoundsFS: embedded, SoundsDir: dir})
	for path, frames := range map[string]int{
		filepath.Join(dir, "ivr/disk.wav"):     2, // disk wins over embedded
		"ivr/disk.wav":                         2, // relative: under SoundsDir
		filepath.Join(dir, "ivr/embedded.wav"): 3, // not on disk: embedded, prefix stripped
		"ivr/embedded.wav":                     3,
	} {
		s, err := e.Sound(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s.Frames() != frames {
			t.Errorf("%s: %d frames, want %d", path, s.Frames(), frames)
		}
	}
	if _, err := e.Sound("ivr/missing.wav"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	a, _ := e.Sound("ivr/embedded.wav")
	b, _ := e.Sound(filepath.Join(dir, "ivr/embedded.wav"))
	if a != b {
		t.Error("the same embedded file was decoded twice")
	}
}

func TestShippedSoundsThroughEngine(t *testing.T) {
	e := newEngine(t, Config{SoundsDir: "/nonexistent/ccpbx/sounds"})
	s, err := e.Sound("/nonexistent/ccpbx/sounds/" + mohPath)
	if err != nil {
		t.Fatal(err)
	}
	if s.Duration().Seconds() < 30 {
		t.Fatalf("music is %v", s.Duration())
	}
}

func FuzzDecodeWAV(f *testing.F) {
	f.Add(wavFile(1, 1, 8000, 16, pcm16(1, 2, 3)))
	f.Add(wavFile(7, 1, 8000, 8, []byte{1, 2, 3}))
	f.Add(wavFile(1, 1, 44100, 16, pcm16(1, 2, 3, 4, 5)))
	f.Add(wavFile(0xFFFE, 1, 8000, 16, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeWAV("fuzz.wav", b)
		if err != nil {
			return
		}
		if s.Frames() < 1 || len(s.ulaw) != len(s.alaw) || len(s.ulaw)%frameSamples != 0 {
			t.Fatalf("bad sound: %d frames, %d/%d bytes", s.Frames(), len(s.ulaw), len(s.alaw))
		}
	})
}
