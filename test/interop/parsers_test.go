package interop

import (
	"bytes"
	"strings"
	"testing"
)

// The suite's own parsers and detectors are checked here, without the PBX,
// so a broken harness cannot make the interop steps pass or fail wrongly.

const sampleEvents = `RECV EVENT
Event-Subclass: callcenter::info
Event-Name: CUSTOM
CC-Queue: 3000@default
CC-Action: agent-offering
CC-Agent: 1001
CC-Member-CID-Number: 5550001

RECV EVENT
Event-Subclass: callcenter%3A%3Ainfo
Event-Name: CUSTOM
CC-Queue: 3000%40default
CC-Action: member-queue-end
CC-Cause: Cancel
CC-Cancel-Reason: BREAK_OUT
CC-Member-CID-Number: 5550007

`

func TestParseEvents(t *testing.T) {
	var got []event
	if err := parseEvents(strings.NewReader(sampleEvents), func(e event) { got = append(got, e) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2", len(got))
	}
	if c := compact(got[0]); c != "agent-offering agent=1001 member=5550001" {
		t.Errorf("compact = %q", c)
	}
	if c := compact(got[1]); c != "member-queue-end member=5550007 cause=Cancel reason=BREAK_OUT" {
		t.Errorf("compact = %q", c)
	}
	if got[1].get("CC-Queue") != "3000@default" || got[1].get("Event-Subclass") != "callcenter::info" {
		t.Errorf("URL-encoded values not decoded: %v", got[1].Headers)
	}
}

func TestCheckEventShape(t *testing.T) {
	var evs []event
	_ = parseEvents(strings.NewReader(sampleEvents), func(e event) { evs = append(evs, e) })
	// The samples lack headers FreeSWITCH sends: the check must say so.
	for _, e := range evs {
		if err := checkEventShape(e); err == nil {
			t.Errorf("%s: incomplete event accepted", compact(e))
		}
	}
	ok := event{Headers: map[string]string{"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info",
		"CC-Agent": "1001", "CC-Action": "agent-status-change", "CC-Agent-Status": "Available"},
		Order: []string{"Event-Name", "Event-Subclass", "CC-Agent", "CC-Action", "CC-Agent-Status"}}
	if err := checkEventShape(ok); err != nil {
		t.Errorf("FreeSWITCH-shaped event rejected: %v", err)
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(sampleEvents))
	f.Add([]byte("RECV EVENT\n: \n%zz: %\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseEvents(bytes.NewReader(b), func(e event) { _ = compact(e); _ = checkEventShape(e) })
	})
}

func TestParseNetstrings(t *testing.T) {
	frames, rest, err := parseNetstrings([]byte(`5:hello,3:abc,4:pa`))
	if err != nil || len(frames) != 2 || string(frames[1]) != "abc" || string(rest) != "4:pa" {
		t.Fatalf("frames %q rest %q err %v", frames, rest, err)
	}
	if _, _, err := parseNetstrings([]byte(`3:abcX`)); err == nil {
		t.Error("missing ',' accepted")
	}
	if _, _, err := parseNetstrings([]byte(`x:abc,`)); err == nil {
		t.Error("bad length accepted")
	}
}

func FuzzParseNetstrings(f *testing.F) {
	f.Add([]byte(`5:hello,3:abc,`))
	f.Add([]byte(`99999999999:`))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, rest, _ := parseNetstrings(b)
		n := len(rest)
		for _, fr := range frames {
			n += len(fr)
		}
		if n > len(b) {
			t.Fatalf("parsed more than the input")
		}
	})
}

