// Command ccpbx is the PBX: `ccpbx` (or `ccpbx serve`) runs it, `ccpbx check`
// validates a configuration, `ccpbx cli` talks to a running one over the
// event socket, `ccpbx health` asks a running one's /healthz (the Docker
// HEALTHCHECK), `ccpbx cluster status` lists a cluster's nodes and
// claims, `ccpbx cert` writes a self-signed TLS pair for a test setup,
// and `ccpbx version` prints the build.
//
// This package owns flags, subcommands, wiring and signals; behaviour lives
// in the packages it wires together.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"ccpbx"
	"ccpbx/config"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module build info is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "serve", "check", "version", "cli", "health", "cert", "cluster", "help", "-h", "-help", "--help":
			cmd, args = args[0], args[1:]
		}
	}
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "ccpbx %s\n", buildVersion())
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "check":
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := configFlag(fs)
		if err := fs.Parse(args); err != nil {
			return 2
		}
		cfg, err := loadConfig(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for _, w := range configWarnings(cfg) {
			fmt.Fprintf(stderr, "%s: warning: %s\n", cfg.File, w)
		}
		if problems := checkReferences(cfg); len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintln(stderr, p)
			}
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK\n", cfg.File)
		return 0
	case "cli":
		return runCLI(args, stdin, stdout, stderr)
	case "health":
		return healthCmd(args, stdout, stderr)
	case "cert":
		return certCmd(args, stdout, stderr)
	case "cluster":
		return clusterCmd(args, stdin, stdout, stderr)
	default:
		return serve(args, stderr)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  ccpbx [serve] [-config PATH]          run the PBX (default ./config.toml, else the embedded config)
  ccpbx check -config PATH              validate a configuration; exit 0 when good, 1 when not
  ccpbx cli [-config PATH] [-x CMD]     run one API command (or an interactive prompt) on the event socket
  ccpbx cli [-config PATH] -events 'CUSTOM callcenter::info'   print events
  ccpbx health [-config PATH] [-url URL]  ask the running PBX's /healthz; exit 0 when healthy
  ccpbx cluster status [-config PATH]   nodes, leases and agent claims of a cluster node
  ccpbx cert --host NAME [-cert F] [-key F] [-days N]  write a self-signed TLS pair for a test setup
  ccpbx version                         print the version
`)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return "1.0.0-" + rev
		}
	}
	return "1.0.0-dev"
}

// configFlag defines -config, the same for every subcommand; loadConfig
// reads what it names.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration file (default ./config.toml, else the embedded one)")
}

// loadConfig reads path; with no path it reads ./config.toml when present,
// else the copy embedded in the binary.
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	if _, err := os.Stat("config.toml"); err == nil {
		return config.Load("config.toml")
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return config.Parse("(embedded config.toml)", ccpbx.ConfigTOML)
}
