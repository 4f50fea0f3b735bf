package api

import (
	"context"
	"strings"
	"sync"
	"testing"

	"ccpbx/call"
)

// answeringEndpoint answers every leg at once, or fails with its cause.
type answeringEndpoint struct {
	core  *call.Core
	fail  call.Cause
	mu    sync.Mutex
	calls []map[string]string
}

func (e *answeringEndpoint) Dial(_ context.Context, target string, vars map[string]string, _ *call.OriginateOptions) (*call.Channel, error) {
	e.mu.Lock()
	e.calls = append(e.calls, vars)
	e.mu.Unlock()
	if e.fail != call.CauseNone {
		return nil, e.fail
	}
	ch := e.core.NewChannel(call.ChannelSpec{Name: "test/" + target, Direction: call.Outbound, Vars: vars})
	ch.MarkAnswered()
	return ch, nil
}

func TestOriginate(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	ep := &answeringEndpoint{core: core}
	core.RegisterEndpoint("test", ep)

	ran := make(chan string, 1)
	core.RegisterApp("record_args", func(_ context.Context, ch *call.Channel, data string) error {
		ran <- ch.UUID() + " " + data
		return nil
	})
	routed := make(chan string, 1)
	core.SetRouter(func(_ context.Context, ch *call.Channel) error {
		routed <- ch.Var("destination_number") + "@" + ch.Var("context")
		return nil
	})

	t.Run("application", func(t *testing.T) {
		got := api(core, "originate {ignore_early_media=true}test/1001 &record_args(a b c) XML default 'Queue Test' 5550001 30")
		id, ok := strings.CutPrefix(got, "+OK ")
		if !ok || !strings.HasSuffix(id, "\n") {
			t.Fatalf("reply %q", got)
		}
		id = strings.TrimSuffix(id, "\n")
		if r := <-ran; r != id+" a b c" {
			t.Fatalf("app ran as %q", r)
		}
		ep.mu.Lock()
		vars := ep.calls[len(ep.calls)-1]
		ep.mu.Unlock()
		if vars["origination_caller_id_name"] != "Queue Test" || vars["origination_caller_id_number"] != "5550001" || vars["ignore_early_media"] != "true" {
			t.Errorf("leg vars %v", vars)
		}
		// The leg is hung up once the application returns.
		if ch, ok := core.Channel(id); ok {
			<-ch.Done()
		}
	})
	t.Run("extension", func(t *testing.T) {
		got := api(core, "originate test/1002 3000 XML blueivr")
		if !strings.HasPrefix(got, "+OK ") {
			t.Fatalf("reply %q", got)
		}
		if r := <-routed; r != "3000@blueivr" {
			t.Fatalf("routed to %q", r)
		}
		api(core, "originate test/1002 300")
		if r := <-routed; r != "300@default" {
			t.Fatalf("default context: routed to %q", r)
		}
		// '' holds the dialplan's place, as in FreeSWITCH; ccpbx used to
		// drop it and take the context for the dialplan.
		api(core, "originate test/1002 3000 '' blueivr")
		if r := <-routed; r != "3000@blueivr" {
			t.Fatalf("empty dialplan argument: routed to %q", r)
		}
	})
	t.Run("groups keep their blanks", func(t *testing.T) {
		got := api(core, "originate {a=b c}[d='e f']test/1003 &record_args(x  y)")
		if !strings.HasPrefix(got, "+OK ") {
			t.Fatalf("reply %q", got)
		}
		if r := <-ran; !strings.HasSuffix(r, " x  y") {
			t.Fatalf("app ran as %q", r)
		}
		ep.mu.Lock()
		vars := ep.calls[len(ep.calls)-1]
		ep.mu.Unlock()
		if vars["a"] != "b c" || vars["d"] != "e f" {
			t.Errorf("leg vars %v", vars)
		}
	})
	t.Run("failures", func(t *testing.T) {
		cases := map[string]string{
			"originate":                                     originateUsage,
			"originate test/1001":                           originateUsage,
			"originate test/1001 &nosuchapp()":              "-ERR INVALID_APPLICATION\n",
			"originate test/1001 &record_args(x":            originateUsage,
			"originate error/user_busy 3000":                "-ERR USER_BUSY\n",
			"originate nowhere/1001 3000":                   "-ERR INVALID_GATEWAY\n",
			"originate test/1001 3000 XML default a b zero": originateUsage,
		}
		for in, want := range cases {
			if got := api(core, in); got != want {
				t.Errorf("%s: got %q, want %q", in, got, want)
			}
		}
		ep.fail = call.NoAnswer
		if got := api(core, "originate test/1001 3000"); got != "-ERR NO_ANSWER\n" {
			t.Errorf("no answer: %q", got)
		}
	})
}
