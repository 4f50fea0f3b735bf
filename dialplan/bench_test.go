package dialplan

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

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

// luaBench is a dialplan with the shipped scripts and a callcenter app that
// returns at once (wait == nil) or parks until wait is closed.
func luaBench(b *testing.B, wait chan struct{}, parked *sync.WaitGroup) (*Dialplan, *call.Core) {
	b.Helper()
	core := call.NewCore("bench", quietLog())
	d, err := New(config.Dialplan{}, core, Options{Log: quietLog(), ScriptsDir: "../scripts"})
	if err != nil {
		b.Fatal(err)
	}
	d.RegisterApps()
	core.RegisterApp("callcenter", func(ctx context.Context, ch *call.Channel, data string) error {
		if wait != nil {
			parked.Done()
			<-wait
		}
		return nil
	})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		core.Shutdown(ctx)
	})
	return d, core
}

func luaBenchChannel(core *call.Core, i int) *call.Channel {
	return core.NewChannel(call.ChannelSpec{Vars: map[string]string{
		"destination_number": "3000", "caller_id_number": fmt.Sprint(5550000 + i), "context": "blueivr"},
		Log: quietLog()})
}

// BenchmarkLuaShippedCall runs the shipped callcenter.lua once per
// iteration (the script a trunk call runs), with a callcenter app that
// returns at once: the Lua VM's cost per call.
func BenchmarkLuaShippedCall(b *testing.B) {
	d, core := luaBench(b, nil, nil)
	ch := luaBenchChannel(core, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.RunLua(context.Background(), ch, "callcenter.lua", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLuaShippedWaiting parks callers in the shipped script's
// session:execute("callcenter", …) and reports the live heap each keeps
// (heap-B/caller: everything the running script holds — VM, session,
// closures — besides the channel, made before the baseline).
func BenchmarkLuaShippedWaiting(b *testing.B) {
	const n = 500
	for b.Loop() {
		b.StopTimer()
		wait := make(chan struct{})
		var parked sync.WaitGroup
		d, core := luaBench(b, wait, &parked)
		chs := make([]*call.Channel, n)
		for i := range chs {
			chs[i] = luaBenchChannel(core, i)
		}
		// One script first, so the compiled script is cached before the
		// baseline.
		parked.Add(1)
		var done sync.WaitGroup
		done.Add(1)
		go func() {
			defer done.Done()
			_ = d.RunLua(context.Background(), luaBenchChannel(core, n), "callcenter.lua", nil)
		}()
		parked.Wait()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		parked.Add(n)
		for _, ch := range chs {
			done.Add(1)
			go func() {
				defer done.Done()
				if err := d.RunLua(context.Background(), ch, "callcenter.lua", nil); err != nil {
					b.Error(err)
				}
			}()
		}
		parked.Wait()
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/caller")
		b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-B/caller")
		close(wait)
		done.Wait()
		runtime.KeepAlive(chs)
		b.StartTimer()
	}
}
