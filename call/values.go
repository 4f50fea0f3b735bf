package call

import "strings"

// SwitchTrue is FreeSWITCH's switch_true, the one reading of a boolean that
// channel variables and module parameters share ("hangup_after_bridge=on",
// "ignore_early_media=true"): yes, on, true, t, enabled, active or allow in
// any case, or a number (an optional sign, then digits and dots) whose Atoi
// is not 0 ("1", "-2", "1.5"). Anything else, including "", is false.
//
// Unlike FreeSWITCH it ignores surrounding blanks (" yes " is true), so a
// value padded in a config file or a dialplan action reads as meant.
func SwitchTrue(s string) bool {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	return isNumber(s) && Atoi(s) != 0
}

// isNumber is switch_is_number: an optional sign, then only digits and dots
// (a sign alone counts, and reads as 0).
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

// Atoi reads s the way C's atoi does, which is how FreeSWITCH reads numeric
// variables and API arguments: leading white space, an optional sign, then
// as many decimal digits as follow; the rest is ignored and no digits give 0
// ("30s" is 30, "abc" is 0). Values beyond int saturate, as strtol does.
func Atoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	const limit = int(^uint(0) >> 1)
	n := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := int(s[i] - '0')
		if n > (limit-d)/10 {
			if neg {
				return -limit - 1
			}
			return limit
		}
		n = n*10 + d
	}
	if neg {
		return -n
	}
	return n
}
