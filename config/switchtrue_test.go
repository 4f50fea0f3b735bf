package config

import "testing"

func TestSwitchTrue(t *testing.T) {
	for s, want := range map[string]bool{
		"true": true, "TRUE": true, " yes ": true, "on": true, "t": true, "Enabled": true,
		"active": true, "allow": true, "1": true, "-2": true, "+3": true, "1.5": true, "007": true,
		"": false, "false": false, "no": false, "off": false, "0": false, "0.9": false, "-0": false,
		"1abc": false, "truthy": false, "+": false, ".": false,
	} {
		if got := SwitchTrue(s); got != want {
			t.Errorf("SwitchTrue(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzSwitchTrue: any input is read without panicking, and the words stay
// true whatever their case.
func FuzzSwitchTrue(f *testing.F) {
	for _, s := range []string{"true", "1", "-0.5", "+", "t", "1abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = SwitchTrue(s)
		if !SwitchTrue("On") {
			t.Fatal("On is false")
		}
	})
}
