package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ccpbx/config"
)

// reloadablePBX starts the PBX from a private copy of the shipped
// config.toml (loopback, ephemeral ports) and returns it with the copy's
// path and text, so a test can edit the file and reload.
func reloadablePBX(t *testing.T) (*pbx, string, string) {
	t.Helper()
	b, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, r := range []struct{ re, repl string }{
		{`(?m)^listen_ip = "0\.0\.0\.0"$`, `listen_ip = "127.0.0.1"`},
		{`(?m)^port = 50[68]0$`, `port = 0`},
		{`(?m)^listen = "127\.0\.0\.1:8021"$`, `listen = "127.0.0.1:0"`},
		{`(?m)^data_dir = "[^"]*"$`, `data_dir = ` + strconvQuote(t.TempDir())},
	} {
		text = regexp.MustCompile(r.re).ReplaceAllString(text, r.repl)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := start(ctx, cfg, newLogger(config.Core{LogLevel: "error"}, io.Discard))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c2 := context.WithTimeout(context.Background(), 4*time.Second)
		defer c2()
		p.shutdown(sctx)
		cancel()
	})
	return p, path, text
}

func strconvQuote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }

// TestReloadXML: an edited queue strategy takes effect on reloadxml; a
// file that does not validate changes nothing and the reply says where.
func TestReloadXML(t *testing.T) {
	p, path, text := reloadablePBX(t)
	if got := p.api(t, "callcenter_config queue list"); !strings.Contains(got, "3000@default|round-robin|") {
		t.Fatalf("queue list before: %q", got)
	}
	events, cancel := p.core.Bus.Subscribe(8, nil)
	defer cancel()
	edited := strings.Replace(text, `strategy = "round-robin"`, `strategy = "longest-idle-agent"`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := p.api(t, "reloadxml"); got != "+OK [Success]\n" {
		t.Fatalf("reloadxml: %q", got)
	}
	if got := p.api(t, "callcenter_config queue list"); !strings.Contains(got, "3000@default|longest-idle-agent|") {
		t.Errorf("queue list after reloadxml: %q", got)
	}
	sawReload := false
	for len(events) > 0 {
		if e := <-events; e.Name == "RELOADXML" {
			sawReload = true
		}
	}
	if !sawReload {
		t.Error("no RELOADXML event")
	}

	bad := strings.Replace(edited, `strategy = "longest-idle-agent"`, `strategy = "fastest"`, 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	got := p.api(t, "reload")
	if !strings.HasPrefix(got, "-ERR [") || !strings.Contains(got, path+":") || !strings.Contains(got, "fastest") {
		t.Errorf("reload of a bad file: %q, want -ERR naming %s:line and the bad strategy", got, path)
	}
	if got := p.api(t, "callcenter_config queue list"); !strings.Contains(got, "3000@default|longest-idle-agent|") {
		t.Errorf("a bad file changed the queue: %q", got)
	}

	moved := strings.Replace(edited, `port = 0`, `port = 5999`, 1)
	if err := os.WriteFile(path, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := p.api(t, "reloadxml"); !strings.HasPrefix(got, "+OK [Success]\n") || !strings.Contains(got, "need a restart") {
		t.Errorf("reloadxml with a moved profile: %q, want success and a restart notice", got)
	}
}
