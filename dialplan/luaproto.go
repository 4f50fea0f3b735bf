package dialplan

import (
	"bytes"
	"crypto/sha256"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// luaProtos keeps scripts compiled: every call of the shipped dialplan
// runs the same script, and compiling it per call cost CPU and ~25 KB per
// waiting caller that the VM kept for the whole call (BENCHMARKS.md,
// "Memory per caller"). A compiled FunctionProto is immutable, so one is
// shared by every VM that runs it. The key is where the script came from
// and a hash of its source, so an edited file is compiled anew.
type luaProtos struct {
	mu sync.Mutex
	m  map[luaProtoKey]*lua.FunctionProto
}

type luaProtoKey struct {
	where string
	sum   [sha256.Size]byte
}

// maxLuaProtos bounds the cache: scripts named by calls (originate …
// &lua(x)) or edited many times cannot grow it without limit. Past it the
// cache starts over.
const maxLuaProtos = 64

// compile returns src compiled, from the cache when it is there.
func (c *luaProtos) compile(src []byte, where string) (*lua.FunctionProto, error) {
	k := luaProtoKey{where: where, sum: sha256.Sum256(src)}
	c.mu.Lock()
	p := c.m[k]
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	chunk, err := parse.Parse(bytes.NewReader(src), where)
	if err != nil {
		return nil, &lua.ApiError{Type: lua.ApiErrorSyntax, Object: lua.LString(err.Error()), Cause: err}
	}
	p, err = lua.Compile(chunk, where)
	if err != nil {
		return nil, &lua.ApiError{Type: lua.ApiErrorSyntax, Object: lua.LString(err.Error()), Cause: err}
	}
	noChunkArg(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxLuaProtos {
		c.m = make(map[luaProtoKey]*lua.FunctionProto)
	}
	c.m[k] = p
	return p, nil
}

func (c *luaProtos) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// noChunkArg stops every run of a compiled file from building an "arg"
// table nobody can read. gopher-lua compiles a file as a vararg function
// and, for Lua 5.0's compatibility, gives a vararg function that does not
// use "..." a table of its arguments (arg, with n) in a register; in a
// nested function that register is the local "arg", but the file's own
// function names no local "arg" (Lua 5.1 gives the main chunk none
// either), so its table is built, ~2.5 KB with its map, and never read:
// its register is the chunk's first temporary. Without the flag the
// register is set to nil instead; the layout is the same.
func noChunkArg(p *lua.FunctionProto) {
	p.IsVarArg &^= lua.VarArgNeedsArg
}
