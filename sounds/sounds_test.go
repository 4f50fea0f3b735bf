package sounds

import (
	"encoding/binary"
	"io/fs"
	"testing"
)

// TestShippedFiles checks that every file the shipped config refers to is
// embedded and is 8 kHz mono 16-bit PCM, and that the music is at least 30 s.
func TestShippedFiles(t *testing.T) {
	want := map[string]float64{ // path -> minimum seconds
		"ivr/common/music-on-hold.wav":              30,
		"ivr/common/ivr-you_are_now_logged_in.wav":  0.5,
		"ivr/common/ivr-you_are_now_logged_out.wav": 0.5,
		"ivr/common/ivr-all_agents_busy.wav":        0.5,
	}
	for path, minSec := range want {
		b, err := fs.ReadFile(FS, path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
			t.Fatalf("%s: not a RIFF/WAVE file", path)
		}
		// gen.sh writes the canonical 44-byte header: fmt chunk first.
		if string(b[12:16]) != "fmt " {
			t.Fatalf("%s: first chunk %q, want fmt", path, b[12:16])
		}
		format := binary.LittleEndian.Uint16(b[20:])
		channels := binary.LittleEndian.Uint16(b[22:])
		rate := binary.LittleEndian.Uint32(b[24:])
		bits := binary.LittleEndian.Uint16(b[34:])
		if format != 1 || channels != 1 || rate != 8000 || bits != 16 {
			t.Fatalf("%s: format %d channels %d rate %d bits %d, want PCM mono 8000 16", path, format, channels, rate, bits)
		}
		secs := float64(len(b)-44) / 16000
		if secs < minSec {
			t.Fatalf("%s: %.2f s, want at least %.1f s", path, secs, minSec)
		}
	}
}
