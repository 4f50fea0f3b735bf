package api

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"ccpbx/call"
)

// BenchmarkSerializePlain measures the per-listener cost of one large
// channel event (about 150 headers, as mod_callcenter's member events).
func BenchmarkSerializePlain(b *testing.B) {
	hs, _ := parsePlainEvent(readBenchData(b, "member_queue_start.wire"))
	e := &call.Event{Headers: hs}
	b.ReportAllocs()
	for b.Loop() {
		serializePlain(e, true)
	}
}

func BenchmarkSerializeJSON(b *testing.B) {
	hs, _ := parsePlainEvent(readBenchData(b, "member_queue_start.wire"))
	e := &call.Event{Headers: hs}
	b.ReportAllocs()
	for b.Loop() {
		serializeJSON(e)
	}
}

func readBenchData(b *testing.B, name string) string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}

// BenchmarkShowCallsCount is `show calls count` (what bench/load.sh and
// monitoring poll) with 500 bridged calls up.
func BenchmarkShowCallsCount(b *testing.B) {
	core := call.NewCore("bench", slog.New(slog.NewTextHandler(io.Discard, nil)))
	RegisterCommands(core, Deps{})
	for range 500 {
		a := core.NewChannel(call.ChannelSpec{Name: "sofia/trunk/5550001@127.0.0.1", Direction: call.Inbound,
			Vars: map[string]string{"caller_id_number": "5550001", "destination_number": "3000"}})
		o := core.NewChannel(call.ChannelSpec{Name: "sofia/internal/1001@127.0.0.1", Direction: call.Outbound})
		a.SetVar("bridge_uuid", o.UUID())
		o.SetVar("bridge_uuid", a.UUID())
	}
	b.ReportAllocs()
	for b.Loop() {
		if got := api(core, "show calls count"); got != "\n500 total.\n" {
			b.Fatal(got)
		}
	}
}
