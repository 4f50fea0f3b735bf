package dialplan

import (
	"context"
	"slices"
	"sync"
	"testing"

	"ccpbx/call"
	"ccpbx/config"
)

// shipped routes calls through the repository's config.toml dialplans with
// fake callcenter_config API and callcenter app standing in for acd.
type shipped struct {
	*harness
	mu      sync.Mutex
	apiArgs []string
	ccData  []string
	ccName  []string
}

func newShipped(t *testing.T) *shipped {
	t.Helper()
	cfg, err := config.Load("../config.toml")
	if err != nil {
		t.Fatalf("load config.toml: %v", err)
	}
	h := newHarness(t, cfg.Dialplan, Options{ScriptsDir: "../scripts", Globals: cfg.Vars})
	s := &shipped{harness: h}
	h.core.RegisterAPI("callcenter_config", "fake acd", func(_ context.Context, args string, _ *call.Channel) string {
		s.mu.Lock()
		s.apiArgs = append(s.apiArgs, args)
		s.mu.Unlock()
		return "+OK\n"
	})
	h.core.RegisterApp("callcenter", func(_ context.Context, ch *call.Channel, data string) error {
		s.mu.Lock()
		s.ccData = append(s.ccData, data)
		s.ccName = append(s.ccName, ch.Var("caller_id_name"))
		s.mu.Unlock()
		return nil
	})
	return s
}

func TestShippedAgentLogin(t *testing.T) {
	for _, tc := range []struct {
		dest, status, prompt string
	}{
		{"300", "'Available'", "sounds/ivr/common/ivr-you_are_now_logged_in.wav"},
		{"301", "'Logged Out'", "sounds/ivr/common/ivr-you_are_now_logged_out.wav"},
	} {
		t.Run(tc.dest, func(t *testing.T) {
			s := newShipped(t)
			ch := s.call(map[string]string{"context": "default", "destination_number": tc.dest,
				"caller_id_number": "1001", "caller_id_name": "Extension 1001"})
			if want := []string{"agent set status 1001 " + tc.status}; !slices.Equal(s.apiArgs, want) {
				t.Errorf("callcenter_config got %q, want %q", s.apiArgs, want)
			}
			want := []string{"200", "play " + tc.prompt, "hangup NORMAL_CLEARING"}
			if got := s.rec.all(); !slices.Equal(got, want) {
				t.Errorf("saw %q, want %q", got, want)
			}
			if ch.Cause() != call.NormalClearing {
				t.Errorf("cause %s", ch.Cause())
			}
			if ch.Var("res") != "+OK\n" || ch.Var("continue_on_fail") != "true" {
				t.Errorf("res=%q continue_on_fail=%q", ch.Var("res"), ch.Var("continue_on_fail"))
			}
		})
	}
}

func TestShippedQueueCallRunsLuaScript(t *testing.T) {
	s := newShipped(t)
	ch := s.call(map[string]string{"context": "blueivr", "destination_number": "3000",
		"caller_id_number": "5550001", "caller_id_name": "Caller 5550001"})
	if !slices.Equal(s.ccData, []string{"3000@default"}) {
		t.Errorf("callcenter app got %q, want [3000@default]", s.ccData)
	}
	if !slices.Equal(s.ccName, []string{"3000"}) {
		t.Errorf("caller_id_name while queued %q, want [3000]", s.ccName)
	}
	if ch.Var("caller_id_name") != "3000" {
		t.Errorf("caller_id_name = %q", ch.Var("caller_id_name"))
	}
	if ch.Cause() != call.NormalClearing {
		t.Errorf("cause %s", ch.Cause())
	}
}

func TestShippedUnknownNumberIsNoRoute(t *testing.T) {
	s := newShipped(t)
	for _, v := range []map[string]string{
		{"context": "default", "destination_number": "999"},
		{"context": "blueivr", "destination_number": "3001"},
	} {
		ch := s.call(v)
		if ch.Cause() != call.NoRouteDestination {
			t.Errorf("%v: cause %s, want NO_ROUTE_DESTINATION", v, ch.Cause())
		}
	}
	if got := s.rec.all(); !slices.Equal(got, []string{"hangup NO_ROUTE_DESTINATION", "hangup NO_ROUTE_DESTINATION"}) {
		t.Errorf("saw %q", got)
	}
}

func TestShippedTrunkCannotReachDefault(t *testing.T) {
	s := newShipped(t)
	ep := &fakeEndpoint{h: s.harness}
	s.core.RegisterEndpoint("user", ep)
	for _, dest := range []string{"300", "301", "1001", "1002"} {
		ch := s.call(map[string]string{"context": "blueivr", "destination_number": dest, "caller_id_number": "5550001"})
		if ch.Cause() != call.NoRouteDestination {
			t.Errorf("trunk call to %s: cause %s, want NO_ROUTE_DESTINATION", dest, ch.Cause())
		}
	}
	if len(s.apiArgs) != 0 || len(ep.calls) != 0 || len(s.ccData) != 0 {
		t.Errorf("trunk calls reached default: api %q, dialled %q, queued %q", s.apiArgs, ep.calls, s.ccData)
	}
}

func TestShippedExtensionCall(t *testing.T) {
	s := newShipped(t)
	ep := &fakeEndpoint{h: s.harness}
	s.core.RegisterEndpoint("user", ep)
	defer hangupBOnBridge(s.harness, call.NormalClearing)()
	ch := s.call(map[string]string{"context": "default", "destination_number": "1002",
		"caller_id_number": "1001", "effective_caller_id_name": "Extension 1001", "effective_caller_id_number": "1001"})
	if !slices.Equal(ep.calls, []string{"1002"}) {
		t.Fatalf("dialled %q, want [1002]", ep.calls)
	}
	if ep.vars[0]["call_timeout"] != "30" || ep.vars[0]["origination_caller_id_name"] != "Extension 1001" {
		t.Errorf("B leg vars %v", ep.vars[0])
	}
	want := []string{"180", "200", "relay A<->B", "unrelay A<->B", "hangup NORMAL_CLEARING"}
	if got := s.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	if ch.Cause() != call.NormalClearing {
		t.Errorf("cause %s", ch.Cause())
	}
}

func TestShippedExtensionCallBusy(t *testing.T) {
	s := newShipped(t)
	s.core.RegisterEndpoint("user", &busyEndpoint{})
	ch := s.call(map[string]string{"context": "default", "destination_number": "1002", "caller_id_number": "1001"})
	if ch.Cause() != call.UserBusy {
		t.Errorf("cause %s, want USER_BUSY (486 to the caller)", ch.Cause())
	}
}

type busyEndpoint struct{}

func (busyEndpoint) Dial(context.Context, string, map[string]string, *call.OriginateOptions) (*call.Channel, error) {
	return nil, call.UserBusy
}