func TestToneDetection(t *testing.T) {
	r := analyse(sine(callerTone, 0, 8000))
	if r.Frames != 50 || r.CallerTone != 50 || r.AgentTone != 0 {
		t.Errorf("caller tone: %s", r)
	}
	r = analyse(sine(agentTone, 0, 8000))
	if r.AgentTone != 50 || r.CallerTone != 0 {
		t.Errorf("agent tone: %s", r)
	}
	r = analyse(make([]int16, 8000))
	if r.Loud != 0 {
		t.Errorf("silence counted as sound: %s", r)
	}
	// Two tones mixed: neither dominates a frame.
	mix := sine(callerTone, 0, 8000)
	for i, v := range sine(agentTone, 0, 8000) {
		mix[i] = mix[i]/2 + v/2
	}
	if r := analyse(mix); r.CallerTone != 0 || r.AgentTone != 0 || r.Loud != 50 {
		t.Errorf("mix: %s", r)
	}
}

func TestWAVRoundTrip(t *testing.T) {
	path := t.TempDir() + "/t.wav"
	in := sine(agentTone, 0, 1600)
	if err := writeWAV(path, in); err != nil {
		t.Fatal(err)
	}
	b := mustRead(t, path)
	out, rate, err := parseWAV(b)
	if err != nil || rate != sampleRate || len(out) != len(in) || out[123] != in[123] {
		t.Fatalf("rate %d len %d err %v", rate, len(out), err)
	}
	// A recorder killed before patching the header: size 0 → read to EOF.
	for i := 40; i < 44; i++ {
		b[i] = 0
	}
	if out, _, err := parseWAV(b); err != nil || len(out) != len(in) {
		t.Fatalf("unpatched header: len %d err %v", len(out), err)
	}
}

func FuzzParseWAV(f *testing.F) {
	path := f.TempDir() + "/seed.wav"
	if err := writeWAV(path, sine(callerTone, 0, 320)); err == nil {
		f.Add(mustRead(f, path))
	}
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = parseWAV(b) })
}

func TestParseAgentList(t *testing.T) {
	out := agentListHeader + "\n" +
		"1001|single_box||callback|[call_timeout=6]user/1001|Available|Waiting|3|1|20|20|1|0|0|0|1795664712|0|0|0|0|0\n+OK\n\n"
	rows, err := parseAgentList(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := expectAgent(rows, "1001", map[string]string{"status": "Available", "state": "Waiting"}); err != nil {
		t.Error(err)
	}
	if err := expectAgent(rows, "1001", map[string]string{"status": "Logged Out"}); err == nil {
		t.Error("wrong status accepted")
	}
	if _, err := parseAgentList("name|x\n+OK\n"); err == nil {
		t.Error("wrong header accepted")
	}
	if rows, err := parseAgentList("+OK\n"); err != nil || len(rows) != 0 {
		t.Errorf("empty list: %v %v", rows, err)
	}
}

func TestParseRegistrations(t *testing.T) {
	out := regListHeader + "\n" +
		"1002,127.0.0.1,072332d7,sofia/internal/sip:1002@127.0.0.1:5000,1686662097,127.0.0.1,5000,udp,host,\n" +
		"\n1 total.\n\n"
	rows, err := parseRegistrations(out)
	if err != nil || len(rows) != 1 || rows[0]["network_port"] != "5000" {
		t.Fatalf("rows %v err %v", rows, err)
	}
	if _, err := parseRegistrations(strings.Replace(out, "1 total.", "2 total.", 1)); err == nil {
		t.Error("wrong total accepted")
	}
	if _, err := parseRegistrations(strings.Replace(out, "\n\n1 total.", "\n1 total.", 1)); err == nil {
		t.Error("missing blank line accepted")
	}
}

func FuzzParseListings(f *testing.F) {
	f.Add(agentListHeader + "\n1|2\n+OK\n")
	f.Add(regListHeader + "\n\n0 total.\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseAgentList(s)
		_, _ = parseRegistrations(s)
	})
}

