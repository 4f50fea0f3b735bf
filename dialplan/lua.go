package dialplan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"ccpbx/call"
)

// luaGrace is how long a script may go on after its channel hung up (to log
// or clean up, as FreeSWITCH scripts do once session:ready() is false)
// before it is stopped.
const luaGrace = 10 * time.Second

// appLua runs "script [args…]" (relative names resolve under ScriptsDir)
// with FreeSWITCH's Lua API: the session object, freeswitch.consoleLog,
// freeswitch.API():execute and argv. Script errors are returned (and so
// logged); they never end the process.
//
// As in mod_lua, the script name runs to the first blank and the arguments
// are split with call.Separate, up to 128 of them: 'single quotes' group,
// double quotes and tabs are ordinary characters.
func (d *Dialplan) appLua(ctx context.Context, ch *call.Channel, data string) error {
	name, rest, _ := strings.Cut(strings.TrimLeft(data, " "), " ")
	if name == "" {
		return errors.New("lua: no script")
	}
	return d.RunLua(ctx, ch, name, call.Separate(rest, ' ', luaMaxArgs))
}

// luaMaxArgs is mod_lua's limit on script arguments; the last one keeps
// the rest of the line.
const luaMaxArgs = 128

// RunLua runs the script at name (relative to ScriptsDir) for ch (nil runs
// it without a session, like FreeSWITCH's luarun) with argv[1..] = args.
//
// A queued caller's goroutine stays parked under this frame for the whole
// wait (session:execute("callcenter", …)), so the set-up and the clean-up
// are in luaStart and luaRun's methods and this frame holds little: the
// runtime keeps a parked stack at twice what it uses, at least.
func (d *Dialplan) RunLua(ctx context.Context, ch *call.Channel, name string, args []string) (err error) {
	r, err := d.luaStart(ctx, ch, name, args)
	if err != nil {
		return err
	}
	defer r.end(&err)
	if err := r.load(); err != nil {
		return err
	}
	if err := r.L.PCall(0, lua.MultRet, nil); err != nil {
		return r.wrap(err)
	}
	return nil
}

// luaRun is one running script.
type luaRun struct {
	L      *lua.LState
	name   string
	src    []byte
	where  string
	d      *Dialplan
	cancel context.CancelFunc
	stop   func() bool
}

// luaStart reads the script and makes its VM with the session installed.
//
//go:noinline
func (d *Dialplan) luaStart(ctx context.Context, ch *call.Channel, name string, args []string) (*luaRun, error) {
	src, where, err := d.loadScript(name)
	if err != nil {
		return nil, fmt.Errorf("lua %s: %w", name, err)
	}
	r := &luaRun{L: d.newLuaState(), name: name, src: src, where: where, d: d}

	// The VM stops luaGrace after the channel is gone, so a script that
	// loops forever cannot outlive its call by much.
	// Made from the VM's own context, which the shared metatables'
	// functions read (lualibs.go).
	lctx, cancel := context.WithCancel(r.L.Context())
	r.cancel = cancel
	if ch != nil {
		// No goroutine waits for the hangup (one per queued caller adds
		// up): the channel's context runs the grace timer when it ends.
		// A timer that fires after the script returned cancels nothing
		// that is still in use.
		r.stop = context.AfterFunc(ch.Context(), func() { time.AfterFunc(d.luaGrace, cancel) })
	}
	r.L.SetContext(lctx)

	log := d.log
	if ch != nil {
		log = ch.Log()
	}
	s := &luaSession{d: d, ctx: ctx, ch: ch, log: log, script: name}
	s.install(r.L, name, args)
	return r, nil
}

// load compiles the script (once per source, luaproto.go) and pushes it.
//
//go:noinline
func (r *luaRun) load() error {
	proto, err := r.d.protos.compile(r.src, r.where)
	if err != nil {
		return r.wrap(err)
	}
	r.src = nil
	r.L.Push(r.L.NewFunctionFromProto(proto))
	return nil
}

//go:noinline
func (r *luaRun) wrap(err error) error {
	return fmt.Errorf("lua %s: %w", r.name, err)
}

// end turns a panic into *err and releases the VM: kept for the next
// script if this one ran to the end (luapool.go), else closed.
func (r *luaRun) end(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("lua %s: panic: %v", r.name, p)
	}
	if r.stop != nil {
		r.stop()
	}
	r.cancel()
	releaseLuaState(r.L, *err == nil)
}

