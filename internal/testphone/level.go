package testphone

import (
	"math"

	"github.com/zaf/g711"
)

// rms is the root-mean-square level of a G.711 payload, decoded to 16-bit
// linear (0 = digital silence, speech and music sit in the thousands).
func rms(payload []byte, pt uint8) float64 {
	if len(payload) == 0 {
		return 0
	}
	var sum float64
	for _, b := range payload {
		var s int16
		if pt == 8 {
			s = g711.DecodeAlawFrame(b)
		} else {
			s = g711.DecodeUlawFrame(b)
		}
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(len(payload)))
}

// Loud reports how many received packets of the phone's codec had an RMS
// level of at least min: a prompt or music heard, as opposed to silence or
// nothing. 300 is well above G.711's idle noise and well below speech.
func (a *Audio) Loud(min float64) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, l := range a.levels {
		if l >= min {
			n++
		}
	}
	return n
}
