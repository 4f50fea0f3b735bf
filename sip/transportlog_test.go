package sip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestPeerNoiseDemotesParseFailures: sipgo's ERROR for an unparsable
// datagram becomes a short DEBUG record (or nothing at INFO); other
// records pass unchanged.
func TestPeerNoiseDemotesParseFailures(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(peerNoise{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level})}).With("layer", "transport")
		log.Error("failed to parse", "data", strings.Repeat("G", 5000), "error", "empty URI")
		out := buf.String()
		if level == slog.LevelInfo && out != "" {
			t.Fatalf("at INFO a garbage datagram was logged: %q", out)
		}
		if level == slog.LevelDebug {
			if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "layer=transport") || !strings.Contains(out, "error=\"empty URI\"") || len(out) > 400 {
				t.Fatalf("at DEBUG: %q", out)
			}
		}
		buf.Reset()
		log.Error("Read connection error", "error", "boom")
		if !strings.Contains(buf.String(), "level=ERROR") {
			t.Fatalf("other errors must pass unchanged: %q", buf.String())
		}
	}
}
