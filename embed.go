// Package ccpbx holds the files shipped at the repository root that the
// binary carries inside itself: the reference config.toml (used when no file
// is given or found) and the Lua scripts the dialplan runs (callcenter.lua).
//
// It exists only because go:embed cannot reach files above a package's own
// directory; it must not contain behaviour. Keeping the single copy at the root
// means the file users edit and the file compiled in are the same file.
package ccpbx

import "embed"

// ConfigTOML is the shipped config.toml, byte for byte. Parse it with
// config.Parse, naming it so errors point at the embedded copy.
//
//go:embed config.toml
var ConfigTOML []byte

// Scripts holds scripts/*.lua; paths inside are "scripts/<name>".
//
//go:embed scripts
var Scripts embed.FS
