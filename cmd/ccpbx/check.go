package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"ccpbx"
	"ccpbx/api"
	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/dialplan"
	"ccpbx/media"
	"ccpbx/sounds"
)

// acdApps and acdAPIs are what acd registers when it starts; check does
// not start it (that would open the store), so it names them here.
var (
	acdApps = []string{"callcenter", "callcenter_track"}
	acdAPIs = []string{"callcenter_config", "callcenter_break", "json"}
	// storeAPIs are registered by parts that need the store: the CDR
	// writer (cdr) and the ban tables (ban).
	storeAPIs = []string{"cdr", "ban"}
)

// checkReferences finds what a valid file refers to that breaks calls at
// run time: dialplan applications no module provides, lua scripts and
// sound files that are not there (dialplan actions, queues' moh-sound and
// announce-sound), ${api(…)} calls to unknown API commands. Each problem
// is reported with the file and line of its key.
func checkReferences(cfg *config.Config) []error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := call.NewCore("check", log)
	dp, err := dialplan.New(cfg.Dialplan, core, dialplan.Options{
		ScriptsDir: cfg.Core.ScriptsDir, AllowedRoots: cfg.Core.AllowedRoots, ScriptsFS: ccpbx.Scripts,
		Globals: cfg.Vars, Log: log,
	})
	if err != nil {
		return []error{err}
	}
	dp.RegisterApps()
	api.RegisterCommands(core, api.Deps{})
	api.NewEventSocket(core, "", "check", log).RegisterSocketApp()
	noop := func(context.Context, *call.Channel, string) error { return nil }
	for _, a := range acdApps {
		core.RegisterApp(a, noop)
	}
	for _, a := range append(acdAPIs, storeAPIs...) {
		core.RegisterAPI(a, "", func(context.Context, string, *call.Channel) string { return "" })
	}
	(&reloader{core: core}).register()

	eng, err := media.NewEngine(media.Config{SoundsFS: sounds.FS, SoundsDir: cfg.Core.SoundsDir, AllowedRoots: cfg.Core.AllowedRoots}, log)
	if err != nil {
		return []error{fmt.Errorf("media: %w", err)}
	}
	defer eng.Close()
	sound := func(p string) error {
		_, err := eng.Sound(p)
		return err
	}

	var out []error
	for _, p := range dp.Check(cfg.Dialplan, sound) {
		out = append(out, cfg.ErrorAt(p.Path, p.Err))
	}
	for i, q := range cfg.Callcenter.Queues {
		for key, f := range map[string]string{"moh-sound": q.MOHSound, "announce-sound": q.AnnounceSound} {
			if f == "" || strings.Contains(f, "://") || strings.Contains(f, "${") {
				continue
			}
			if err := sound(f); err != nil {
				out = append(out, cfg.ErrorAt(fmt.Sprintf("callcenter.queue[%d].%s", i, key),
					fmt.Errorf("%q: %w: callers would wait in silence", f, err)))
			}
		}
	}
	return out
}
