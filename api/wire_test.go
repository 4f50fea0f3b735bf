package api

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestMain(m *testing.M) {
	// Listings print local times; pin the zone so golden files hold
	// everywhere.
	time.Local = time.UTC
	// Every test ends the goroutines it started (sockets, pumps, CLIs).
	pbxtest.VerifyNoLeaks(m)
}

// golden compares got with testdata/name (or rewrites it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The *.wire files are events as a real FreeSWITCH sent them on the event
// socket, the *.plain files the same events as fs_cli printed them. Parsing
// the wire form and serialising it again must give both back byte for
// byte: that pins the URL encoding and the plain layout.
func TestPlainEventMatchesFreeSWITCH(t *testing.T) {
	for _, name := range []string{"agent_offering", "member_queue_start"} {
		t.Run(name, func(t *testing.T) {
			wire := readTestdata(t, name+".wire")
			plain := readTestdata(t, name+".plain")
			ce := parseClientEvent(FormatPlain, wire)
			if len(ce.Headers) < 20 {
				t.Fatalf("parsed only %d headers", len(ce.Headers))
			}
			ev := &call.Event{Headers: ce.Headers}
			if got := serializePlain(ev, true); got != wire {
				t.Errorf("re-encoded wire form differs\n--- got ---\n%s\n--- want ---\n%s", got, wire)
			}
			// The fs_cli capture lost the CRs of multi-line values (SDP);
			// everything else must match exactly.
			if got, want := strings.ReplaceAll(ce.Plain(), "\r", ""), plain+"\n"; got != want {
				t.Errorf("decoded form differs\n--- got ---\n%s\n--- want ---\n%s", got, want)
			}
		})
	}
}

func TestURLEncodeFreeSWITCHSet(t *testing.T) {
	cases := map[string]string{
		"callcenter::info":              "callcenter%3A%3Ainfo",
		"2026-11-26 03:45:13":           "2026-11-26%2003%3A45%3A13",
		"Thu, 26 Nov 2026 03:45:13 GMT": "Thu,%2026%20Nov%202026%2003%3A45%3A13%20GMT",
		"3000@default":                  "3000%40default",
		"[call_timeout=60]user/1001":    "%5Bcall_timeout%3D60%5Duser/1001",
		"a\r\nb":                        "a%0D%0Ab",
		"100%":                          "100%25",
		"plain-_.,/~!*'()$":             "plain-_.,/~!*'()$",
		"é":                             "%C3%A9",
	}
	for in, want := range cases {
		if got := urlEncode(in); got != want {
			t.Errorf("urlEncode(%q) = %q, want %q", in, got, want)
		}
		if got := urlDecode(want); got != in {
			t.Errorf("urlDecode(%q) = %q, want %q", want, got, in)
		}
	}
	// Malformed escapes are kept, not rejected.
	for _, s := range []string{"%", "%4", "%G1", "a%zz"} {
		if got := urlDecode(s); got != s {
			t.Errorf("urlDecode(%q) = %q", s, got)
		}
	}
}

func testEvent() *call.Event {
	e := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info"}
	e.Headers = []call.Header{
		{Name: "Event-Subclass", Value: "callcenter::info"},
		{Name: "Event-Name", Value: "CUSTOM"},
		{Name: "CC-Queue", Value: "3000@default"},
		{Name: "CC-Action", Value: "agent-status-change"},
		{Name: "CC-Agent-UUID", Value: ""},
		{Name: "CC-Agent-Status", Value: "Logged Out"},
	}
	return e
}

func TestSerializeFormats(t *testing.T) {
	e := testEvent()
	plain := serializeEvent(e, FormatPlain)
	want := "Event-Subclass: callcenter%3A%3Ainfo\nEvent-Name: CUSTOM\nCC-Queue: 3000%40default\nCC-Action: agent-status-change\nCC-Agent-Status: Logged%20Out\n\n"
	if plain != want {
		t.Errorf("plain:\n%q\nwant\n%q", plain, want)
	}

	e.Body = "+OK 3 lines\n"
	plain = serializeEvent(e, FormatPlain)
	if !strings.HasSuffix(plain, "CC-Agent-Status: Logged%20Out\nContent-Length: 12\n\n+OK 3 lines\n") {
		t.Errorf("plain with body: %q", plain)
	}
	hs, body := parsePlainEvent(plain)
	if body != e.Body || len(hs) != 5 || hs[4].Value != "Logged Out" {
		t.Errorf("plain round trip: %v %q", hs, body)
	}

	js := serializeEvent(e, FormatJSON)
	var m map[string]string
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("json %q: %v", js, err)
	}
	if m["CC-Queue"] != "3000@default" || m["_body"] != e.Body || m["Content-Length"] != "12" {
		t.Errorf("json: %v", m)
	}
	if _, ok := m["CC-Agent-UUID"]; ok {
		t.Errorf("json kept an empty header: %v", m)
	}
	if !strings.HasPrefix(js, `{"Event-Subclass":"callcenter::info","Event-Name":"CUSTOM",`) {
		t.Errorf("json header order lost: %s", js)
	}
	hs, body = parseJSONEvent(js)
	if body != e.Body || len(hs) != 5 || hs[0].Name != "Event-Subclass" || hs[4].Value != "Logged Out" {
		t.Errorf("json round trip: %v %q", hs, body)
	}

	x := serializeEvent(e, FormatXML)
	for _, part := range []string{"<event>\n  <headers>\n", "<CC-Queue>3000%40default</CC-Queue>", "<body>+OK 3 lines\n</body>", "</event>"} {
		if !strings.Contains(x, part) {
			t.Errorf("xml lacks %q:\n%s", part, x)
		}
	}
}
