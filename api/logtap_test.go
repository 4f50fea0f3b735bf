package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestEventSocketLogStreaming(t *testing.T) {
	var own bytes.Buffer
	tap := NewLogTap(slog.NewTextHandler(&own, &slog.HandlerOptions{Level: slog.LevelWarn}))
	log := slog.New(tap).With("uuid", "0ddb404c-8227-4d5e-93e1-238df1d4da9c")

	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := NewEventSocket(core, "127.0.0.1:0", testPassword, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.SetLogTap(tap)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc := dialRaw(t, s)
	rc.login()

	rc.send("log bogus\n\n")
	rc.expect(commandReply("-ERR invalid log level"))
	rc.send("nolog\n\n")
	rc.expect(commandReply("-ERR not loging"))
	rc.send("log info\n\n")
	rc.expect(commandReply("+OK log level info [6]"))

	if !log.Enabled(context.Background(), slog.LevelInfo) || log.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("tap does not widen Enabled to the client's level only")
	}
	log.Debug("too verbose for the client")
	log.WithGroup("sip").Info("call ringing", "agent", "1001", slog.Group("to", "uri", "sip:1001@h"), "note", "two words")
	f := rc.frame()
	head, body, _ := strings.Cut(f, "\n\n")
	wantHead := "Content-Type: log/data\nContent-Length: " + strconv.Itoa(len(body)) + "\nLog-Level: 6\nText-Channel: 0\nLog-File: logtap_test.go\nLog-Func: TestEventSocketLogStreaming\nLog-Line: "
	if !strings.HasPrefix(head, wantHead) || !strings.HasSuffix(head, "\nUser-Data: 0ddb404c-8227-4d5e-93e1-238df1d4da9c") {
		t.Fatalf("log frame header:\n%s", head)
	}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} \[INFO\] logtap_test\.go:\d+ call ringing uuid=0ddb404c-8227-4d5e-93e1-238df1d4da9c sip\.agent=1001 sip\.to\.uri=sip:1001@h sip\.note="two words"\n$`)
	if !re.MatchString(body) {
		t.Fatalf("log line %q", body)
	}
	if own.Len() != 0 {
		t.Fatalf("the process handler got records below its level: %s", own.String())
	}
	log.Warn("kept locally")
	if !strings.Contains(own.String(), "kept locally") {
		t.Fatalf("process handler lost a record: %q", own.String())
	}
	if f := rc.frame(); !strings.Contains(f, "Log-Level: 4\n") || !strings.Contains(f, "[WARNING]") {
		t.Fatalf("warning frame: %q", f)
	}

	rc.send("nolog\n\n")
	rc.expect(commandReply("+OK no longer logging"))
	log.Error("after nolog")
	rc.send("api hostname\n\n")
	rc.expect(apiResponse("blueivr"))
	if log.Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("Enabled still widened after the client left")
	}
}

func TestLogCommandWithoutTap(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	rc := dialRaw(t, s)
	rc.login()
	rc.send("log debug\n\n")
	rc.expect(commandReply("-ERR command not found"))
}

func TestParseFSLogLevel(t *testing.T) {
	for in, want := range map[string]int{"debug": 7, "7": 7, "INFO": 6, "notice": 5, "warning": 4, "warn": 4, "err": 3, "error": 3, "crit": 2, "alert": 1, "console": 0, "0": 0} {
		if got, ok := parseFSLogLevel(in); !ok || got != want {
			t.Errorf("%s: %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "8", "-1", "verbose"} {
		if _, ok := parseFSLogLevel(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}
