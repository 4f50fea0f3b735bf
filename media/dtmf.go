package media

import (
	"encoding/binary"
	"fmt"
)

// RFC 4733 telephone-event: 4-byte payload, event | E R volume | duration.

// dtmfEvent is one decoded telephone-event payload.
type dtmfEvent struct {
	event    uint8
	end      bool
	volume   uint8
	duration uint16
}

// parseDTMF decodes a telephone-event payload; extra bytes (redundant events
// some senders append) are ignored.
func parseDTMF(p []byte) (dtmfEvent, bool) {
	if len(p) < 4 {
		return dtmfEvent{}, false
	}
	return dtmfEvent{
		event:    p[0],
		end:      p[1]&0x80 != 0,
		volume:   p[1] & 0x3f,
		duration: binary.BigEndian.Uint16(p[2:]),
	}, true
}

func putDTMF(p []byte, ev dtmfEvent) {
	_ = p[3]
	p[0] = ev.event
	p[1] = ev.volume & 0x3f
	if ev.end {
		p[1] |= 0x80
	}
	binary.BigEndian.PutUint16(p[2:], ev.duration)
}

// digitEvent maps a DTMF digit to its RFC 4733 event code.
func digitEvent(d rune) (uint8, bool) {
	switch {
	case d >= '0' && d <= '9':
		return uint8(d - '0'), true
	case d == '*':
		return 10, true
	case d == '#':
		return 11, true
	case d >= 'A' && d <= 'D':
		return uint8(d-'A') + 12, true
	case d >= 'a' && d <= 'd':
		return uint8(d-'a') + 12, true
	}
	return 0, false
}

// eventDigit maps an RFC 4733 event code 0-15 back to its digit.
func eventDigit(e uint8) (rune, bool) {
	switch {
	case e <= 9:
		return rune('0' + e), true
	case e == 10:
		return '*', true
	case e == 11:
		return '#', true
	case e <= 15:
		return rune('A' + e - 12), true
	}
	return 0, false
}

// dtmfDetector reports each telephone-event once. A sender repeats every
// event many times (updates while the key is down, three end packets), all
// with the RTP timestamp of the event start, so the timestamp identifies the
// event. Reporting on the first packet seen gives the lowest latency and still
// works when the start packets are lost.
type dtmfDetector struct {
	have   bool
	lastTS uint32
}

// feed returns the digit when the packet starts a new event.
func (d *dtmfDetector) feed(ts uint32, payload []byte) (rune, bool) {
	ev, ok := parseDTMF(payload)
	if !ok {
		return 0, false
	}
	if d.have && ts == d.lastTS {
		return 0, false
	}
	digit, ok := eventDigit(ev.event)
	if !ok {
		return 0, false
	}
	d.have, d.lastTS = true, ts
	return digit, true
}

// validateDigits reports the first character that is not a DTMF digit.
func validateDigits(digits string) error {
	for _, d := range digits {
		if _, ok := digitEvent(d); !ok {
			return fmt.Errorf("media: %q is not a DTMF digit", d)
		}
	}
	return nil
}
