package dialplan

import (
	"context"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

func BenchmarkHuntShipped(b *testing.B) {
	cfg, err := config.Load("../config.toml")
	if err != nil {
		b.Fatal(err)
	}
	core := call.NewCore("bench", quietLog())
	d, err := New(cfg.Dialplan, core, Options{Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	ch := core.NewChannel(call.ChannelSpec{Vars: map[string]string{"destination_number": "1002", "context": "default"}, Log: quietLog()})
	b.ReportAllocs()
	for b.Loop() {
		if len(d.hunt("default", ch)) != 3 {
			b.Fatal("no match")
		}
	}
}

func BenchmarkExpandAPI(b *testing.B) {
	core := call.NewCore("bench", quietLog())
	core.RegisterAPI("callcenter_config", "", func(context.Context, string, *call.Channel) string { return "+OK\n" })
	ch := core.NewChannel(call.ChannelSpec{Vars: map[string]string{"caller_id_number": "1001"}, Log: quietLog()})
	s := "res=${callcenter_config(agent set status ${caller_id_number} 'Available')}"
	b.ReportAllocs()
	for b.Loop() {
		if Expand(context.Background(), core, ch, s) != "res=+OK\n" {
			b.Fatal("bad expansion")
		}
	}
}
