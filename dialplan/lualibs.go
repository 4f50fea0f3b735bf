package dialplan

import (
	"context"

	lua "github.com/yuin/gopher-lua"
)

// Lua standard libraries opened on first use. A caller waiting in a queue
// keeps its script's VM for the whole wait, and building base, string,
// table, math, coroutine, os and io for every VM was ~55 KB of each waiting
// caller's memory, although the shipped callcenter.lua uses none of them
// (BENCHMARKS.md, "Memory per caller waiting on music"). So a VM starts
// with an empty _G whose metatable builds a library group the first time
// one of its names is read or assigned, and then steps aside for that
// group: the names become plain fields of _G.
//
// A script cannot tell the difference:
//   - reading or assigning a library name opens its group first, so
//     `string = nil` or `print = myprint` works on the real entry;
//   - everything that could see the missing fields or the metatable —
//     pairs(_G), next(_G), rawget(_G, k), getmetatable(_G),
//     setmetatable(_G, mt) — opens every group first and removes the
//     metatable (a script's own _G metatable, e.g. a strict mode, is then
//     the only one); rawset(_G, name, v) opens name's group first;
//   - strings' methods ("x"):upper() open the string library through a
//     stand-in string metatable, and getmetatable/setmetatable on a string
//     open it first, so getmetatable("").__index == string as before.
//
// Each VM still gets its own copy of every library it opens: nothing is
// shared between VMs, so a script that changes string.format or
// table.insert changes them for itself only. The sandbox is the same as
// when everything was opened up front (luasandbox.go builds each group).

// luaGroup is a set of globals opened together.
type luaGroup uint8

const (
	luaBase luaGroup = iota // the base functions, _G, _VERSION, …
	luaString
	luaTable
	luaMath
	luaCoroutine
	luaOs
	luaIo
	luaDebug
	luaPackage // package.loaded names every library: opening it opens all
	luaGroups
)

// luaGroupOf tells which group defines a global name.
var luaGroupOf = func() map[string]luaGroup {
	m := map[string]luaGroup{
		lua.StringLibName:    luaString,
		lua.TabLibName:       luaTable,
		lua.MathLibName:      luaMath,
		lua.CoroutineLibName: luaCoroutine,
		lua.OsLibName:        luaOs,
		lua.IoLibName:        luaIo,
		"debug":              luaDebug,
		"package":            luaPackage,
	}
	// The base names are whatever this gopher-lua's OpenBase defines
	// (module, require, _printregs … among them, which the sandbox
	// replaces or removes).
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	openLib(L, lua.OpenBase, lua.BaseLibName)
	L.G.Global.ForEach(func(k, _ lua.LValue) {
		if s, ok := k.(lua.LString); ok {
			m[string(s)] = luaBase
		}
	})
	return m
}()

// luaGroupNames lists the globals of each group.
var luaGroupNames = func() [luaGroups][]string {
	var n [luaGroups][]string
	for name, g := range luaGroupOf {
		n[g] = append(n[g], name)
	}
	return n
}()

// openLib runs a gopher-lua library opener as Lua's luaL_openlibs does.
func openLib(L *lua.LState, open lua.LGFunction, name string) {
	L.Push(L.NewFunction(open))
	L.Push(lua.LString(name))
	L.Call(1, 0)
}

// luaLibs is one VM's record of which groups are open.
type luaLibs struct {
	d       *Dialplan
	opened  [luaGroups]bool
	pending int // groups not opened yet
	// os and io as scripts see them, for package.loaded.
	os, io *lua.LTable
	// wrapped are the base functions replaced by observers while groups
	// are pending; the originals go back once all are open.
	wrapped []luaWrapped
}

type luaWrapped struct {
	name          string
	wrapper, orig *lua.LFunction
}

// installLazyLibs gives L an empty _G that opens the sandbox's libraries
// on first use.
func (d *Dialplan) installLazyLibs(L *lua.LState) *luaLibs {
	z := &luaLibs{d: d, pending: int(luaGroups)}
	L.SetContext(luaVMContext{context.Background(), z})
	L.SetMetatable(lua.LString(""), luaLazyMTs.str)
	L.SetMetatable(L.G.Global, luaLazyMTs.global)
	return z
}

// luaLazyMTs are _G's metatable while groups are pending and the strings'
// stand-in metatable until string opens. Every VM uses the same two
// tables and functions (each VM's own were ~1.6 KB, kept by every waiting
// caller): the functions find the VM's luaLibs in its context
// (luaVMContext), and no script can reach either table to change it or
// its functions — everything that could see them (getmetatable, pairs,
// rawget … on _G or a string) opens what they stand for first, which
// removes them (observe). They are only read after they are made, so VMs
// on different goroutines share them safely.
var luaLazyMTs struct{ global, str *lua.LTable }

func init() {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	m := &luaLazyMTs
	m.global = L.CreateTable(0, 2)
	m.global.RawSetString("__index", L.NewFunction(luaLazyIndex))
	m.global.RawSetString("__newindex", L.NewFunction(luaLazyNewIndex))
	m.str = L.CreateTable(0, 1)
	m.str.RawSetString("__index", L.NewFunction(luaLazyStringIndex))
}

// luaVMContext is a VM's base context: the VM's luaLibs for the shared
// metatables' functions. Contexts made from it (the run's, a coroutine's)
// find the same.
type luaVMContext struct {
	context.Context
	z *luaLibs
}

