package dialplan

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"sync"

	"ccpbx/call"
)

// maxExpandDepth bounds nesting of ${…} inside ${…}; deeper text is left
// as written rather than recursing without end on hostile input.
const maxExpandDepth = 16

// globals holds each core's $${name} variables (set by New), so Expand can
// be called by anyone holding a core, like FreeSWITCH's global variables.
var globals sync.Map // *call.Core → map[string]string

func setGlobals(core *call.Core, vars map[string]string) {
	globals.Store(core, maps.Clone(vars))
}

func globalVar(core *call.Core, name string) (string, bool) {
	v, ok := globals.Load(core)
	if !ok {
		return "", false
	}
	s, ok := v.(map[string]string)[name]
	return s, ok
}

// Expand replaces ${name} with ch's variable (or the global of that name),
// $${name} with the global variable, ${name:offset[:length]} with a
// substring, and ${api(args)} with the reply of API command api run with
// args (expanded first, so ${a(${b})} resolves the inner one first). A
// variable that is set nowhere expands to "". Unclosed ${ is kept as
// written. ch and core may be nil (no variables, no APIs).
func Expand(ctx context.Context, core *call.Core, ch *call.Channel, s string) string {
	return expand(ctx, core, ch, s, 0)
}

func expand(ctx context.Context, core *call.Core, ch *call.Channel, s string, depth int) string {
	if !strings.Contains(s, "${") || depth > maxExpandDepth {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '$' {
			j, global := i+1, false
			if j+1 < len(s) && s[j] == '$' && s[j+1] == '{' {
				j, global = j+1, true
			}
			if j < len(s) && s[j] == '{' {
				end := closingBrace(s, j)
				if end < 0 {
					b.WriteString(s[i:])
					break
				}
				b.WriteString(resolve(ctx, core, ch, s[j+1:end], global, depth))
				i = end + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// closingBrace returns the index of the '}' that closes the '{' at open,
// counting nested braces, or -1.
func closingBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func resolve(ctx context.Context, core *call.Core, ch *call.Channel, inner string, global bool, depth int) string {
	if !global {
		if name, args, ok := apiCall(inner); ok {
			if core == nil {
				return ""
			}
			args = expand(ctx, core, ch, args, depth+1)
			return core.API(ctx, strings.TrimSpace(name+" "+args), ch)
		}
	}
	name := expand(ctx, core, ch, inner, depth+1)
	offset, length, sub := "", "", false
	if k := strings.IndexByte(name, ':'); k > 0 {
		rest := name[k+1:]
		offset, length, _ = strings.Cut(rest, ":")
		if isInt(offset) && (length == "" || isInt(length)) {
			name, sub = name[:k], true
		}
	}
	var v string
	if global {
		v, _ = globalVar(core, name)
	} else {
		ok := false
		if ch != nil {
			v, ok = ch.LookupVar(name)
		}
		if !ok {
			v, _ = globalVar(core, name)
		}
	}
	if sub {
		v = substring(v, offset, length)
	}
	return v
}

// apiCall recognises "name(args)": a plain word, an opening parenthesis
// and a closing one at the very end.
func apiCall(s string) (name, args string, ok bool) {
	p := strings.IndexByte(s, '(')
	if p <= 0 || !strings.HasSuffix(s, ")") {
		return "", "", false
	}
	name = s[:p]
	for _, r := range name {
		if !(r == '_' || r == '-' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return "", "", false
		}
	}
	return name, s[p+1 : len(s)-1], true
}

func isInt(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// substring applies FreeSWITCH's ${var:offset:length}: a negative offset
// counts from the end, a missing length takes the rest, a negative length
// stops that many bytes before the end.
func substring(v, offs, lens string) string {
	off, _ := strconv.Atoi(offs)
	n := len(v)
	if off < 0 {
		off += n
	}
	off = min(max(off, 0), n)
	end := n
	if lens != "" {
		l, _ := strconv.Atoi(lens)
		if l < 0 {
			end = n + l
		} else {
			end = off + min(l, n-off)
		}
	}
	if end < off {
		return ""
	}
	return v[off:end]
}