// loadScript reads a script from the script folders (ScriptsDir, then
// AllowedRoots by absolute path; ".." and other absolute paths are refused):
// from disk first (so an edited copy wins), then a name in ScriptsDir from
// ScriptsFS. It returns the source and where it came from.
func (d *Dialplan) loadScript(name string) ([]byte, string, error) {
	dir, rel, err := d.scriptDirs.Resolve(name)
	if err != nil {
		return nil, name, fmt.Errorf("refused: %w: scripts must be inside scripts_dir or core.allowed_roots", err)
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	b, err := d.scriptDirs.ReadFile(name)
	if err == nil || d.scriptFS == nil || !errors.Is(err, fs.ErrNotExist) || dir != d.scriptDirs.Dirs()[0] {
		return b, p, err
	}
	clean := path.Clean("/" + rel)[1:]
	for _, p := range []string{path.Join("scripts", clean), clean} {
		if b, ferr := fs.ReadFile(d.scriptFS, p); ferr == nil {
			return b, "(embedded)/" + p, nil
		}
	}
	return nil, p, err
}

// luaSession is what the script's session and freeswitch objects act on.
type luaSession struct {
	d   *Dialplan
	ctx context.Context
	ch  *call.Channel
	// log is the channel's logger; every line adds "script". Not a
	// log.With("script", …): that clones the handler, kept for the call.
	log    *slog.Logger
	script string
	// made are the session object's methods made so far (method).
	made []*lua.LFunction
}

// install sets the session's globals. They are set raw: going through
// _G's metatable would open the base library for "print" (lualibs.go).
func (s *luaSession) install(L *lua.LState, name string, args []string) {
	glob := L.G.Global
	// Tables are made to size: NewTable's 32+32 slots are ~2.5 KB each,
	// kept for the whole call.
	fs := L.CreateTable(0, 4)
	L.SetFuncs(fs, map[string]lua.LGFunction{
		"consoleLog":        s.consoleLog,
		"API":               s.newAPI,
		"getGlobalVariable": s.getGlobal,
		"msleep":            s.msleep,
	})
	glob.RawSetString("freeswitch", fs)
	glob.RawSetString("print", L.NewFunction(s.print))

	argv := L.CreateTable(len(args), 1)
	argv.RawSetInt(0, lua.LString(name))
	for i, a := range args {
		argv.RawSetInt(i+1, lua.LString(a))
	}
	glob.RawSetString("argv", argv)

	if s.ch == nil {
		return
	}
	// The methods are made when a script first names them (a waiting
	// caller's script uses two or three of the sixteen), and kept, so
	// session.execute is the same function each time.
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__index", L.NewFunction(s.method))
	ud := L.NewUserData()
	ud.Value = s
	L.SetMetatable(ud, mt)
	glob.RawSetString("session", ud)
}

// luaSessionMethods are the session object's methods (session:name(…)),
// indexed by luaSessionMethodIndex.
var luaSessionMethods = []struct {
	name string
	fn   func(*luaSession, *lua.LState) int
}{
	{"getVariable", (*luaSession).getVariable},
	{"setVariable", (*luaSession).setVariable},
	{"execute", (*luaSession).execute},
	{"answer", (*luaSession).answer},
	{"preAnswer", (*luaSession).preAnswer},
	{"hangup", (*luaSession).hangup},
	{"ready", (*luaSession).ready},
	{"answered", (*luaSession).answered},
	{"streamFile", (*luaSession).streamFile},
	{"sleep", (*luaSession).sleep},
	{"getDigits", (*luaSession).getDigits},
	{"hangupCause", (*luaSession).hangupCause},
	{"get_uuid", (*luaSession).uuid},
	{"getUUID", (*luaSession).uuid},
	{"consoleLog", (*luaSession).sessionLog},
	{"transfer", (*luaSession).transfer},
}

var luaSessionMethodIndex = func() map[string]int {
	m := make(map[string]int, len(luaSessionMethods))
	for i, sm := range luaSessionMethods {
		m[sm.name] = i
	}
	return m
}()

// method is the session object's __index: it returns the named method,
// made on first use and kept in s.made (a slice, not a Lua table: a
// table with string keys is two Go maps, kept for the whole call).
func (s *luaSession) method(L *lua.LState) int {
	name, ok := L.Get(2).(lua.LString)
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	i, ok := luaSessionMethodIndex[string(name)]
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	if s.made == nil {
		s.made = make([]*lua.LFunction, len(luaSessionMethods))
	}
	if s.made[i] == nil {
		m := luaSessionMethods[i].fn
		s.made[i] = L.NewFunction(func(L *lua.LState) int { return m(s, L) })
	}
	L.Push(s.made[i])
	return 1
}

// self checks that a method was called with ':' on the session object.
func self(L *lua.LState) {
	ud := L.CheckUserData(1)
	if _, ok := ud.Value.(*luaSession); !ok {
		L.ArgError(1, "session expected (call it as session:method())")
	}
}

// logv logs msg with the script's name first, as log.With would, and the
// caller's source position, as a call of s.log's methods there would.
func (s *luaSession) logv(ctx context.Context, level slog.Level, msg string, args ...any) {
	if !s.log.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(2, pcs[:])
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.Add("script", s.script)
	r.Add(args...)
	_ = s.log.Handler().Handle(ctx, r)
}

func (s *luaSession) logAt(level, msg string) {
	l, ok := parseLevel(level)
	if !ok {
		l = slog.LevelInfo
	}
	s.logv(s.ctx, l, strings.TrimRight(msg, "\r\n"), "source", "lua")
}

func (s *luaSession) consoleLog(L *lua.LState) int {
	s.logAt(L.OptString(1, "INFO"), L.OptString(2, ""))
	return 0
}

func (s *luaSession) sessionLog(L *lua.LState) int {
	self(L)
	s.logAt(L.OptString(2, "INFO"), L.OptString(3, ""))
	return 0
}

func (s *luaSession) print(L *lua.LState) int {
	parts := make([]string, 0, L.GetTop())
	for i := 1; i <= L.GetTop(); i++ {
		parts = append(parts, L.ToStringMeta(L.Get(i)).String())
	}
	s.logAt("INFO", strings.Join(parts, "\t"))
	return 0
}

// newAPI returns the freeswitch.API() object: execute(cmd, args) and
// executeString("cmd args") run API commands and return their reply.
func (s *luaSession) newAPI(L *lua.LState) int {
	api := L.CreateTable(0, 3)
	run := func(line string) string {
		return s.d.core.API(s.ctx, line, nil)
	}
	L.SetFuncs(api, map[string]lua.LGFunction{
		"execute": func(L *lua.LState) int {
			cmd := L.CheckString(2)
			args := L.OptString(3, "")
			L.Push(lua.LString(run(strings.TrimSpace(cmd + " " + args))))
			return 1
		},
		"executeString": func(L *lua.LState) int {
			L.Push(lua.LString(run(L.CheckString(2))))
			return 1
		},
		"getTime": func(L *lua.LState) int {
			L.Push(lua.LNumber(s.d.core.Now().UnixMilli()))
			return 1
		},
	})
	L.Push(api)
	return 1
}

func (s *luaSession) getGlobal(L *lua.LState) int {
	if v, ok := globalVar(s.d.core, L.CheckString(1)); ok {
		L.Push(lua.LString(v))
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

func (s *luaSession) msleep(L *lua.LState) int {
	ms := L.CheckInt(1)
	ctx := L.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	_ = sleep(ctx, time.Duration(ms)*time.Millisecond)
	return 0
}

func (s *luaSession) getVariable(L *lua.LState) int {
	self(L)
	if v, ok := s.ch.LookupVar(L.CheckString(2)); ok {
		L.Push(lua.LString(v))
	} else {
		L.Push(lua.LNil)
	}
	return 1
}

func (s *luaSession) setVariable(L *lua.LState) int {
	self(L)
	name := L.CheckString(2)
	v := L.Get(3)
	if v == lua.LNil {
		s.ch.SetVar(name, "")
	} else {
		s.ch.SetVar(name, L.ToStringMeta(v).String())
	}
	return 0
}

// execute runs a dialplan application in the script's goroutine (the
// channel's), expanding ${…} in data first as FreeSWITCH does. An unknown
// application hangs the channel up, as in FreeSWITCH.
func (s *luaSession) execute(L *lua.LState) int {
	// The frames of a caller waiting in the callcenter app stay parked
	// under this one: the work around the application is in helpers.
	app, data, ok := s.executeArgs(L)
	if !ok {
		return 0
	}
	if err := s.d.core.Execute(s.ctx, s.ch, app, data); err != nil {
		s.executeFailed(app, data, err)
	}
	return 0
}

// executeArgs reads session:execute's arguments; !ok means the
// application is not run.
//
//go:noinline
func (s *luaSession) executeArgs(L *lua.LState) (app, data string, ok bool) {
	self(L)
	app = L.CheckString(2)
	if !s.ch.Ready() && !zombieApps[strings.ToLower(app)] {
		s.logv(context.Background(), slog.LevelDebug, "lua: channel is hung up; application not run", "app", app)
		return "", "", false
	}
	return app, Expand(s.ctx, s.d.core, s.ch, L.OptString(3, "")), true
}

//go:noinline
func (s *luaSession) executeFailed(app, data string, err error) {
	switch {
	case errors.Is(err, call.ErrNoApp):
		s.logv(context.Background(), slog.LevelError, "lua: invalid application", "app", app)
		s.ch.Hangup(call.DestinationOutOfOrder)
	default:
		s.logv(s.ctx, failureLevel(err), "lua: application failed", "app", app, "data", data, "err", err)
	}
}

// zombieApps may still run on a hung-up channel (FreeSWITCH's
// SAF_ZOMBIE_EXEC): they only touch variables or the log.
var zombieApps = map[string]bool{"set": true, "unset": true, "export": true, "log": true}

func (s *luaSession) answer(L *lua.LState) int {
	self(L)
	if err := s.ch.Answer(); err != nil {
		s.logv(context.Background(), slog.LevelDebug, "lua: answer", "err", err)
	}
	return 0
}

func (s *luaSession) preAnswer(L *lua.LState) int {
	self(L)
	if err := s.ch.PreAnswer(); err != nil {
		s.logv(context.Background(), slog.LevelDebug, "lua: pre-answer", "err", err)
	}
	return 0
}

func (s *luaSession) hangup(L *lua.LState) int {
	self(L)
	cause, _ := call.ParseCause(L.OptString(2, "NORMAL_CLEARING"))
	s.ch.Hangup(cause)
	return 0
}

func (s *luaSession) ready(L *lua.LState) int {
	self(L)
	L.Push(lua.LBool(s.ch.Ready()))
	return 1
}

func (s *luaSession) answered(L *lua.LState) int {
	self(L)
	L.Push(lua.LBool(s.ch.Answered()))
	return 1
}

func (s *luaSession) streamFile(L *lua.LState) int {
	self(L)
	path := Expand(s.ctx, s.d.core, s.ch, L.CheckString(2))
	if err := play(s.ctx, s.ch, path); err != nil {
		s.logv(s.ctx, failureLevel(err), "lua: streamFile", "err", err)
	}
	return 0
}

func (s *luaSession) sleep(L *lua.LState) int {
	self(L)
	_ = sleep(s.ctx, time.Duration(L.CheckInt(2))*time.Millisecond)
	return 0
}

func (s *luaSession) hangupCause(L *lua.LState) int {
	self(L)
	L.Push(lua.LString(string(s.ch.Cause())))
	return 1
}

func (s *luaSession) uuid(L *lua.LState) int {
	self(L)
	L.Push(lua.LString(s.ch.UUID()))
	return 1
}

func (s *luaSession) transfer(L *lua.LState) int {
	self(L)
	data := strings.TrimSpace(L.CheckString(2) + " " + L.OptString(3, "XML") + " " + L.OptString(4, ""))
	if err := s.d.core.Execute(s.ctx, s.ch, "transfer", data); err != nil {
		s.logv(context.Background(), slog.LevelWarn, "lua: transfer", "err", err)
	}
	return 0
}

// getDigits(max, terminators, timeout_ms) collects DTMF until max digits,
// a terminator, the timeout or hangup, and returns them (without the
// terminator).
func (s *luaSession) getDigits(L *lua.LState) int {
	self(L)
	maxDigits := L.OptInt(2, 1)
	terms := L.OptString(3, "")
	timeout := time.Duration(L.OptInt(4, 5000)) * time.Millisecond
	m := s.ch.Media()
	if m == nil || maxDigits <= 0 {
		L.Push(lua.LString(""))
		return 1
	}
	digits := make(chan rune, 64)
	remove := m.OnDigit(func(r rune) {
		select {
		case digits <- r:
		default:
		}
	})
	defer remove()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var got strings.Builder
collect:
	for got.Len() < maxDigits {
		select {
		case r := <-digits:
			if strings.ContainsRune(terms, r) {
				break collect
			}
			got.WriteRune(r)
		case <-t.C:
			break collect
		case <-s.ch.Done():
			break collect
		case <-s.ctx.Done():
			break collect
		}
	}
	L.Push(lua.LString(got.String()))
	return 1
}
