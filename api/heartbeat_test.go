package api

import (
	"context"
	"testing"
	"time"

	"ccpbx/call"
)

// TestHeartbeat: HEARTBEAT carries FreeSWITCH's status headers and fires
// on its interval until the context ends.
func TestHeartbeat(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	cmds := RegisterCommands(core, Deps{Version: "1.0.0-test", Started: testNow.Add(-90 * time.Second)})
	ch := core.NewChannel(call.ChannelSpec{Name: "sofia/internal/1001@x", Direction: call.Inbound})
	defer ch.Hangup(call.NormalClearing)
	beats, cancel := core.Bus.Subscribe(4, func(e *call.Event) bool { return e.Name == "HEARTBEAT" })
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { cmds.RunHeartbeat(ctx, time.Millisecond); close(done) }()
	e := <-beats
	stop()
	<-done
	for k, want := range map[string]string{
		"Event-Info": "System Ready", "FreeSWITCH-Version": "1.0.0-test", "Uptime-msec": "90000",
		"Session-Count": "1", "Up-Time": "0 years, 0 days, 0 hours, 1 minute, 30 seconds, 0 milliseconds, 0 microseconds",
	} {
		if got := e.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}
