package dialplan

import (
	"context"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// luaDirty changes everything a script can reach that outlives a line of
// it: globals, the libraries, the strings' and _G's metatables, modules,
// coroutines, the registry (through the libraries it opens).
const luaDirty = `
leaked = "global"
rawset(_G, "leaked_raw", 1)
string.leaked = function() return "lib" end
getmetatable("").__index.leaked_method = function() return "method" end
package.loaded.leaked_mod = {}
local co = coroutine.create(function() coroutine.yield(1) end)
assert(coroutine.resume(co))
leaked_co = co
os.leaked = true
setmetatable(_G, {__index = function(_, k) return "leaked:" .. k end})
`

// luaClean asserts that none of luaDirty's changes is visible.
const luaClean = `
assert(("x").leaked_method == nil, "strings' metatable") -- before string opens
assert(rawget(_G, "leaked") == nil and rawget(_G, "leaked_raw") == nil, "global")
assert(getmetatable(_G) == nil or getmetatable(_G).__index == nil, "_G metatable")
assert(leaked == nil and leaked_co == nil, "global through _G")
assert(string.leaked == nil and ("x").leaked_method == nil, "string library or metatable")
assert(package.loaded.leaked_mod == nil and os.leaked == nil, "modules")
assert(coroutine.running() == nil, "main thread")
for k in pairs(_G) do assert(not tostring(k):find("leaked"), k) end
assert(string.upper("a") == "A" and ("b"):upper() == "B" and math.max(1, 2) == 2)
`

// TestLuaVMReuseLeaksNothing: a VM reused after a script (luapool.go)
// starts as a new one: nothing the previous script did is visible,
// whether the next one runs through RunLua with a session or not.
func TestLuaVMReuseLeaksNothing(t *testing.T) {
	scripts, _ := sandboxDirs(t, map[string]string{"dirty.lua": luaDirty, "clean.lua": luaClean})
	d := sandboxDialplan(t, Options{ScriptsDir: scripts})
	reused := 0
	for range 50 {
		if err := d.RunLua(context.Background(), nil, "dirty.lua", nil); err != nil {
			t.Fatalf("dirty.lua: %v", err)
		}
		if L, _ := luaIdleVMs.Get().(*lua.LState); L != nil {
			reused++
			luaIdleVMs.Put(L)
		}
		if err := d.RunLua(context.Background(), nil, "clean.lua", nil); err != nil {
			t.Fatalf("clean.lua after dirty.lua: %v", err)
		}
	}
	if reused == 0 {
		t.Fatal("no VM was kept for reuse after a script that ran to the end")
	}
	// And with a session: the shipped script's calls see their own argv
	// and session.
	h := luaHarness(t, map[string]string{"dirty.lua": luaDirty, "s.lua": luaClean + `
assert(argv[1] == session:getVariable("caller_id_number"), "argv of this call")
session:execute("rec", "ok " .. argv[1])`}, "s.lua ${caller_id_number}")
	for _, n := range []string{"1", "2", "3"} {
		if err := h.dp.RunLua(context.Background(), nil, "dirty.lua", nil); err != nil {
			t.Fatal(err)
		}
		h.call(map[string]string{"context": "default", "destination_number": "1", "caller_id_number": n})
	}
	if got := strings.Join(h.rec.all(), ","); got != "rec ok 1,rec after,hangup NORMAL_CLEARING,rec ok 2,rec after,hangup NORMAL_CLEARING,rec ok 3,rec after,hangup NORMAL_CLEARING" {
		t.Fatalf("saw %s", got)
	}
}

// TestLuaVMReuse: a VM is kept only when it is as small as a new one and
// its script ended cleanly; deep recursion and large tables still work,
// and a script past the stacks' limits fails with a Lua error, not a
// crash. luaVMReusable reads gopher-lua's unexported fields: this test
// fails if that stops working (a new gopher-lua), not just reuse.
func TestLuaVMReuse(t *testing.T) {
	d := sandboxDialplan(t, Options{})
	run := func(src string) (*lua.LState, error) {
		L := d.newLuaState()
		return L, L.DoString(src)
	}
	L, err := run(`local t = {}; for i = 1, 10 do t[i] = i end; x = #t`)
	if err != nil || !luaVMReusable(L) {
		t.Fatalf("small script: err %v, reusable %v", err, luaVMReusable(L))
	}
	releaseLuaState(L, true)
	if L.IsClosed() {
		t.Fatal("a reusable VM was closed")
	}

	// Recursion deep enough to grow the data stack past its first size
	// works, and the VM is not kept.
	L, err = run(`local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end
		assert(f(200) == 200)
		local big = {}; for i = 1, 100000 do big[i] = i; big["k" .. i] = i end
		assert(#big == 100000)`)
	if err != nil {
		t.Fatal(err)
	}
	if luaVMReusable(L) {
		t.Fatal("a VM whose data stack grew is reusable")
	}
	releaseLuaState(L, true)
	if !L.IsClosed() {
		t.Fatal("a grown VM was kept")
	}

	// Past the call stack's limit: a clean Lua error, the VM not kept.
	scripts, _ := sandboxDirs(t, map[string]string{
		"deep.lua": `local function f(n) return 1 + f(n + 1) end f(1)`,
		"err.lua":  `x = 1; error("boom")`,
	})
	d = sandboxDialplan(t, Options{ScriptsDir: scripts})
	for _, name := range []string{"deep.lua", "err.lua"} {
		err := d.RunLua(context.Background(), nil, name, nil)
		if err == nil {
			t.Fatalf("%s ran without error", name)
		}
		t.Logf("%s: %.120s", name, err)
	}
	L, _ = run(`x = 1`)
	releaseLuaState(L, false)
	if !L.IsClosed() {
		t.Fatal("the VM of a failed script was kept")
	}
}
