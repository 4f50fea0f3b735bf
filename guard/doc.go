// Package guard owns ccpbx's small protective mechanisms that more than one
// listener or application needs: counting authentication failures per
// source address and per account, banning a source that fails too often
// (Bans, on a generic windowed Counter), and
// keeping file names that arrive from calls, scripts and API commands inside
// the folders the configuration allows (Folders).
//
// It imports no other ccpbx package and does no I/O besides opening files
// through os.Root: the event socket (package api) and the SIP
// profiles report failures here and ask before doing work; dialplan and
// media resolve names here before reading a file. Persisting bans and the
// `ban list` / `ban del` commands belong to whoever wires a Bans into the
// process, not to this package.
package guard
