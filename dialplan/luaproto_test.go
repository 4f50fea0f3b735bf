package dialplan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLuaCompiledOnceAndBounded: a script run again is not compiled again,
// an edited file is (the edit takes effect), a syntax error still reads as
// one, and scripts named many times cannot grow the cache past its bound.
func TestLuaCompiledOnceAndBounded(t *testing.T) {
	scripts, _ := sandboxDirs(t, map[string]string{
		"a.lua":   `x = 1`,
		"bad.lua": `if then`,
	})
	d := sandboxDialplan(t, Options{ScriptsDir: scripts})
	run := func(name string) error { return d.RunLua(context.Background(), nil, name, nil) }
	for range 3 {
		if err := run("a.lua"); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.protos.len(); n != 1 {
		t.Fatalf("after 3 runs of one script: %d compiled, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(scripts, "a.lua"), []byte(`error("edited")`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run("a.lua"); err == nil || !strings.Contains(err.Error(), "edited") {
		t.Fatalf("edited script: %v, want its error", err)
	}
	if err := run("bad.lua"); err == nil || !strings.Contains(err.Error(), "syntax error") {
		t.Fatalf("bad.lua: %v, want a syntax error", err)
	}
	for i := range maxLuaProtos + 10 {
		name := fmt.Sprintf("gen%d.lua", i)
		if err := os.WriteFile(filepath.Join(scripts, name), []byte(fmt.Sprintf("x = %d", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := run(name); err != nil {
			t.Fatal(err)
		}
		if n := d.protos.len(); n > maxLuaProtos {
			t.Fatalf("%d compiled scripts kept, bound %d", n, maxLuaProtos)
		}
	}
}

// TestLuaVarargsUnchanged: a file's own function builds no "arg" table
// (noChunkArg) and nothing a script can see changes: "..." in the file and
// Lua 5.0's arg in a nested vararg function work as before, in a run file
// and in one loaded with dofile, require or loadfile.
func TestLuaVarargsUnchanged(t *testing.T) {
	body := `
assert(arg == nil, "no global arg")
local n = select("#", ...)
local function f(...) return arg.n, arg[1], arg[2] end
local a, b, c = f("x", "y")
assert(a == 2 and b == "x" and c == "y", "arg in a nested vararg function")
local function g(...) return select("#", ...), ... end
local m, first = g(7, 8, 9)
assert(m == 3 and first == 7)
local x, y = 1, 2
assert(x + y == 3)
return n
`
	scripts, _ := sandboxDirs(t, map[string]string{
		"main.lua": body + `-- main`,
		"lib.lua":  body,
		"run.lua": `
assert(dofile("lib.lua") == 0)
assert(require("lib") == 1, "require passes the module name")
assert(loadfile("lib.lua")(1, 2) == 2, "... in a loaded file")
`,
	})
	d := sandboxDialplan(t, Options{ScriptsDir: scripts})
	for _, name := range []string{"main.lua", "run.lua", "main.lua"} {
		if err := d.RunLua(context.Background(), nil, name, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
