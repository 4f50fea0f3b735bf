package dialplan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccpbx/config"
)

// sandboxDirs makes a scripts folder with files and, beside it, an
// "outside" folder holding outside.lua, which a script must not reach.
func sandboxDirs(t *testing.T, files map[string]string) (scripts, outside string) {
	t.Helper()
	base := t.TempDir()
	scripts, outside = filepath.Join(base, "scripts"), filepath.Join(base, "outside")
	for _, d := range []string{scripts, filepath.Join(scripts, "lib"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files["../outside/outside.lua"] = `freeswitch.consoleLog("ERR", "outside ran")`
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(scripts, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return scripts, outside
}

func sandboxDialplan(t *testing.T, opts Options) *Dialplan {
	t.Helper()
	return newHarness(t, config.Dialplan{}, opts).dp
}

// TestLuaScriptNamesStayInScriptsDir: an absolute path or ".." is refused
// with an error that says why; allowed_roots opens a folder to absolute
// names.
func TestLuaScriptNamesStayInScriptsDir(t *testing.T) {
	scripts, outside := sandboxDirs(t, map[string]string{"ok.lua": `x = 1`})
	d := sandboxDialplan(t, Options{ScriptsDir: scripts})
	if err := d.RunLua(context.Background(), nil, "ok.lua", nil); err != nil {
		t.Fatalf("ok.lua: %v", err)
	}
	if err := d.RunLua(context.Background(), nil, filepath.Join(scripts, "ok.lua"), nil); err != nil {
		t.Fatalf("absolute path inside scripts_dir: %v", err)
	}
	for _, name := range []string{
		filepath.Join(outside, "outside.lua"), "../outside/outside.lua", "lib/../../outside/outside.lua", "/etc/passwd", "../../../../etc/passwd",
	} {
		err := d.RunLua(context.Background(), nil, name, nil)
		if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "outside the allowed folders") {
			t.Errorf("lua %s: %v, want a refusal", name, err)
		}
	}
	d = sandboxDialplan(t, Options{ScriptsDir: scripts, AllowedRoots: []string{outside}})
	if err := d.RunLua(context.Background(), nil, filepath.Join(outside, "outside.lua"), nil); err != nil {
		t.Fatalf("script in an allowed root: %v", err)
	}
	if err := d.RunLua(context.Background(), nil, "../outside/outside.lua", nil); err == nil {
		t.Fatal(`".." allowed because an allowed root lies there`)
	}
}

// TestLuaSandbox: what a script may and may not do.
func TestLuaSandbox(t *testing.T) {
	scripts, _ := sandboxDirs(t, map[string]string{
		"data.txt":     "line one\nline two\n",
		"lib/util.lua": `local M = {} function M.twice(x) return 2 * x end return M`,
		"helper.lua":   `helper_loaded = (helper_loaded or 0) + 1 return 42`,
	})
	d := sandboxDialplan(t, Options{ScriptsDir: scripts})
	run := func(src string) error {
		t.Helper()
		if err := os.WriteFile(filepath.Join(scripts, "t.lua"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return d.RunLua(context.Background(), nil, "t.lua", nil)
	}
	for _, denied := range []string{
		`os.execute("touch /tmp/ccpbx-pwned")`, `io.popen("id")`, `os.exit(1)`, `os.getenv("HOME")`,
		`os.remove("data.txt")`, `io.read()`, `package.loadlib("x", "y")`, `debug.getregistry()`,
	} {
		err := run(denied)
		name, _, _ := strings.Cut(denied, "(")
		if err == nil || !strings.Contains(err.Error(), name+" is not available") {
			t.Errorf("%s: %v, want a clean refusal naming it", denied, err)
		}
	}
	allowed := `
assert(type(os.time()) == "number" and os.date("%Y") and os.clock() and os.difftime(2, 1) == 1)
local f = assert(io.open("data.txt"))
assert(f:read("*l") == "line one")
f:close()
local n = 0
for l in io.lines("data.txt") do n = n + 1 end
assert(n == 2, "io.lines read " .. n)
local w = assert(io.open("out.txt", "w"))
w:write("written")
w:close()
local g, err = io.open("/etc/passwd")
assert(g == nil and string.find(err, "outside the allowed folders"), "io.open of /etc/passwd: " .. tostring(err))
g, err = io.open("../outside/outside.lua")
assert(g == nil, "io.open climbed out")
assert(require("lib.util").twice(21) == 42)
assert(require("helper") == 42 and require("helper") == 42 and helper_loaded == 1, "require runs a module once")
assert(dofile("helper.lua") == 42)
assert(loadfile("helper.lua"))
local lf, lerr = loadfile("/etc/passwd")
assert(lf == nil and string.find(lerr, "refused"), "loadfile /etc/passwd: " .. tostring(lerr))
assert(not pcall(dofile, "../outside/outside.lua"))
assert(not pcall(require, "..outside.outside"))
assert(loadstring("return 2")() == 2)
assert(string.format("%d", 3) == "3" and table.concat({"a", "b"}) == "ab" and math.max(1, 2) == 2)
assert(coroutine.wrap(function() coroutine.yield(5) end)() == 5)
`
	if err := run(allowed); err != nil {
		t.Fatalf("sandboxed script: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(scripts, "out.txt")); err != nil || string(b) != "written" {
		t.Fatalf("io.open for writing inside scripts_dir: %q %v", b, err)
	}
	if _, err := os.Stat("/tmp/ccpbx-pwned"); err == nil {
		t.Fatal("os.execute ran")
	}
}
