package config

import "strings"

// SwitchTrue is FreeSWITCH's switch_true, the one reading of a boolean that
// channel variables and module parameters share ("hangup_after_bridge=on",
// "ignore_early_media=true"): yes, on, true, t, enabled, active or allow in
// any case, or a number other than 0 ("1", "-2", "1.5"). Anything else,
// including the empty string, is false. It lives here because config is the
// package every module may import; the dialplan and the ACD read variables
// the same way through it.
func SwitchTrue(s string) bool {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	return isNumber(s) && atoiNonZero(s)
}

// isNumber is switch_is_number: an optional sign, then only digits and dots.
func isNumber(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// atoiNonZero reports whether C's atoi would give a non-zero value for a
// string isNumber accepted: some digit before the first dot is not 0.
func atoiNonZero(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	for i := 0; i < len(s) && s[i] != '.'; i++ {
		if s[i] != '0' {
			return true
		}
	}
	return false
}
