package dialplan

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx"
	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
)

// luaHarness routes destination "lua" to `lua <data>` with scripts in a
// temporary directory.
func luaHarness(t *testing.T, scripts map[string]string, data string) *harness {
	t.Helper()
	dir := t.TempDir()
	for name, src := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, singleContext("default", ext("e", cond("", "", "lua "+data, "rec after"))), Options{ScriptsDir: dir})
	h.core.RegisterAPI("fakeapi", "test", func(_ context.Context, args string, ch *call.Channel) string {
		h.rec.add("api " + args)
		return "+OK " + args
	})
	return h
}

func TestLuaSessionAPI(t *testing.T) {
	script := `
assert(session:getVariable("nothing") == nil, "unset variable must be nil")
assert(session.execute == session.execute and session.getVariable ~= session.execute, "methods are kept once made")
assert(session.noSuchMethod == nil and session[1] == nil, "unknown methods are nil")
assert(type(getmetatable(session).__index) == "function")
session:setVariable("from_lua", "yes")
session:setVariable("caller_id_number", nil)
local r = freeswitch.API():execute("fakeapi", "a b")
session:execute("rec", "api said " .. r)
session:execute("rec", "argv " .. argv[0] .. " " .. argv[1] .. " " .. argv[2] .. " n=" .. #argv)
session:execute("rec", "expanded ${from_lua}")
session:execute("rec", "ready " .. tostring(session:ready()) .. " answered " .. tostring(session:answered()))
session:answer()
session:streamFile("/s/hello.wav")
session:sleep(1)
freeswitch.msleep(1)
freeswitch.consoleLog("INFO", "logged\n")
session:consoleLog("ERR", "logged too")
print("printed", 1)
session:execute("rec", "uuid ok " .. tostring(session:get_uuid() == session:getVariable("uuid")))
session:execute("rec", "global " .. tostring(freeswitch.getGlobalVariable("g")))
session:execute("rec", "executeString " .. freeswitch.API():executeString("fakeapi q"))
session:hangup("USER_BUSY")
session:execute("rec", "not run after hangup")
session:execute("set", "after=ready " .. tostring(session:ready()) .. " " .. session:hangupCause())
`
	h := luaHarness(t, map[string]string{"s.lua": script}, "s.lua one 'two words'")
	setGlobals(h.core, map[string]string{"g": "G"})
	// Route synchronously: the script goes on after its hangup, so waiting
	// for the hangup alone would race with its last line.
	ch, _ := h.channel(map[string]string{"context": "default", "destination_number": "1", "caller_id_number": "1001"})
	if err := h.dp.Route(ch.Context(), ch); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"api a b",
		"rec api said +OK a b",
		"rec argv s.lua one two words n=2",
		"rec expanded yes",
		"rec ready true answered false",
		"200",
		"play /s/hello.wav",
		"rec uuid ok true",
		"rec global G",
		"api q",
		"rec executeString +OK q",
		"hangup USER_BUSY",
	}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw\n%q\nwant\n%q", got, want)
	}
	if ch.Var("from_lua") != "yes" || ch.Var("caller_id_number") != "" || ch.Var("after") != "ready false USER_BUSY" {
		t.Errorf("vars from_lua=%q caller_id_number=%q after=%q", ch.Var("from_lua"), ch.Var("caller_id_number"), ch.Var("after"))
	}
}

func TestLuaErrorsAreContained(t *testing.T) {
	for name, src := range map[string]string{
		"syntax.lua":  "this is not lua (",
		"runtime.lua": `local x = nil .. "a"`,
		"badself.lua": `session.getVariable("x")`,
		"error.lua":   `error("boom")`,
	} {
		h := luaHarness(t, map[string]string{name: src}, name)
		ch := h.call(map[string]string{"context": "default", "destination_number": "1"})
		// The dialplan goes on after a failed script, as in FreeSWITCH.
		if got := h.rec.all(); !slices.Contains(got, "rec after") || ch.Cause() != call.NormalClearing {
			t.Errorf("%s: saw %q, cause %s", name, got, ch.Cause())
		}
	}
	h := luaHarness(t, nil, "missing.lua")
	h.call(map[string]string{"context": "default", "destination_number": "1"})
	if !slices.Contains(h.rec.all(), "rec after") {
		t.Errorf("missing script: saw %q", h.rec.all())
	}
}

func TestLuaUnknownApplicationHangsUp(t *testing.T) {
	h := luaHarness(t, map[string]string{"s.lua": `session:execute("nosuchapp", "")`}, "s.lua")
	ch := h.call(map[string]string{"context": "default", "destination_number": "1"})
	if ch.Cause() != call.DestinationOutOfOrder {
		t.Errorf("cause %s", ch.Cause())
	}
}

