package api

import (
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
