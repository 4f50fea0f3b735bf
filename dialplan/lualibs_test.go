package dialplan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"ccpbx/config"
)

func lazyVM(t *testing.T, d *Dialplan) *lua.LState {
	t.Helper()
	L := d.newLuaState()
	t.Cleanup(L.Close)
	return L
}

func doLua(t *testing.T, L *lua.LState, src string) {
	t.Helper()
	if err := L.DoString(src); err != nil {
		t.Fatalf("%s\n%v", src, err)
	}
}

// TestLuaLibsOpenOnFirstUse: a VM builds no library until its script uses
// one, and then only that one: a waiting caller's script that touches none
// keeps none (BENCHMARKS.md, "Memory per caller waiting on music").
func TestLuaLibsOpenOnFirstUse(t *testing.T) {
	d := newHarness(t, config.Dialplan{}, Options{}).dp
	L := lazyVM(t, d)
	raw := func(name string) bool { return L.G.Global.RawGetString(name) != lua.LNil }
	all := []string{"string", "table", "math", "coroutine", "os", "io", "package", "debug", "print", "pairs", "_G"}
	for _, n := range all {
		if raw(n) {
			t.Fatalf("%s built before any use", n)
		}
	}
	doLua(t, L, `local a = 1 .. "x"; local function f() return a end; x = f()`)
	for _, n := range all {
		if raw(n) {
			t.Fatalf("%s built by a script that uses no library", n)
		}
	}
	doLua(t, L, `assert(("a"):upper() == "A")`) // the string metatable
	if !raw("string") || raw("math") {
		t.Fatalf("after a string method: string %v, math %v", raw("string"), raw("math"))
	}
	doLua(t, L, `y = math.floor(1.5)`)
	if !raw("math") || raw("table") || raw("io") {
		t.Fatalf("after math: math %v, table %v, io %v", raw("math"), raw("table"), raw("io"))
	}
	doLua(t, L, `for k in pairs(_G) do end`)
	for _, n := range all {
		if !raw(n) {
			t.Fatalf("pairs(_G) did not open %s", n)
		}
	}
	if L.GetMetatable(L.G.Global) != lua.LNil {
		t.Fatal("_G keeps the lazy metatable once everything is open")
	}
}

// TestLuaLibsLookOpened: whatever a script does first, it sees _G as if
// every library had been opened up front.
func TestLuaLibsLookOpened(t *testing.T) {
	d := newHarness(t, config.Dialplan{}, Options{}).dp
	for _, src := range []string{
		// The whole _G, through each function that can list or inspect it.
		`local n = {}
		for k in pairs(_G) do n[k] = true end
		for _, k in ipairs({"string", "table", "math", "coroutine", "os", "io", "package", "debug",
			"print", "pairs", "next", "require", "dofile", "loadfile", "loadstring", "_G", "_VERSION"}) do
			assert(n[k], k .. " missing from pairs(_G)")
		end
		assert(n.module == nil and n._printregs == nil, "module or _printregs present")`,
		`local k, seen = nil, 0
		repeat k = next(_G, k); if k == "math" then seen = seen + 1 end until k == nil
		assert(seen == 1, "next(_G) met math " .. seen .. " times")`,
		`assert(type(rawget(_G, "table")) == "table" and rawget(_G, "table") == table)`,
		`assert(getmetatable(_G) == nil)`,
		`assert(_G._G == _G and _G.string == string and string.format("%d", 7) == "7")`,
		// The strings' metatable is the string library, reached either way.
		`assert(getmetatable("").__index == string)`,
		`assert(("%d"):format(3) == "3" and getmetatable("").__index == string)`,
		// A script's own _G metatable (strict mode) is the only one.
		`setmetatable(_G, {__index = function(_, k) error("undeclared " .. k, 2) end})
		assert(string.upper("a") == "A" and math.max(1, 2) == 2 and os.time() and io.write)
		local ok, err = pcall(function() return undeclared_thing end)
		assert(not ok and string.find(err, "undeclared undeclared_thing"), tostring(err))`,
		`local mt = {}; setmetatable(_G, mt); assert(getmetatable(_G) == mt)`,
		// Removing or replacing a library is not undone when it opens.
		`string = nil; assert(string == nil); assert(("a"):upper() == "A")`,
		`rawset(_G, "math", nil); assert(math == nil and rawget(_G, "math") == nil)`,
		`print = nil; assert(print == nil and pairs ~= nil)`,
		`table = {mine = true}; assert(table.mine and table.insert == nil)`,
		`local old = rawget(_G, "io"); assert(old == io and io.write)`,
		// Coroutines share _G and the string metatable.
		`local co = coroutine.create(function() return string.rep("a", 2) .. ("b"):rep(2) end)
		local ok, v = coroutine.resume(co); assert(ok and v == "aabb", tostring(v))`,
		// The sandbox, reached through every path.
		`assert(not pcall(rawget(_G, "os").execute, "id"))`,
		`assert(not pcall(package.loaded.os.execute, "id") and not pcall(package.loaded.io.popen, "id"))`,
		`assert(package.loaded.string == string and package.loaded._G == _G and package.loaded.os == os)`,
		`assert(not pcall(debug.getregistry) and not pcall(package.loadlib, "x", "y"))`,
		`assert(os.getenv ~= nil and not pcall(os.getenv, "HOME"))`,
	} {
		L := lazyVM(t, d)
		doLua(t, L, src)
	}
}

