package sip

import (
	"strings"
	"testing"
	"unicode/utf8"

	"ccpbx/call"
)

func TestSanitizeNumber(t *testing.T) {
	cases := map[string]string{
		"1001":                         "1001",
		"+1 (555) 123-4567":            "+1555123-4567",
		"100\r\nVia: evil":             "100Viaevil",
		"12\x0034":                     "1234",
		"*#9":                          "*%239",
		strings.Repeat("9", 100):       strings.Repeat("9", maxCallerNumber),
		"<sip:1@x>":                    "sip1x",
		"ab\"cd":                       "abcd",
		"":                             "",
		"\xff\xfe1":                    "1",
		"user;param=1?header=Evil":     "userparam1headerEvil",
		"1001@evil.example.com:5060":   "1001evil.example.com5060",
		"\r\n\r\nINVITE sip:x SIP/2.0": "INVITEsipxSIP2.0",
	}
	for in, want := range cases {
		if got := sanitizeNumber(in); got != want {
			t.Errorf("sanitizeNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	cases := map[string]string{
		"Extension 1001":         "Extension 1001",
		"Evil\r\nX-Injected: 1":  "EvilX-Injected: 1",
		"quote\"back\\slash":     "quotebackslash",
		"nul\x00byte":            "nulbyte",
		"Zoë":                    "Zoë",
		"  padded  ":             "padded",
		strings.Repeat("a", 200): strings.Repeat("a", maxCallerName),
	}
	for in, want := range cases {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSanitizeCallerID(f *testing.F) {
	for _, s := range []string{"1001", "Evil\r\nX: y", "\x00", "\"<>", "Zoë", strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := sanitizeNumber(s)
		if len(n) > maxCallerNumber+2 {
			t.Fatalf("number too long: %d", len(n))
		}
		if strings.ContainsAny(n, "\r\n\x00\"<>;@:? ") {
			t.Fatalf("unsafe number %q", n)
		}
		m := sanitizeName(s)
		if utf8.RuneCountInString(m) > maxCallerName || !utf8.ValidString(m) {
			t.Fatalf("bad name %q", m)
		}
		if strings.ContainsAny(m, "\r\n\x00\"\\") {
			t.Fatalf("unsafe name %q", m)
		}
	})
}

func TestParseUserTarget(t *testing.T) {
	u, d, err := parseUserTarget("1001@default")
	if err != nil || u != "1001" || d != "default" {
		t.Fatalf("got %q %q %v", u, d, err)
	}
	for _, bad := range []string{"", "@x", "a b", "a\r\nb", "a<b", strings.Repeat("1", 65), "a;b"} {
		if _, _, err := parseUserTarget(bad); err == nil {
			t.Errorf("parseUserTarget(%q) accepted", bad)
		}
	}
}

func TestParseSofiaTarget(t *testing.T) {
	p, u, err := parseSofiaTarget("internal/1002@127.0.0.1:5062;transport=tcp")
	if err != nil {
		t.Fatal(err)
	}
	if p != "internal" || u.User != "1002" || u.Host != "127.0.0.1" || u.Port != 5062 {
		t.Fatalf("got %q %+v", p, u)
	}
	if tr, _ := u.UriParams.Get("transport"); tr != "tcp" {
		t.Fatalf("transport %q", tr)
	}
	if _, u, err := parseSofiaTarget("external/sip:3000@10.0.0.1"); err != nil || u.Port != 0 || u.User != "3000" {
		t.Fatalf("explicit scheme: %+v %v", u, err)
	}
	for _, bad := range []string{"", "internal", "internal/", "/sip:a@b", "internal/a@b\r\nX: y", "internal/<sip:a@b>"} {
		if _, _, err := parseSofiaTarget(bad); err == nil {
			t.Errorf("parseSofiaTarget(%q) accepted", bad)
		}
	}
}

func FuzzParseDialTargets(f *testing.F) {
	for _, s := range []string{"1001", "1001@d", "internal/1002@127.0.0.1:5062", "x/sip:[::1]:5", "a/sip:@", "p/sips:u@h;transport=tcp?x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if u, _, err := parseUserTarget(s); err == nil && (u == "" || strings.ContainsAny(u, "\r\n<>\"@")) {
			t.Fatalf("bad user %q accepted", u)
		}
		if p, u, err := parseSofiaTarget(s); err == nil {
			if p == "" || u.Host == "" {
				t.Fatalf("accepted %q without profile or host", s)
			}
		}
	})
}

func TestCauseMapping(t *testing.T) {
	out := map[int]call.Cause{
		486: call.UserBusy, 600: call.UserBusy, 603: call.CallRejected, 403: call.CallRejected,
		480: call.NoAnswer, 408: call.NoAnswer, 404: call.UnallocatedNumber, 487: call.OriginatorCancel,
		488: call.IncompatibleDestination, 503: call.NormalTemporaryFailure, 699: call.CallRejected,
	}
	for code, want := range out {
		if got := causeForStatus(code); got != want {
			t.Errorf("causeForStatus(%d) = %s, want %s", code, got, want)
		}
	}
	in := map[call.Cause]int{
		call.NoRouteDestination: 404, call.UnallocatedNumber: 404, call.UserBusy: 486,
		call.CallRejected: 603, call.NoAnswer: 480, call.UserNotRegistered: 480,
		call.NormalClearing: 480, call.IncompatibleDestination: 488, call.OriginatorCancel: 487,
	}
	for cause, want := range in {
		if got, _ := statusForCause(cause); got != want {
			t.Errorf("statusForCause(%s) = %d, want %d", cause, got, want)
		}
	}
	if got := reasonHeader(call.NormalClearing); got != `Q.850;cause=16;text="NORMAL_CLEARING"` {
		t.Errorf("reason %q", got)
	}
}

func TestParseDTMFBody(t *testing.T) {
	cases := []struct {
		ct, body string
		want     rune
		ok       bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", '5', true},
		{"application/dtmf-relay", "Signal= #\r\nDuration=160", '#', true},
		{"application/dtmf-relay", "Signal=11\r\n", '#', true},
		{"application/dtmf-relay", "Duration=160", 0, false},
		{"application/dtmf", "7", '7', true},
		{"application/dtmf", "x", 0, false},
		{"text/plain", "Signal=5", 0, false},
	}
	for _, c := range cases {
		got, ok := parseDTMFBody(c.ct, []byte(c.body))
		if got != c.want || ok != c.ok {
			t.Errorf("parseDTMFBody(%q, %q) = %q %v", c.ct, c.body, got, ok)
		}
	}
}

func FuzzParseDTMFBody(f *testing.F) {
	f.Add("application/dtmf-relay", []byte("Signal=5\r\nDuration=160"))
	f.Add("application/dtmf", []byte("#"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		d, ok := parseDTMFBody(ct, body)
		if ok && !strings.ContainsRune("0123456789*#ABCD", d) {
			t.Fatalf("digit %q", d)
		}
	})
}
