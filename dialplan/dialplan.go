package dialplan

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/guard"
)

// Options configures a Dialplan beyond the config section.
type Options struct {
	// ScriptsDir is where the lua application resolves relative script names.
	ScriptsDir string
	// AllowedRoots are further folders scripts may be named in, by absolute
	// path; nothing else outside ScriptsDir is ever read (see guard.Folders).
	AllowedRoots []string
	// ScriptsFS holds the scripts compiled into the binary; a relative name
	// not found under ScriptsDir is read from it as "scripts/<name>" (the
	// layout of ccpbx.Scripts), then as "<name>".
	ScriptsFS fs.FS
	// Log receives the dialplan's own lines; nil means slog.Default().
	Log *slog.Logger
	// Globals are the $${name} variables (config [vars]); they also answer
	// ${name} when the channel has no such variable, as FreeSWITCH's global
	// variables do.
	Globals map[string]string
}

// Dialplan is the compiled set of contexts. It is safe for concurrent use:
// every channel routes in its own goroutine.
type Dialplan struct {
	core       *call.Core
	log        *slog.Logger
	scriptDirs *guard.Folders
	scriptFS   fs.FS
	// contexts is swapped whole by Reload; a call that is executing
	// keeps the steps it collected, the next hunt sees the new plan.
	contexts atomic.Pointer[map[string]*dpContext]
	luaGrace time.Duration
	protos   luaProtos

	mu   sync.Mutex
	runs map[string]*run // channel UUID → its routing state (for transfer)

	dynMu sync.Mutex
	dyn   map[string]*regexp.Regexp // expressions that contain ${…}, compiled per call
}

type dpContext struct {
	name string
	exts []*extension
}

type extension struct {
	name    string
	cont    bool
	conds   []*condition
	context string
}

type breakMode int

const (
	breakOnFalse breakMode = iota
	breakOnTrue
	breakAlways
	breakNever
)

type condition struct {
	field     string // "" = no test (always true)
	expandFld bool   // field names a ${…} expression rather than a caller field
	expr      string
	re        *regexp.Regexp // nil when expr needs expansion per call
	brk       breakMode
	actions   []action
	anti      []action
}

// action is one "app data" string, split at the first blank.
type action struct {
	app, data string
}

// maxTransfers bounds transfer loops; FreeSWITCH gives up on routing loops
// with EXCHANGE_ROUTING_ERROR too.
const maxTransfers = 32

// maxDynRegexps bounds the cache of per-call compiled expressions.
const maxDynRegexps = 256

// callerFields are the caller-profile fields a condition may name without
// ${…} (FreeSWITCH's switch_caller_get_field_by_name); anything else reads
// as empty there, so New warns about it.
var callerFields = map[string]bool{
	"dialplan": true, "username": true, "caller_id_name": true, "caller_id_number": true,
	"callee_id_name": true, "callee_id_number": true, "ani": true, "aniii": true,
	"network_addr": true, "rdnis": true, "destination_number": true, "uuid": true,
	"source": true, "context": true, "chan_name": true, "transfer_source": true,
}

