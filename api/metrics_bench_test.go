package api

import (
	"io"
	"log/slog"
	"strconv"
	"testing"

	"ccpbx/call"
)

// BenchmarkScrape gathers /metrics with 100 agents and no or 3,000 live
// channels: the cost does not grow with channels, which are counted from
// events, not walked.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{0, 3000} {
		b.Run(strconv.Itoa(n)+"-channels", func(b *testing.B) { benchScrape(b, n) })
	}
}

func benchScrape(b *testing.B, channels int) {
	core := call.NewCore("bench", slog.New(slog.NewTextHandler(io.Discard, nil)))
	cc := &fakeCC{}
	cc.v.Queues = []QueueRow{{Name: "3000@default"}}
	for i := range 100 {
		cc.v.Agents = append(cc.v.Agents, AgentRow{Name: strconv.Itoa(1000 + i), Status: "Available", State: "Waiting"})
	}
	m := NewMetrics(core, MetricsOptions{Callcenter: cc})
	for i := range channels {
		core.NewChannel(call.ChannelSpec{Name: "sofia/internal/" + strconv.Itoa(i), Direction: call.Inbound})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Registry().Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
