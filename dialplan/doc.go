// Package dialplan owns call routing the way FreeSWITCH's XML dialplan does
// it: contexts of extensions, conditions (field, regular expression with $1
// captures, break on-false/on-true/always/never, anti-actions), the
// extension continue flag, actions written "app data", ${var}, $${var} and
// ${api(args)} expansion, and the built-in applications that need no module
// (answer, pre_answer, ring_ready, hangup, playback, sleep, set, export,
// unset, log, bridge, transfer, echo and lua with FreeSWITCH's Lua API).
//
// Unlike FreeSWITCH's mod_lua, scripts are named only inside scripts_dir
// (and core.allowed_roots) and run in a sandbox without shell, environment
// or file access elsewhere (luasandbox.go); file names go through
// guard.Folders. A script's VM builds each standard library the first time
// the script uses it (lualibs.go): a caller waiting in a queue keeps its VM.
//
// It imports only call, config and guard: it must not import sip, media, acd
// or api.
// Apps and API commands of other modules (callcenter, callcenter_config)
// reach it through call.Core's registries, as modules do in FreeSWITCH.
package dialplan
