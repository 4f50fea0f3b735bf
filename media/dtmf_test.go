package media

import "testing"

func TestDigitEvents(t *testing.T) {
	for _, d := range "0123456789*#ABCD" {
		ev, ok := digitEvent(d)
		if !ok {
			t.Fatalf("%c not a digit", d)
		}
		back, ok := eventDigit(ev)
		if !ok || back != d {
			t.Fatalf("%c -> %d -> %c", d, ev, back)
		}
	}
	if ev, _ := digitEvent('#'); ev != 11 {
		t.Fatalf("# is event %d", ev)
	}
	if _, ok := digitEvent('x'); ok {
		t.Fatal("x accepted")
	}
	if _, ok := eventDigit(16); ok {
		t.Fatal("event 16 (flash) reported as a digit")
	}
	if err := validateDigits("12x"); err == nil {
		t.Fatal("validateDigits accepted x")
	}
}

func TestDTMFDetectorOncePerEvent(t *testing.T) {
	var d dtmfDetector
	var p [4]byte
	var got []rune
	feed := func(ts uint32, ev uint8, end bool, dur uint16) {
		putDTMF(p[:], dtmfEvent{event: ev, end: end, volume: 10, duration: dur})
		if r, ok := d.feed(ts, p[:]); ok {
			got = append(got, r)
		}
	}
	// "1": start, updates, three end packets, all with the event timestamp.
	for k := uint16(1); k <= 5; k++ {
		feed(1000, 1, false, k*160)
	}
	for range 3 {
		feed(1000, 1, true, 800)
	}
	// "1" again (new event, new timestamp), but its start packets were lost.
	feed(3000, 1, true, 800)
	feed(3000, 1, true, 800)
	// "#", then a short payload, then an unknown event.
	feed(5000, 11, false, 160)
	if _, ok := d.feed(7000, []byte{1, 2}); ok {
		t.Fatal("short payload reported")
	}
	feed(9000, 16, false, 160)
	if string(got) != "11#" {
		t.Fatalf("got %q, want \"11#\"", string(got))
	}
}

func FuzzDTMF(f *testing.F) {
	f.Add(uint32(1), []byte{1, 0x8a, 3, 0x20})
	f.Add(uint32(1), []byte{11, 0, 0})
	f.Fuzz(func(t *testing.T, ts uint32, payload []byte) {
		var d dtmfDetector
		r, ok := d.feed(ts, payload)
		if ok {
			if _, valid := digitEvent(r); !valid {
				t.Fatalf("reported %q", r)
			}
			if _, again := d.feed(ts, payload); again {
				t.Fatal("same event reported twice")
			}
		}
	})
}
