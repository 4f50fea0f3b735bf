package call

import (
	"math"
	"testing"
)

func TestSwitchTrue(t *testing.T) {
	for s, want := range map[string]bool{
		"true": true, "TRUE": true, "on": true, "t": true, "Enabled": true, "yes": true,
		"active": true, "allow": true, "1": true, "-2": true, "+3": true, "1.5": true, "007": true,
		"99999999999999999999": true,
		"":                     false, "false": false, "no": false, "off": false, "0": false, "0.9": false, "-0": false,
		"1abc": false, "truthy": false, "+": false, ".": false, "1 ": true,
		// FreeSWITCH reads " yes " as false; ccpbx ignores the blanks.
		" yes ": true,
	} {
		if got := SwitchTrue(s); got != want {
			t.Errorf("SwitchTrue(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzSwitchTrue: any input is read without panicking, a number is true
// exactly when Atoi says it is not 0, and the words stay true in any case.
func FuzzSwitchTrue(f *testing.F) {
	for _, s := range []string{"true", "1", "-0.5", "+", "t", "1abc", "On"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SwitchTrue(s)
		if isNumber(s) && got != (Atoi(s) != 0) {
			t.Fatalf("SwitchTrue(%q) = %v, Atoi = %d", s, got, Atoi(s))
		}
		if !SwitchTrue("On") {
			t.Fatal("On is false")
		}
	})
}

func TestAtoi(t *testing.T) {
	for s, want := range map[string]int{
		"": 0, "0": 0, "42": 42, "-42": -42, "+7": 7, "  \t\n12": 12, "30s": 30, "1.9": 1,
		"abc": 0, "-": 0, "+-1": 0, " - 1": 0, "12 34": 12, "007": 7,
		"9223372036854775807":   math.MaxInt64,
		"9223372036854775808":   math.MaxInt64,
		"-9223372036854775808":  math.MinInt64,
		"-99999999999999999999": math.MinInt64,
	} {
		if got := Atoi(s); got != want {
			t.Errorf("Atoi(%q) = %d, want %d", s, got, want)
		}
	}
}
