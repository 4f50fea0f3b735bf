package main

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"ccpbx/acd"
	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/dialplan"
	"ccpbx/registrar"
)

// reloader re-reads config.toml for reloadxml, reload and SIGHUP, validates
// it completely and applies what can change under live calls: the
// dialplan, the directory users, queues, agents and tiers. A file that
// does not validate changes nothing; the reply says why (file:line).
// What is bound at start (profiles' sockets, the event socket, the RTP
// range, the data directory) keeps running as it is, and the reply says
// that a restart applies it.
type reloader struct {
	mu   sync.Mutex
	core *call.Core
	cfg  *config.Config
	dp   *dialplan.Dialplan
	reg  *registrar.Registrar
	acd  *acd.ACD
}

// register adds the reloadxml and reload API commands.
func (r *reloader) register() {
	r.core.RegisterAPI("reloadxml", "Reload XML", func(context.Context, string, *call.Channel) string { return r.reload() })
	r.core.RegisterAPI("reload", "Reload module", func(context.Context, string, *call.Channel) string { return r.reload() })
}

// reload runs one reload and returns FreeSWITCH's reloadxml reply
// ("+OK [Success]", or "-ERR [why]"), followed by a line per part that
// needs a restart.
func (r *reloader) reload() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.File == "" || strings.HasPrefix(r.cfg.File, "(") {
		return "-ERR [the configuration is the one embedded in the binary; there is no file to re-read]\n"
	}
	next, err := config.Load(r.cfg.File)
	if err != nil {
		r.core.Log.Warn("reload refused; the running configuration stays", "err", err)
		return "-ERR [" + strings.ReplaceAll(err.Error(), "\n", "; ") + "]\n"
	}
	// What would break calls (unknown apps, missing scripts and sounds,
	// unknown ${api()}) refuses the file as `ccpbx check` does.
	if problems := checkReferences(next); len(problems) > 0 {
		var why []string
		for _, p := range problems {
			why = append(why, p.Error())
		}
		r.core.Log.Warn("reload refused; the running configuration stays", "problems", len(problems))
		return "-ERR [" + strings.Join(why, "; ") + "]\n"
	}
	// Everything that can fail is checked before anything changes.
	if err := r.dp.Reload(next.Dialplan, next.Vars); err != nil {
		return "-ERR [" + next.File + ": " + err.Error() + "]\n"
	}
	if err := r.reg.SetUsers(next.Directory.Users); err != nil {
		return "-ERR [" + next.File + ": " + err.Error() + "]\n"
	}
	changes := r.acd.Reload(next.Callcenter)
	restart := restartNeeded(r.cfg, next)
	r.cfg = next
	for _, c := range changes {
		r.core.Log.Info("reload: " + c)
	}
	for _, w := range restart {
		r.core.Log.Warn("reload: " + w)
	}
	e := &call.Event{Name: "RELOADXML"}
	r.core.Fire(e)
	var b strings.Builder
	b.WriteString("+OK [Success]\n")
	for _, w := range restart {
		b.WriteString(w + "\n")
	}
	return b.String()
}

// restartNeeded names what changed in parts that are bound at start.
func restartNeeded(old, next *config.Config) []string {
	var out []string
	oldP := map[string]config.Profile{}
	for _, p := range old.Profiles {
		oldP[p.Name] = p
	}
	for _, p := range next.Profiles {
		prev, ok := oldP[p.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("profile %s: new profile needs a restart", p.Name))
		case !reflect.DeepEqual(prev, p):
			out = append(out, fmt.Sprintf("profile %s: listen address and profile settings need a restart", p.Name))
		}
		delete(oldP, p.Name)
	}
	for name := range oldP {
		out = append(out, fmt.Sprintf("profile %s: removed; it keeps running until a restart", name))
	}
	if !reflect.DeepEqual(old.EventSocket, next.EventSocket) {
		out = append(out, "event_socket: changes need a restart")
	}
	if !reflect.DeepEqual(old.Media, next.Media) {
		out = append(out, "media: changes need a restart")
	}
	if !reflect.DeepEqual(old.Core, next.Core) || !reflect.DeepEqual(old.CDR, next.CDR) {
		out = append(out, "core/cdr: changes need a restart")
	}
	if !reflect.DeepEqual(old.Callcenter.Settings, next.Callcenter.Settings) {
		out = append(out, "callcenter settings: changes need a restart")
	}
	return out
}