// TestLuaLibsNotShared: every VM has its own libraries; what one script
// changes in string, table, os or the strings' metatable, another does
// not see, whichever opened its libraries first.
func TestLuaLibsNotShared(t *testing.T) {
	d := newHarness(t, config.Dialplan{}, Options{}).dp
	a, b := lazyVM(t, d), lazyVM(t, d)
	doLua(t, a, `
		string.upper = function() return "changed" end
		getmetatable("").__index.lower = function() return "changed" end
		table.insert = nil
		os.time = function() return 0 end
		math.pi = 3`)
	check := `
		assert(string.upper("a") == "A", "string.upper")
		assert(("A"):lower() == "a", "string metatable")
		assert(table.insert, "table.insert")
		assert(os.time() ~= 0, "os.time")
		assert(math.pi > 3.14, "math.pi")`
	doLua(t, b, check)
	doLua(t, lazyVM(t, d), check)
	doLua(t, a, `assert(string.upper("a") == "changed" and ("A"):lower() == "changed" and table.insert == nil)`)
}

// TestLuaLibsSessionGlobals: what RunLua installs (the session's print,
// freeswitch, session, argv) survives the base library opening later.
func TestLuaLibsSessionGlobals(t *testing.T) {
	d := newHarness(t, config.Dialplan{}, Options{}).dp
	L := lazyVM(t, d)
	var got []string
	L.G.Global.RawSetString("print", L.NewFunction(func(L *lua.LState) int {
		got = append(got, L.CheckString(1))
		return 0
	}))
	doLua(t, L, `assert(type(tostring) == "function"); print("mine")`)
	if strings.Join(got, ",") != "mine" {
		t.Fatalf("print after base opened: %q", got)
	}
}

// TestLuaLazyMetatablesShared: the lazy _G and string metatables are one
// pair for every VM (lualibs.go); VMs running at once on different
// goroutines each open their own libraries through them (run with -race),
// and nothing a script does reaches them to change them.
func TestLuaLazyMetatablesShared(t *testing.T) {
	d := newHarness(t, config.Dialplan{}, Options{}).dp
	before := lazyMTEntries()
	scripts := []string{
		`x = 1; assert(("a"):upper() == "A" and getmetatable("").__index == string)`,
		`local mt = getmetatable(_G); assert(mt == nil); rawset(_G, "y", 2); assert(y == 2)`,
		`setmetatable(_G, {__index = function(_, k) return "mine:" .. k end}); assert(nothing == "mine:nothing")`,
		`local s = getmetatable(""); s.__index = {upper = function() return "x" end}; assert(("a"):upper() == "x")`,
		`string = nil; local co = coroutine.wrap(function() return math.max(1, 5) end); assert(co() == 5)`,
		`for k in pairs(_G) do end; assert(getmetatable(_G) == nil and table.concat({1, 2}) == "12")`,
	}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			L := d.newLuaState()
			defer L.Close()
			if err := L.DoString(scripts[i%len(scripts)]); err != nil {
				t.Errorf("script %d: %v", i%len(scripts), err)
			}
			// A later VM sees a fresh _G whatever this one did.
			L2 := d.newLuaState()
			defer L2.Close()
			if err := L2.DoString(`assert(x == nil and y == nil and nothing == nil and ("a"):upper() == "A")`); err != nil {
				t.Errorf("after script %d: %v", i%len(scripts), err)
			}
		})
	}
	wg.Wait()
	if after := lazyMTEntries(); after != before {
		t.Fatalf("shared metatables changed:\n%s\nwas\n%s", after, before)
	}
}

func lazyMTEntries() string {
	// Sorted: a table's string keys live in a Go map, whose order ForEach
	// follows, so two dumps of an unchanged table can differ in order.
	var b strings.Builder
	for _, mt := range []*lua.LTable{luaLazyMTs.global, luaLazyMTs.str} {
		var entries []string
		mt.ForEach(func(k, v lua.LValue) { entries = append(entries, fmt.Sprintf("%v=%p", k, v)) })
		slices.Sort(entries)
		fmt.Fprintf(&b, "%s mt=%v\n", strings.Join(entries, " "), mt.Metatable)
	}
	return b.String()
}

// TestLuaLazyMetatablesNeedTheirContext: a VM whose context was replaced
// gets a clean Lua error from the shared functions, not a crash.
func TestLuaLazyMetatablesNeedTheirContext(t *testing.T) {
	d := newHarness(t, config.Dialplan{}, Options{}).dp
	L := lazyVM(t, d)
	L.SetContext(context.Background())
	err := L.DoString(`return string.upper("a")`)
	if err == nil || !strings.Contains(err.Error(), "lost its libraries") {
		t.Fatalf("got %v", err)
	}
}
