package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
)

// lockedBuffer is an io.Writer the PBX's logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// loggedPBX is testPBX with its log kept for the test to read.
func loggedPBX(t *testing.T, logs *lockedBuffer, edit func(*config.Config)) *pbx {
	t.Helper()
	cfg, err := config.Load("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Profiles {
		cfg.Profiles[i].ListenIP = "127.0.0.1"
		cfg.Profiles[i].AdvertiseIP = "127.0.0.1"
		cfg.Profiles[i].Port = 0
	}
	cfg.EventSocket.Listen = "127.0.0.1:0"
	cfg.Core.DataDir = t.TempDir()
	cfg.Core.Hostname = "testbox"
	edit(cfg)
	p, err := start(context.Background(), cfg, newLogger(config.Core{LogLevel: "debug"}, logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		p.shutdown(ctx)
	})
	return p
}

// TestOriginateFilesStayInFolders is issue 11's attack over the event
// socket's originate: &lua of an absolute path or of "..", and
// &playback(/etc/shadow), are refused with a logged reason, while a script
// inside scripts_dir runs.
func TestOriginateFilesStayInFolders(t *testing.T) {
	scripts, outside := t.TempDir(), t.TempDir()
	marker := `freeswitch.API():execute("sandbox_marker", argv[0])`
	for _, f := range []string{filepath.Join(scripts, "ok.lua"), filepath.Join(outside, "any.lua")} {
		if err := os.WriteFile(f, []byte(marker), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := &lockedBuffer{}
	p := loggedPBX(t, logs, func(c *config.Config) { c.Core.ScriptsDir = scripts })
	var mu sync.Mutex
	var ran []string
	p.core.RegisterAPI("sandbox_marker", "test", func(_ context.Context, args string, _ *call.Channel) string {
		mu.Lock()
		ran = append(ran, args)
		mu.Unlock()
		return "+OK"
	})
	ph := agentPhone(t, p, "1001")

	originate := func(target string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		reply := make(chan string, 1)
		go func() { reply <- p.api(t, "originate user/1001 "+target) }()
		in, err := ph.Incoming(ctx)
		if err != nil {
			t.Fatalf("%s: phone never rang: %v", target, err)
		}
		if err := in.Answer(); err != nil {
			t.Fatal(err)
		}
		if r := <-reply; !strings.HasPrefix(r, "+OK ") {
			t.Fatalf("%s: originate replied %q", target, r)
		}
		// The leg is hung up once its application returns.
		if err := in.WaitEnded(ctx); err != nil {
			t.Fatalf("%s: not hung up: %v", target, err)
		}
	}

	for _, target := range []string{
		"&lua(" + filepath.Join(outside, "any.lua") + ")",
		"&lua(../../../../etc/passwd)",
		"&lua(../" + filepath.Base(outside) + "/any.lua)",
		"&playback(/etc/shadow)",
	} {
		before := strings.Count(logs.String(), "outside the allowed folders")
		originate(target)
		if after := strings.Count(logs.String(), "outside the allowed folders"); after <= before {
			t.Errorf("%s: no refusal logged", target)
		}
	}
	mu.Lock()
	if len(ran) != 0 {
		t.Fatalf("a script outside scripts_dir ran: %q", ran)
	}
	mu.Unlock()

	originate("&lua(ok.lua)")
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 1 || ran[0] != "ok.lua" {
		t.Fatalf("the script inside scripts_dir did not run: %q", ran)
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "outside the allowed folders") {
			t.Log(l)
		}
	}
}