func TestLuaGetDigits(t *testing.T) {
	h := luaHarness(t, map[string]string{"d.lua": `
session:execute("rec", "ready")
local d = session:getDigits(4, "#", 5000)
session:execute("rec", "digits " .. d)`}, "d.lua")
	ch, m := h.channel(map[string]string{"context": "default", "destination_number": "1"})
	h.core.Route(ch)
	h.rec.waitSaw(t, "rec ready")
	// The script registers for digits right after "ready".
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return m.press('1') }, "the script to listen for digits")
	m.press('2')
	m.press('#')
	h.rec.waitSaw(t, "rec digits 12")
}

func TestLuaStoppedAfterHangupGrace(t *testing.T) {
	h := luaHarness(t, map[string]string{"loop.lua": `
session:execute("rec", "looping")
while true do end`}, "loop.lua")
	h.dp.luaGrace = time.Millisecond
	ch, _ := h.channel(map[string]string{"context": "default", "destination_number": "1"})
	done := make(chan error, 1)
	go func() { done <- h.dp.Route(ch.Context(), ch) }()
	h.rec.waitSaw(t, "rec looping")
	ch.Terminated(call.NormalClearing)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("runaway script not stopped after hangup")
	}
}

// The article's callcenter.lua is shipped unchanged.
func TestShippedScriptIsTheArticles(t *testing.T) {
	b, err := os.ReadFile("../scripts/callcenter.lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`fs_api = freeswitch.API();`,
		`g_log_ani = session:getVariable("caller_id_number")`,
		`session:execute("set", "caller_id_name=" ..queue)`,
		`session:execute("callcenter", queue .."@default")`,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("scripts/callcenter.lua lacks %q", line)
		}
	}
}

func TestScriptsFromEmbeddedFSAndDiskOverride(t *testing.T) {
	cfg, err := config.Parse("(embedded)", ccpbx.ConfigTOML)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := newHarness(t, cfg.Dialplan, Options{ScriptsDir: dir, ScriptsFS: ccpbx.Scripts})
	var queued []string
	h.core.RegisterApp("callcenter", func(_ context.Context, ch *call.Channel, data string) error {
		queued = append(queued, data+" as "+ch.Var("caller_id_name"))
		return nil
	})
	vars := map[string]string{"context": "blueivr", "destination_number": "3000", "caller_id_number": "5550001"}
	h.call(vars)
	if !slices.Equal(queued, []string{"3000@default as 3000"}) {
		t.Fatalf("embedded script: queued %q", queued)
	}
	// A copy on disk wins over the embedded one.
	if err := os.WriteFile(filepath.Join(dir, "callcenter.lua"), []byte(`session:execute("callcenter", "disk")`), 0o644); err != nil {
		t.Fatal(err)
	}
	h.call(vars)
	if len(queued) != 2 || !strings.HasPrefix(queued[1], "disk") {
		t.Errorf("disk override: queued %q", queued)
	}
}

// The lua application splits its arguments as mod_lua does: 'single quotes'
// group, a backslash escapes, and double quotes are ordinary characters.
// ccpbx grouped "double quoted" words before; FreeSWITCH does not.
func TestLuaArgumentsSplitLikeFreeSWITCH(t *testing.T) {
	script := `session:execute("rec", argv[0] .. "|" .. table.concat(argv, "|"))`
	h := luaHarness(t, map[string]string{"a.lua": script}, `a.lua  'x y' "two words" it\'s`)
	h.call(map[string]string{"context": "default", "destination_number": "1"})
	want := `rec a.lua|x y|"two|words"|it's`
	if got := h.rec.all(); !slices.Contains(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
}

// A script's log lines carry the channel's attributes, then script=<name>,
// then the line's own, as a log.With("script", …) logger gave them.
func TestLuaLogLinesNameTheScript(t *testing.T) {
	h := luaHarness(t, map[string]string{"l.lua": `freeswitch.consoleLog("WARNING", "hello\n")
session:execute("nosuchapp", "x")`}, "l.lua")
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	ch := h.core.NewChannel(call.ChannelSpec{Name: "sofia/test/1", Direction: call.Inbound,
		Vars: map[string]string{"context": "default", "destination_number": "1"}, Signalling: fakeSig{h.rec},
		Media: &fakeMedia{rec: h.rec, name: "A"}, Log: log})
	if err := h.dp.Route(ch.Context(), ch); err != nil {
		t.Logf("route: %v", err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	id := ch.UUID()
	for _, want := range []string{
		`level=WARN msg=hello uuid=` + id + ` script=l.lua source=lua` + "\n",
		`level=ERROR msg="lua: invalid application" uuid=` + id + ` script=l.lua app=nosuchapp` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
