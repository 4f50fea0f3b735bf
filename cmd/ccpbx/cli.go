package main

import (
	"flag"
	"fmt"
	"io"

	"ccpbx/api"
)

// runCLI is fs_cli for ccpbx: the event socket's address and password come
// from the same configuration file the PBX runs with.
func runCLI(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	x := fs.String("x", "", "run one command and exit")
	events := fs.String("events", "", "subscribe to events (e.g. 'CUSTOM callcenter::info') and print them")
	host := fs.String("H", "", "event socket address (overrides the config)")
	pass := fs.String("p", "", "event socket password (overrides the config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	addr, pw := *host, *pass
	if addr == "" || pw == "" {
		cfg, err := loadConfig(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if addr == "" {
			addr = cfg.EventSocket.Listen
		}
		if pw == "" {
			pw = cfg.EventSocket.Password
		}
	}
	return api.RunCLI(api.CLIArgs{Addr: addr, Password: pw, Command: *x, Events: *events}, stdin, stdout, stderr)
}