type luaLibsKey struct{}

func (c luaVMContext) Value(k any) any {
	if k == (luaLibsKey{}) {
		return c.z
	}
	return c.Context.Value(k)
}

// libsOf returns L's luaLibs, nil if its context has none (a context
// replaced by something not made from newLuaState's).
func libsOf(L *lua.LState) *luaLibs {
	if ctx := L.Context(); ctx != nil {
		z, _ := ctx.Value(luaLibsKey{}).(*luaLibs)
		return z
	}
	return nil
}

// The shared functions; a VM whose context is not made from newLuaState's
// has no luaLibs to open, which is a clean Lua error (never the case in
// ccpbx: every VM comes from newLuaState).
func luaLazyIndex(L *lua.LState) int { return mustLibs(L).index(L) }

func luaLazyNewIndex(L *lua.LState) int { return mustLibs(L).newIndex(L) }

func luaLazyStringIndex(L *lua.LState) int { return mustLibs(L).stringIndex(L) }

func mustLibs(L *lua.LState) *luaLibs {
	z := libsOf(L)
	if z == nil {
		L.RaiseError("lua: the VM's context lost its libraries")
	}
	return z
}

// index is _G's __index: a library name opens its group.
func (z *luaLibs) index(L *lua.LState) int {
	t := L.CheckTable(1)
	k := L.Get(2)
	if s, ok := k.(lua.LString); ok {
		if g, ok := luaGroupOf[string(s)]; ok {
			z.open(L, g)
		}
	}
	L.Push(t.RawGet(k))
	return 1
}

// newIndex is _G's __newindex: assigning a library name opens its group
// first, so the assignment replaces the library's entry and is not undone
// when the group opens later.
func (z *luaLibs) newIndex(L *lua.LState) int {
	t := L.CheckTable(1)
	k, v := L.Get(2), L.Get(3)
	z.openName(L, k)
	L.RawSet(t, k, v)
	return 0
}

func (z *luaLibs) openName(L *lua.LState, k lua.LValue) {
	if s, ok := k.(lua.LString); ok {
		if g, ok := luaGroupOf[string(s)]; ok {
			z.open(L, g)
		}
	}
}

// stringIndex is the strings' stand-in __index: ("x"):upper() opens the
// string library, which becomes the strings' metatable, and looks again.
func (z *luaLibs) stringIndex(L *lua.LState) int {
	z.open(L, luaString)
	if L.GetMetatable(lua.LString("")) == luaLazyMTs.str {
		L.Push(lua.LNil) // the opener did not take over; never loop
		return 1
	}
	L.Push(L.GetTable(L.Get(1), L.Get(2)))
	return 1
}

// open builds group g in L unless it is open already.
func (z *luaLibs) open(L *lua.LState, g luaGroup) {
	if z.opened[g] {
		return
	}
	z.opened[g] = true
	z.pending--
	glob := L.G.Global
	// The openers set globals with the ordinary Lua API; without the
	// metatable those are plain sets. What ccpbx installed in _G before
	// (the session's print) stays as it was.
	L.SetMetatable(glob, lua.LNil)
	var kept []lua.LValue
	for _, name := range luaGroupNames[g] {
		kept = append(kept, glob.RawGetString(name))
	}
	z.build(L, g)
	for i, name := range luaGroupNames[g] {
		if kept[i] != lua.LNil {
			glob.RawSetString(name, kept[i])
		}
	}
	if z.pending > 0 {
		L.SetMetatable(glob, luaLazyMTs.global)
		return
	}
	for _, w := range z.wrapped {
		if glob.RawGetString(w.name) == w.wrapper {
			glob.RawSetString(w.name, w.orig)
		}
	}
	z.wrapped = nil
}

// openAll opens every group: something is about to look at _G as a whole.
func (z *luaLibs) openAll(L *lua.LState) {
	for g := range luaGroups {
		z.open(L, g)
	}
}

// observe wraps the base functions that can see _G's missing fields, its
// metatable or the strings' metatable, so that they open what they would
// see first.
func (z *luaLibs) observe(L *lua.LState) {
	glob := L.G.Global
	isG := func(L *lua.LState) bool { return z.pending > 0 && L.Get(1) == lua.LValue(glob) }
	whole := func(L *lua.LState) {
		if isG(L) {
			z.openAll(L)
		}
	}
	meta := func(L *lua.LState) {
		whole(L)
		if L.Get(1).Type() == lua.LTString {
			z.open(L, luaString)
		}
	}
	for _, o := range []struct {
		name  string
		check func(*lua.LState)
	}{
		{"pairs", whole}, {"next", whole}, {"rawget", whole},
		{"getmetatable", meta}, {"setmetatable", meta},
		{"rawset", func(L *lua.LState) {
			if isG(L) {
				z.openName(L, L.Get(2))
			}
		}},
	} {
		orig, ok := glob.RawGetString(o.name).(*lua.LFunction)
		if !ok || !orig.IsG {
			continue
		}
		check, call := o.check, orig.GFunction
		w := L.NewFunction(func(L *lua.LState) int {
			check(L)
			return call(L)
		})
		w.Upvalues = orig.Upvalues // pairs keeps its iterator there
		glob.RawSetString(o.name, w)
		z.wrapped = append(z.wrapped, luaWrapped{o.name, w, orig})
	}
}
