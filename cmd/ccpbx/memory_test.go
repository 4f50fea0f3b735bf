package main

import "testing"

// TestDrainWatch: one collection per drained load, none for small loads
// or while the count stays near its peak.
func TestDrainWatch(t *testing.T) {
	var d drainWatch
	steps := []struct {
		n    int
		want bool
	}{
		{10, false}, {40, false}, {0, false}, // small: never
		{100, false}, {1000, false}, {900, false}, {300, false},
		{250, true},                // a quarter of 1000
		{240, false}, {200, false}, // no second collection while it goes on falling slowly
		{50, true},  // ... until it fell to a quarter of what it was after the last
		{30, false}, // a load below drainMinPeak
		{0, false},
		{200, false}, {40, true}, // a new load of 200 drained
		{0, false},
	}
	for i, s := range steps {
		if got := d.drained(s.n); got != s.want {
			t.Errorf("step %d (%d channels): drained %v, want %v", i, s.n, got, s.want)
		}
	}
}