func TestTestConfigRewritesShipped(t *testing.T) {
	shipped := string(mustRead(t, repoRoot(t)+"/config.toml"))
	c := testConfig(t, shipped, pbxPorts{Internal: 15060, Trunk: 15080, ESL: 18021, RTPStart: 30000, RTPEnd: 30399}, "/tmp/x")
	for _, want := range []string{"port = 15060", "port = 15080", `listen = "127.0.0.1:18021"`, `advertise_ip = "127.0.0.1"`,
		"[call_timeout=6]user/1001", `data_dir = "/tmp/x"`, "busy-delay-time = 20",
		`recordings_dir = "/tmp/x/recordings"`, `record-template = "` + testRecordTemplate + `"`} {
		if !strings.Contains(c, want) {
			t.Errorf("test config lacks %q", want)
		}
	}
	if strings.Contains(c, "0.0.0.0") {
		t.Error("test config still listens on all interfaces")
	}
	if strings.Contains(c, "\nstatus = ") {
		t.Error("test config still sets the agents' status (a restart would re-apply it)")
	}
}

func TestMatchIn(t *testing.T) {
	ref := make([]int16, 8000)
	for i := range ref { // a chirp: no two windows alike
		f := 300 + float64(i)/8000*2000
		ref[i] = sine(f, i, 1)[0]
	}
	hay := append(make([]int16, 1234), ref...)
	for i := range hay {
		hay[i] = hay[i] / 3 // gain does not matter
	}
	needle := ref[3000:5000]
	if s, at := matchIn(needle, hay, false); s < 0.99 || at != 1234+3000 {
		t.Errorf("match %.3f at %d, want ~1 at %d", s, at, 1234+3000)
	}
	if s, _ := matchIn(sine(callerTone, 0, 2000), hay, false); s > 0.5 {
		t.Errorf("a tone matched the chirp with %.3f", s)
	}
	// Looping hay: a needle straddling the end is found.
	wrap := append(append([]int16{}, ref[7000:]...), ref[:1000]...)
	if s, _ := matchIn(wrap, ref, true); s < 0.99 {
		t.Errorf("looped match %.3f", s)
	}
}

func TestSofiaStatusLayout(t *testing.T) {
	// Byte for byte what FreeSWITCH printed (README §1).
	want := "                     Name\t   Type\t                                      Data\tState\n" +
		strings.Repeat("=", 97) + "\n" +
		"                  blueivr\tprofile\t             sip:mod_sofia@127.0.0.1:15080\tRUNNING (0)\n" +
		"                 internal\tprofile\t             sip:mod_sofia@127.0.0.1:15060\tRUNNING (0)\n" +
		strings.Repeat("=", 97) + "\n" +
		"2 profiles 0 aliases"
	if got := sofiaStatus(15060, 15080); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestSippTraceReaders(t *testing.T) {
	trace := "----------------------------------------------- 2026-11-26 03:44:23.554827\n" +
		"UDP message received [537] bytes :\n\n" +
		"INVITE sip:1002@127.0.0.1:5000 SIP/2.0\r\nFrom: \"3000\" <sip:5550001@127.0.0.1>;tag=a\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\n\n" +
		"----------------------------------------------- 2026-11-26 03:44:23.555780\n" +
		"UDP message sent (559 bytes):\n\n" +
		"SIP/2.0 180 Ringing\nFrom: \"3000\" <sip:5550001@127.0.0.1>;tag=a\n\n" +
		"----------------------------------------------- 2026-11-26 03:44:23.555781\n" +
		"UDP message received [100] bytes :\n\n" +
		"CANCEL sip:1002@127.0.0.1:5000 SIP/2.0\nFrom: x\n\n"
	path := t.TempDir() + "/a.msg"
	if err := writeFile(path, trace); err != nil {
		t.Fatal(err)
	}
	if got := sippReceived(path, "INVITE", "From"); len(got) != 1 || got[0] != `"3000" <sip:5550001@127.0.0.1>;tag=a` {
		t.Errorf("INVITE From = %q", got)
	}
	if got := sippReceived(path, "SIP/2.0", "From"); len(got) != 0 {
		t.Errorf("sent messages counted as received: %q", got)
	}
	if n := sippCount(path, "INVITE"); n != 1 {
		t.Errorf("INVITE count %d", n)
	}
	if n := sippCount(path, "180"); n != 1 {
		t.Errorf("180 count %d", n)
	}
	if n := sippCount(path, "CANCEL"); n != 1 {
		t.Errorf("CANCEL count %d", n)
	}
}
