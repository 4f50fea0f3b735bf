package api

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
)

// TestMetricsAndWallboardAreBare: the queue counters and the wallboard
// read only the CC-* headers of callcenter::info, so they subscribe bare
// and the ACD leaves a member's channel headers out while only they
// listen; from such events they still count and track agents.
func TestMetricsAndWallboardAreBare(t *testing.T) {
	f := newWebFixture(t, config.HTTP{})
	wanted := func(what string) {
		t.Helper()
		if want, full := f.core.Wanted("CUSTOM", "callcenter::info"); !want || full {
			t.Fatalf("%s: Wanted = %v, %v; want true, false", what, want, full)
		}
	}
	wanted("metrics")
	q := "3000@default"
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-start")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "bridge-agent-start", "CC-Member-Joined-Time", "1000",
		"CC-Agent-Answered-Time", "1012")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-start")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-end", "CC-Cause", "Cancel", "CC-Cancel-Reason", "BREAK_OUT",
		"CC-Member-Joined-Time", "1000", "CC-Member-Leaving-Time", "1003")
	if o := f.m.Outcome(q); o.Offered != 2 || o.Answered != 1 || o.Abandoned != 1 {
		t.Fatalf("outcome from bare events: %+v", o)
	}

	h := newHub(f.core, f.cc, f.m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.start()
	defer h.close()
	// The hub subscribes in its goroutine: fire until it has seen an agent
	// change (the deadline guards against a hang, it times nothing).
	deadline := time.Now().Add(10 * time.Second)
	for {
		wanted("metrics and wallboard")
		e := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info", Time: time.Unix(1_700_000_100, 0)}
		e.Add("CC-Agent", "1001")
		e.Add("CC-Action", "agent-state-change")
		e.Add("CC-Agent-State", "Waiting")
		f.core.Fire(e)
		h.mu.Lock()
		since := h.since["1001"]
		h.mu.Unlock()
		if since == 1_700_000_100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("wallboard never saw the bare agent-state-change")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPlainRunChannelEventsAreBare: the built-in subscribers of channel
// events (the `status` session counter, the metrics) read only the event
// name, so in a run without an event-socket client or CDR writer the
// channel events are wanted bare (built without channel data), and they
// still count.
func TestPlainRunChannelEventsAreBare(t *testing.T) {
	core := call.NewCore("test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	RegisterCommands(core, Deps{})
	NewMetrics(core, MetricsOptions{})
	for _, k := range []string{"CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"} {
		if want, full := core.Wanted(k, ""); !want || full {
			t.Errorf("%s: Wanted = %v, %v; want true, false", k, want, full)
		}
	}
	var got []*call.Event
	stop := core.Bus.ObserveBare(call.Kinds("CHANNEL_CREATE"), nil, func(e *call.Event) { got = append(got, e) })
	defer stop()
	ch := core.NewChannel(call.ChannelSpec{Name: "sofia/internal/1001@x", Direction: call.Inbound})
	if len(got) != 1 || got[0].Get("Unique-ID") != "" || got[0].Get("variable_uuid") != "" {
		t.Errorf("CHANNEL_CREATE for bare subscribers: %v", got)
	}
	if s := api(core, "status"); !strings.Contains(s, "1 session(s) since startup\n1 session(s) - peak 1\n") {
		t.Errorf("status: %q", s)
	}
	ch.Hangup(call.NormalClearing)
	if s := api(core, "status"); !strings.Contains(s, "1 session(s) since startup\n0 session(s) - peak 1\n") {
		t.Errorf("status after hangup: %q", s)
	}
}
