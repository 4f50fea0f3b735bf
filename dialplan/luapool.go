package dialplan

import (
	"reflect"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Lua VMs are reused. Every call of the shipped dialplan runs a script,
// and making its VM was most of what the script allocated: gopher-lua's
// NewState builds a _G and a registry with room for 64 and 32 names (~7
// KB of maps, replaced at once by newLuaState's small tables), its data
// stack (128 slots, 2 KB), call stack and number allocator — ~12 of the
// ~20 KB a call of callcenter.lua allocated. A VM whose script finished
// without error goes back to luaIdleVMs and the next script gets it with
// a new, empty _G, registry and library record (a script never sees
// anything of the previous one: TestLuaVMReuseLeaksNothing). A VM that
// failed, was stopped or panicked, or whose stacks grew past their
// starting size (deep recursion, a large function) is closed instead, so
// an idle VM is always a small one; the pool empties itself as the
// garbage collector runs, so an idle PBX keeps none.
var luaIdleVMs sync.Pool

// luaNoGlobals stands in for an idle VM's _G and registry, so that it
// holds nothing of the script that ran in it. Nothing writes to it: an
// idle VM runs nothing.
var luaNoGlobals = &lua.LTable{Metatable: lua.LNil}

// newLuaState returns a sandboxed VM, reused when one is idle. Its
// libraries open on first use (lualibs.go); build makes each.
func (d *Dialplan) newLuaState() *lua.LState {
	L, _ := luaIdleVMs.Get().(*lua.LState)
	if L == nil {
		L = lua.NewState(luaOptions)
	}
	// gopher-lua makes _G with room for 64 names and the registry for 32
	// (~3 KB of maps); a call script defines a few. Both grow on demand.
	L.G.Global = L.CreateTable(0, 8)
	L.Env = L.G.Global
	L.G.Registry = L.CreateTable(0, 4)
	d.installLazyLibs(L)
	return L
}

// releaseLuaState ends a VM's use: it is kept for the next script if its
// script ran to the end (ok) and it is as small as a new one, else closed.
func releaseLuaState(L *lua.LState, ok bool) {
	if !ok || !luaVMReusable(L) {
		L.Close()
		return
	}
	L.RemoveContext()
	L.SetMetatable(lua.LString(""), lua.LNil)
	L.G.Global, L.G.Registry, L.Env = luaNoGlobals, luaNoGlobals, luaNoGlobals
	L.G.CurrentThread = L.G.MainThread
	luaIdleVMs.Put(L)
}

// luaVMReusable tells whether L is back where a new VM starts: not dead,
// nothing on its stacks, no open upvalue, its data stack at its first size.
// gopher-lua exports none of these but the top and Dead; the rest is read
// (never written) with reflect, and a field that is not where it was in
// the version this was written for (v1.1.2) means "not reusable", never a
// wrong answer: TestLuaVMReuse fails if reuse stops happening.
func luaVMReusable(L *lua.LState) bool {
	if L.Dead || L.GetTop() != 0 || L.IsClosed() || L.G.MainThread != L && L.G.MainThread != nil {
		return false
	}
	v := reflect.ValueOf(L).Elem()
	for _, f := range []string{"currentFrame", "uvcache", "Parent"} {
		fv := v.FieldByName(f)
		if fv.Kind() != reflect.Pointer || !fv.IsNil() {
			return false
		}
	}
	reg := v.FieldByName("reg")
	if reg.Kind() != reflect.Pointer || reg.IsNil() {
		return false
	}
	arr := reg.Elem().FieldByName("array")
	return arr.Kind() == reflect.Slice && arr.Cap() <= luaOptions.RegistrySize
}