// New compiles cfg's contexts. Errors name the context and extension of the
// offending regular expression, break mode or action.
func New(cfg config.Dialplan, core *call.Core, opts Options) (*Dialplan, error) {
	if core == nil {
		return nil, errors.New("dialplan: nil core")
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	d := &Dialplan{
		core:       core,
		log:        log,
		scriptDirs: guard.NewFolders(opts.ScriptsDir, opts.AllowedRoots...),
		scriptFS:   opts.ScriptsFS,
		luaGrace:   luaGrace,
		runs:       make(map[string]*run),
		dyn:        make(map[string]*regexp.Regexp),
	}
	contexts, err := compileContexts(cfg, log)
	if err != nil {
		return nil, err
	}
	d.contexts.Store(&contexts)
	setGlobals(core, opts.Globals)
	return d, nil
}

// compileContexts compiles every context of cfg.
func compileContexts(cfg config.Dialplan, log *slog.Logger) (map[string]*dpContext, error) {
	contexts := make(map[string]*dpContext, len(cfg.Contexts))
	for ci, c := range cfg.Contexts {
		if c.Name == "" {
			return nil, fmt.Errorf("dialplan: context #%d has no name", ci+1)
		}
		if _, dup := contexts[c.Name]; dup {
			return nil, fmt.Errorf("dialplan: context %q defined twice", c.Name)
		}
		dc := &dpContext{name: c.Name}
		for ei, e := range c.Extensions {
			ext, err := compileExtension(c.Name, e, log)
			if err != nil {
				name := e.Name
				if name == "" {
					name = fmt.Sprintf("#%d", ei+1)
				}
				return nil, fmt.Errorf("dialplan: context %q extension %q: %w", c.Name, name, err)
			}
			dc.exts = append(dc.exts, ext)
		}
		contexts[c.Name] = dc
	}
	return contexts, nil
}

// Reload replaces the dialplan with cfg (reloadxml): it compiles the new
// contexts first and changes nothing when they do not compile. Calls that
// are running their actions keep them; the next hunt uses the new plan.
func (d *Dialplan) Reload(cfg config.Dialplan, globals map[string]string) error {
	contexts, err := compileContexts(cfg, d.log)
	if err != nil {
		return err
	}
	d.contexts.Store(&contexts)
	setGlobals(d.core, globals)
	return nil
}

func compileExtension(ctxName string, e config.Extension, log *slog.Logger) (*extension, error) {
	name := e.Name
	if name == "" {
		name = "_anon_"
	}
	ext := &extension{name: name, cont: e.Continue, context: ctxName}
	for i, c := range e.Conditions {
		cond, err := compileCondition(c)
		if err != nil {
			return nil, fmt.Errorf("condition #%d: %w", i+1, err)
		}
		if cond.field != "" && !cond.expandFld && !callerFields[cond.field] {
			log.Warn("dialplan condition field is not a caller field and reads as empty; use ${name} for a variable",
				"context", ctxName, "extension", name, "field", cond.field)
		}
		ext.conds = append(ext.conds, cond)
	}
	return ext, nil
}

func compileCondition(c config.Condition) (*condition, error) {
	brk, err := parseBreak(c.Break)
	if err != nil {
		return nil, err
	}
	cond := &condition{
		field:     strings.TrimSpace(c.Field),
		expr:      c.Expression,
		brk:       brk,
		expandFld: strings.Contains(c.Field, "$"),
	}
	if !strings.Contains(c.Expression, "${") {
		re, err := regexp.Compile(c.Expression)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", c.Expression, err)
		}
		cond.re = re
	}
	for _, s := range c.Actions {
		a, err := parseAction(s)
		if err != nil {
			return nil, err
		}
		cond.actions = append(cond.actions, a)
	}
	for _, s := range c.AntiActions {
		a, err := parseAction(s)
		if err != nil {
			return nil, fmt.Errorf("anti-action: %w", err)
		}
		cond.anti = append(cond.anti, a)
	}
	return cond, nil
}

func parseBreak(s string) (breakMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "on-false":
		return breakOnFalse, nil
	case "on-true":
		return breakOnTrue, nil
	case "always":
		return breakAlways, nil
	case "never":
		return breakNever, nil
	}
	return 0, fmt.Errorf("break %q: want on-false, on-true, always or never", s)
}

// ParseAction splits "app data" at the first blank. The application name
// must be a plain word (letters, digits, _ - . :); data may be empty.
func ParseAction(s string) (app, data string, err error) {
	s = strings.TrimLeft(s, " \t")
	app, data = s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		app, data = s[:i], strings.TrimLeft(s[i+1:], " \t")
	}
	if app == "" {
		return "", "", fmt.Errorf("action %q: no application", s)
	}
	for _, r := range app {
		ok := r == '_' || r == '-' || r == '.' || r == ':' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return "", "", fmt.Errorf("action %q: bad application name %q", s, app)
		}
	}
	return app, data, nil
}

func parseAction(s string) (action, error) {
	app, data, err := ParseAction(s)
	return action{app: app, data: data}, err
}
