package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"ccpbx/call"
)

// FuzzReadFrame feeds arbitrary bytes to the server's frame reader: it must
// never panic, never return a body longer than the limit, and never put a
// line break into a command or header.
func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{
		"auth ClueCon\n\n",
		"api show registrations\nconsole_execute: true\n\n",
		"bgapi status\nJob-UUID: abc\n\n",
		"sendmsg\nContent-Length: 5\n\nhello",
		"\n\n\r\nexit\r\n\r\n",
		"event plain CUSTOM callcenter::info\n\n",
		"x\nContent-Length: -1\n\n",
		"x\nContent-Length: 99999999999999999999\n\n",
		"x\nno colon here\n: empty name\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for i := 0; i < 8; i++ {
			fr, err := readFrame(r, true)
			if err != nil {
				return
			}
			if len(fr.Body) > maxBodyLen {
				t.Fatalf("body of %d bytes", len(fr.Body))
			}
			if strings.ContainsAny(fr.Command, "\n") {
				t.Fatalf("command with newline: %q", fr.Command)
			}
			for _, h := range fr.Headers {
				if strings.ContainsAny(h.Name+h.Value, "\n") {
					t.Fatalf("header with newline: %q", h)
				}
			}
			// Whatever came in, the command parser copes.
			cmd := parseCommand(fr.Command)
			if cmd.Verb == verbAuth && strings.ContainsAny(cmd.Arg, "\r\n") {
				t.Fatalf("password with line break: %q", cmd.Arg)
			}
		}
	})
}

// FuzzParseCommand checks the command-line parser and the event, nixevent
// and filter argument parsers on arbitrary lines: no panic, replies that
// cannot break the framing, and sets that stay usable by match.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"event plain CUSTOM callcenter::info",
		"event json ALL",
		"event xml CHANNEL_ANSWER CUSTOM a b c",
		"nixevent CUSTOM callcenter::info",
		"nixevent ALL",
		"filter Unique-ID 1234",
		"filter add CC-Agent /^10[0-9]+$/",
		"filter delete all",
		"filter delete CC-Agent",
		"filter CC-Agent /(/",
		"filter x -+ value",
		"api status",
		"...",
		"EXIT",
		"auth   pw with spaces  ",
		"",
	} {
		f.Add(s)
	}
	ev := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info", Headers: []call.Header{
		{Name: "Event-Name", Value: "CUSTOM"}, {Name: "Event-Subclass", Value: "callcenter::info"}, {Name: "CC-Agent", Value: "1001"},
	}}
	f.Fuzz(func(t *testing.T, line string) {
		cmd := parseCommand(line)
		switch cmd.Verb {
		case verbUnknown, verbAuth, verbAPI, verbBgAPI, verbEvent, verbNixEvent, verbNoEvents, verbFilter, verbExit, verbLog, verbNoLog:
		default:
			t.Fatalf("verb %q", cmd.Verb)
		}
		set, format, keys := applyEventCommand(nil, line)
		switch format {
		case "", FormatPlain, FormatJSON, FormatXML:
		default:
			t.Fatalf("format %q", format)
		}
		if keys < 0 {
			t.Fatal("negative keys")
		}
		set.match(ev)
		set, _ = applyNixEvent(set, line)
		set.match(ev)
		set, reply := applyFilter(set, line)
		if strings.ContainsAny(commandReply(reply), "\x00") && !strings.Contains(line, "\x00") {
			t.Fatalf("reply invented a NUL: %q", reply)
		}
		if fr := commandReply(reply); strings.Count(fr, "\n\n") != 1 || !strings.HasSuffix(fr, "\n\n") {
			t.Fatalf("reply breaks framing: %q", fr)
		}
		set.match(ev)
		if l, ok := parseFSLogLevel(line); ok && (l < fsLogConsole || l > fsLogDebug) {
			t.Fatalf("log level %d from %q", l, line)
		}
	})
}

// FuzzURLRoundTrip: decoding an encoded value gives it back, and the
// encoded form never contains a byte that would break a header line.
func FuzzURLRoundTrip(f *testing.F) {
	for _, s := range []string{"callcenter::info", "Logged Out", "a\r\nb", "100%", "%41", "é", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := urlEncode(s)
		if strings.ContainsAny(enc, "\r\n :") {
			t.Fatalf("encoded %q as %q", s, enc)
		}
		if dec := urlDecode(enc); dec != s {
			t.Fatalf("round trip %q -> %q -> %q", s, enc, dec)
		}
		urlDecode(s) // arbitrary input must not panic
	})
}

// FuzzParseClientEvent: the client survives any event body in every format.
func FuzzParseClientEvent(f *testing.F) {
	f.Add("Event-Name: CUSTOM\nCC-Agent: 1001\n\n")
	f.Add("Event-Name: X\nContent-Length: 3\n\nabc")
	f.Add(`{"Event-Name":"CUSTOM","_body":"x","n":1,"a":[1,2]}`)
	f.Add(`{"unterminated":`)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, format := range []string{FormatPlain, FormatJSON, FormatXML} {
			e := parseClientEvent(format, raw)
			_ = e.Plain()
			eventHeader(e, "Event-Name")
		}
	})
}

// FuzzSerializeJSON: any header value gives valid JSON that decodes back to
// the value (invalid UTF-8 turned into U+FFFD).
func FuzzSerializeJSON(f *testing.F) {
	for _, s := range []string{"plain", "a\"b\\c", "<&>", "\x00\x1f\x7f", "é\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		e := &call.Event{Headers: []call.Header{{Name: "X-Value", Value: v}}, Body: v}
		out := serializeJSON(e)
		var m map[string]string
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		want := string([]rune(v)) // each invalid byte becomes U+FFFD
		if v != "" && (m["X-Value"] != want || m["_body"] != want) {
			t.Fatalf("value %q came back as %q / %q", v, m["X-Value"], m["_body"])
		}
	})
}
