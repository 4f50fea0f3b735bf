package dialplan

import (
	"bytes"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// The Lua sandbox. FreeSWITCH's mod_lua gives scripts the whole standard
// library, so anyone who can name a script (originate … &lua(/tmp/x.lua))
// can run shell commands as the switch's user. ccpbx gives scripts what
// call-handling scripts use and nothing that reaches outside the process:
//
//   - base (without the file loaders), string, table, math, coroutine;
//   - os: clock, date, difftime, time;
//   - io: open and lines only for files inside scripts_dir and
//     core.allowed_roots; type; write (to the process's stdout);
//   - dofile, loadfile and require: Lua files inside the same folders
//     (require "a.b" reads a/b.lua under scripts_dir, or the embedded copy);
//   - no os.execute, os.exit, os.getenv, os.remove, os.rename, io.popen,
//     io.read, io.input/output, package.loadlib, debug: calling one raises
//     a Lua error that names it, so the script fails cleanly and the
//     reason is in the log.
//
// gopher-lua has no C modules, so require can only ever load Lua source.

// luaDenied are the library functions a script may not call.
var luaDenied = map[string][]string{
	lua.OsLibName: {"execute", "exit", "getenv", "setenv", "remove", "rename", "tmpname", "setlocale"},
	lua.IoLibName: {"popen", "tmpfile", "read", "input", "output", "close", "flush"},
	"package":     {"loadlib", "seeall"},
	"debug":       {"debug", "getinfo", "getlocal", "getregistry", "getupvalue", "sethook", "setlocal", "setupvalue", "traceback"},
}

// luaOptions size a VM for a script that lives as long as its call (a
// caller waiting in a queue keeps its script's VM for minutes). gopher-lua's
// defaults allocate the whole data stack (5,120 slots, 80 KB) and call
// stack (256 frames) up front, which made the VM most of a waiting caller's
// memory (BENCHMARKS.md, "Memory per caller"). Both now start small and
// grow on demand up to the same limits as before, so a script can do
// exactly what it could.
var luaOptions = lua.Options{
	SkipOpenLibs:        true,
	RegistrySize:        128, // the least gopher-lua takes
	RegistryMaxSize:     lua.RegistrySize,
	RegistryGrowStep:    128,
	CallStackSize:       lua.CallStackSize,
	MinimizeStackMemory: true,
}

// build opens library group g in L as the sandbox allows it, with _G's
// metatable out of the way.
func (z *luaLibs) build(L *lua.LState, g luaGroup) {
	glob := L.G.Global
	switch g {
	case luaBase:
		openLib(L, lua.OpenBase, lua.BaseLibName)
		for _, fn := range []string{"module", "_printregs"} {
			glob.RawSetString(fn, lua.LNil)
		}
		glob.RawSetString("dofile", L.NewFunction(z.d.luaDoFile))
		glob.RawSetString("loadfile", L.NewFunction(z.d.luaLoadFile))
		glob.RawSetString("require", L.NewFunction(z.d.luaRequire))
		z.observe(L)
	case luaString:
		openLib(L, lua.OpenString, lua.StringLibName)
	case luaTable:
		openLib(L, lua.OpenTable, lua.TabLibName)
	case luaMath:
		openLib(L, lua.OpenMath, lua.MathLibName)
	case luaCoroutine:
		openLib(L, lua.OpenCoroutine, lua.CoroutineLibName)
	case luaOs:
		openLib(L, lua.OpenOs, lua.OsLibName)
		full, _ := glob.RawGetString(lua.OsLibName).(*lua.LTable)
		z.os = L.CreateTable(0, 4+len(luaDenied[lua.OsLibName]))
		for _, fn := range []string{"clock", "date", "difftime", "time"} {
			z.os.RawSetString(fn, full.RawGetString(fn))
		}
		z.restricted(L, lua.OsLibName, z.os)
	case luaIo:
		openLib(L, lua.OpenIo, lua.IoLibName)
		full, _ := glob.RawGetString(lua.IoLibName).(*lua.LTable)
		z.io = L.CreateTable(0, 4+len(luaDenied[lua.IoLibName]))
		for _, fn := range []string{"type", "write"} {
			z.io.RawSetString(fn, full.RawGetString(fn))
		}
		z.io.RawSetString("open", z.d.confinedPath(L, "io.open", full.RawGetString("open")))
		z.io.RawSetString("lines", z.d.confinedPath(L, "io.lines", full.RawGetString("lines")))
		z.restricted(L, lua.IoLibName, z.io)
	case luaDebug:
		z.restricted(L, "debug", L.CreateTable(0, len(luaDenied["debug"])))
	case luaPackage:
		// package.loaded is a fresh table, not the registry's, so nothing
		// reachable from a script still holds the full os and io
		// libraries. It holds every library as opened, so all open now.
		z.openAll(L)
		L.SetMetatable(glob, lua.LNil) // openAll put it back
		reg := L.Get(lua.RegistryIndex).(*lua.LTable)
		old, _ := reg.RawGetString("_LOADED").(*lua.LTable)
		loaded := L.CreateTable(0, 8)
		for _, name := range []string{lua.TabLibName, lua.StringLibName, lua.MathLibName, lua.CoroutineLibName} {
			loaded.RawSetString(name, old.RawGetString(name))
		}
		loaded.RawSetString("_G", glob)
		loaded.RawSetString(lua.OsLibName, z.os)
		loaded.RawSetString(lua.IoLibName, z.io)
		pkg := L.CreateTable(0, 1+len(luaDenied["package"]))
		loaded.RawSetString("package", pkg)
		pkg.RawSetString("loaded", loaded)
		z.restricted(L, "package", pkg)
	}
}

// restricted adds the refusing stand-ins of lib's denied functions to t
// and makes t the library, for scripts (_G) and for gopher-lua (the
// registry's _LOADED, so nothing reachable holds the full library).
func (z *luaLibs) restricted(L *lua.LState, lib string, t *lua.LTable) {
	for _, fn := range luaDenied[lib] {
		t.RawSetString(fn, L.NewFunction(luaDeniedFunc(lib+"."+fn)))
	}
	L.G.Global.RawSetString(lib, t)
	reg := L.Get(lua.RegistryIndex).(*lua.LTable)
	if old, ok := reg.RawGetString("_LOADED").(*lua.LTable); ok && old.RawGetString(lib) != lua.LNil {
		old.RawSetString(lib, t)
	}
}

func luaDeniedFunc(name string) lua.LGFunction {
	return func(L *lua.LState) int {
		L.RaiseError("%s is not available: ccpbx runs Lua scripts without shell, environment or file access outside scripts_dir (see README, Security)", name)
		return 0
	}
}

// confinedPath wraps a library function whose first argument is a file
// name so that the name must stay inside the script folders. io.lines()
// without a name (stdin) is refused.
func (d *Dialplan) confinedPath(L *lua.LState, what string, orig lua.LValue) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		if L.GetTop() == 0 {
			L.RaiseError("%s needs a file name", what)
		}
		p, err := d.scriptDirs.Check(L.CheckString(1))
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(fmt.Sprintf("%s: %v", what, err)))
			return 2
		}
		args := []lua.LValue{lua.LString(p)}
		for i := 2; i <= L.GetTop(); i++ {
			args = append(args, L.Get(i))
		}
		top := L.GetTop()
		L.Push(orig)
		for _, a := range args {
			L.Push(a)
		}
		L.Call(len(args), lua.MultRet)
		return L.GetTop() - top
	})
}

