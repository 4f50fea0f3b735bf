package dialplan

import (
	"fmt"
	"strings"

	"ccpbx/config"
)

// Problem is one reference in the configuration that breaks calls when
// they reach it: Path is the key ("dialplan.context[0].extension[1]
// .condition[0].actions[2]") and Err says what is wrong.
type Problem struct {
	Path string
	Err  error
}

// Check finds what the dialplan refers to that does not exist, the
// mistakes that otherwise show only when a call reaches them: an
// application no module registered (FreeSWITCH hangs up after the side
// effects of the actions before it), a lua script that cannot be loaded,
// a ${api(…)} call to an unknown API command, and a file playback would
// not find (sound resolves a path, nil when it plays). Data that holds
// ${…} is only known per call and is not checked. The core must have
// every module's applications and APIs registered.
func (d *Dialplan) Check(cfg config.Dialplan, sound func(path string) error) []Problem {
	var out []Problem
	for i, c := range cfg.Contexts {
		for j, e := range c.Extensions {
			for k, cond := range e.Conditions {
				base := fmt.Sprintf("dialplan.context[%d].extension[%d].condition[%d]", i, j, k)
				for n, a := range cond.Actions {
					out = append(out, d.checkAction(fmt.Sprintf("%s.actions[%d]", base, n), a, sound)...)
				}
				for n, a := range cond.AntiActions {
					out = append(out, d.checkAction(fmt.Sprintf("%s.anti_actions[%d]", base, n), a, sound)...)
				}
			}
		}
	}
	return out
}

func (d *Dialplan) checkAction(path, action string, sound func(string) error) []Problem {
	app, data, err := ParseAction(action)
	if err != nil {
		return []Problem{{path, err}}
	}
	var out []Problem
	if _, ok := d.core.LookupApp(app); !ok {
		out = append(out, Problem{path, fmt.Errorf("unknown dialplan application %q: a call reaching it is hung up", app)})
	}
	for _, name := range apiCalls(data) {
		if _, ok := d.core.APINames()[strings.ToLower(name)]; !ok {
			out = append(out, Problem{path, fmt.Errorf("${%s(…)} calls an API command that does not exist", name)})
		}
	}
	if strings.Contains(data, "${") {
		return out
	}
	switch strings.ToLower(app) {
	case "lua":
		script, _, _ := strings.Cut(strings.TrimSpace(data), " ")
		if script != "" {
			if _, where, err := d.loadScript(script); err != nil {
				out = append(out, Problem{path, fmt.Errorf("lua script %q (%s): %w", script, where, err)})
			}
		}
	case "playback":
		if f := strings.TrimSpace(data); f != "" && sound != nil {
			if err := sound(f); err != nil {
				out = append(out, Problem{path, fmt.Errorf("playback %q: %w", f, err)})
			}
		}
	}
	return out
}

// apiCalls lists the API names of the ${name(…)} calls in s, nested ones
// included.
func apiCalls(s string) []string {
	var out []string
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' || s[i+1] != '{' {
			continue
		}
		end := closingBrace(s, i+1)
		if end < 0 {
			break
		}
		inner := s[i+2 : end]
		if name, args, ok := apiCall(inner); ok {
			out = append(out, name)
			out = append(out, apiCalls(args)...)
		} else {
			out = append(out, apiCalls(inner)...)
		}
		i = end
	}
	return out
}