// loadChunk reads and compiles a Lua file from the script folders.
func (d *Dialplan) loadChunk(L *lua.LState, name string) (*lua.LFunction, error) {
	src, where, err := d.loadScript(name)
	if err != nil {
		return nil, err
	}
	fn, err := L.Load(bytes.NewReader(src), where)
	if err == nil {
		noChunkArg(fn.Proto)
	}
	return fn, err
}

func (d *Dialplan) luaLoadFile(L *lua.LState) int {
	fn, err := d.loadChunk(L, L.CheckString(1))
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(fn)
	return 1
}

func (d *Dialplan) luaDoFile(L *lua.LState) int {
	fn, err := d.loadChunk(L, L.CheckString(1))
	if err != nil {
		L.RaiseError("dofile: %v", err)
	}
	top := L.GetTop()
	L.Push(fn)
	L.Call(0, lua.MultRet)
	return L.GetTop() - top
}

// luaRequire loads module "a.b" from a/b.lua in the script folders once per
// script run, as Lua's require does with package.path "?.lua".
func (d *Dialplan) luaRequire(L *lua.LState) int {
	name := L.CheckString(1)
	pkg, _ := L.GetGlobal("package").(*lua.LTable)
	var loaded *lua.LTable
	if pkg != nil {
		loaded, _ = pkg.RawGetString("loaded").(*lua.LTable)
	}
	if loaded == nil {
		loaded = L.NewTable()
	}
	if v := loaded.RawGetString(name); v != lua.LNil {
		L.Push(v)
		return 1
	}
	fn, err := d.loadChunk(L, strings.ReplaceAll(name, ".", "/")+".lua")
	if err != nil {
		L.RaiseError("module %q not found: %v", name, err)
	}
	L.Push(fn)
	L.Push(lua.LString(name))
	L.Call(1, 1)
	v := L.Get(-1)
	L.Pop(1)
	if v == lua.LNil {
		v = lua.LTrue
	}
	loaded.RawSetString(name, v)
	L.Push(v)
	return 1
}
