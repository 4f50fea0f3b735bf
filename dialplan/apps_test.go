package dialplan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/guard"
)

func runActions(t *testing.T, vars map[string]string, actions ...string) (*harness, *call.Channel) {
	t.Helper()
	h := newHarness(t, singleContext("default", ext("e", cond("", "", actions...))), Options{})
	if vars == nil {
		vars = map[string]string{}
	}
	vars["context"] = "default"
	return h, h.call(vars)
}

func TestAnswerRingPreAnswer(t *testing.T) {
	h, ch := runActions(t, nil, "ring_ready", "pre_answer", "answer", "answer")
	want := []string{"180", "183", "200", "hangup NORMAL_CLEARING"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	if ch.Var("answer_epoch") == "" {
		t.Error("answer not recorded on the channel")
	}
}

func TestHangupCauses(t *testing.T) {
	for data, want := range map[string]call.Cause{
		"": call.NormalClearing, "USER_BUSY": call.UserBusy, "call_rejected": call.CallRejected,
		"17": call.UserBusy, "NOT_A_CAUSE": call.NormalClearing,
	} {
		_, ch := runActions(t, nil, strings.TrimSpace("hangup "+data))
		if ch.Cause() != want {
			t.Errorf("hangup %q: cause %s, want %s", data, ch.Cause(), want)
		}
	}
}

func TestPlaybackPreAnswersFirst(t *testing.T) {
	h, _ := runActions(t, nil, "playback /s/one.wav", "answer", "playback /s/two.wav")
	want := []string{"183", "play /s/one.wav", "200", "play /s/two.wav", "hangup NORMAL_CLEARING"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
}

func TestPlaybackFailureGoesOn(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("", "", "answer", "playback gone.wav", "rec ${playback_last_status}"))), Options{})
	ch, m := h.channel(map[string]string{"context": "default"})
	m.missing = map[string]bool{"gone.wav": true}
	if err := h.dp.Route(ch.Context(), ch); err != nil {
		t.Fatal(err)
	}
	if got := h.rec.all(); !slices.Contains(got, "rec FILE NOT FOUND") {
		t.Errorf("saw %q", got)
	}
	ch.Hangup(call.NormalClearing)
}

func TestSleep(t *testing.T) {
	h, _ := runActions(t, nil, "sleep 5", "rec slept", "sleep nonsense", "rec after")
	if got, want := h.rec.all(), []string{"rec slept", "rec after", "hangup NORMAL_CLEARING"}; !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
}

func TestSleepEndsAtHangup(t *testing.T) {
	h := newHarness(t, singleContext("default", ext("e", cond("", "", "rec sleeping", "sleep 3600000", "rec after"))), Options{})
	ch, _ := h.channel(map[string]string{"context": "default"})
	h.core.Route(ch)
	// The caller leaves as the sleep starts (or just before: it must end
	// either way, since the sleep is an hour).
	h.rec.waitSaw(t, "rec sleeping")
	ch.Terminated(call.OriginatorCancel)
	select {
	case <-ch.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no hangup")
	}
	// The dialplan goroutine is done once Shutdown returns (harness cleanup),
	// and it must not have run the next action.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.core.Shutdown(ctx)
	if slices.Contains(h.rec.all(), "rec after") {
		t.Error("ran an action after hangup")
	}
}

func TestSetUnsetExport(t *testing.T) {
	h, ch := runActions(t, nil,
		"set a=1", "set b=x=y", "set c=gone", "set c", "set d=gone", "unset d",
		"export e=5", "export e=6", "export nolocal:f=7",
		"rec a=${a} b=${b} c=${c} d=${d} e=${e} f=${f} ev=${export_vars}")
	want := "rec a=1 b=x=y c= d= e=6 f= ev=e,f"
	if got := h.rec.all(); got[0] != want {
		t.Errorf("saw %q, want %q", got[0], want)
	}
	if got := exportedVars(ch); !maps.Equal(got, map[string]string{"e": "6", "f": "7"}) {
		t.Errorf("exported %v", got)
	}
}

func TestLogLevels(t *testing.T) {
	// Logging must accept any text without failing the call.
	h, ch := runActions(t, nil, "log ALERT ==== [3000] test ==== ", "log just words", "log", "log DEBUG", "rec done")
	if got := h.rec.all(); got[0] != "rec done" || ch.Cause() != call.NormalClearing {
		t.Errorf("saw %q, cause %s", got, ch.Cause())
	}
}

// fakeEndpoint places B legs for "fake/<behaviour>" dial strings.
type fakeEndpoint struct {
	h *harness

	mu    sync.Mutex
	vars  []map[string]string
	calls []string
	legs  []*call.Channel
}

func (e *fakeEndpoint) Dial(ctx context.Context, target string, vars map[string]string, o *call.OriginateOptions) (*call.Channel, error) {
	e.mu.Lock()
	e.vars = append(e.vars, maps.Clone(vars))
	e.calls = append(e.calls, target)
	e.mu.Unlock()
	switch target {
	case "busy":
		o.OnRing(nil, false)
		return nil, call.UserBusy
	case "noanswer":
		<-ctx.Done()
		return nil, call.NoAnswer
	}
	b := e.h.core.NewChannel(call.ChannelSpec{
		Name: "fake/" + target, Direction: call.Outbound, Vars: vars,
		Media: &fakeMedia{rec: e.h.rec, name: "B"}, Log: quietLog(),
	})
	e.mu.Lock()
	e.legs = append(e.legs, b)
	e.mu.Unlock()
	o.OnRing(b, target == "early")
	b.MarkAnswered()
	return b, nil
}

// hangupBOnBridge ends every bridged B leg with cause once it is bridged.
func hangupBOnBridge(h *harness, cause call.Cause) func() {
	events, cancel := h.core.Bus.Subscribe(16, func(e *call.Event) bool { return e.Name == "CHANNEL_BRIDGE" })
	go func() {
		for e := range events {
			if b, ok := h.core.Channel(e.Get("Bridge-B-Unique-ID")); ok {
				b.Hangup(cause)
			}
		}
	}()
	return cancel
}

func bridgeHarness(t *testing.T, actions ...string) (*harness, *fakeEndpoint) {
	h := newHarness(t, singleContext("default", ext("e", cond("destination_number", `^(\w+)$`, actions...))), Options{})
	ep := &fakeEndpoint{h: h}
	h.core.RegisterEndpoint("fake", ep)
	return h, ep
}

func TestBridgeAnswersBridgesAndHangsUpAfter(t *testing.T) {
	h, ep := bridgeHarness(t, "set call_timeout=30", "set hangup_after_bridge=true", "export team=blue",
		"set effective_caller_id_name=Extension 1001", "bridge fake/$1", "rec after")
	defer hangupBOnBridge(h, call.NormalClearing)()
	ch := h.call(map[string]string{"context": "default", "destination_number": "ok",
		"caller_id_name": "Phone", "caller_id_number": "1001"})
	want := []string{"180", "200", "relay A<->B", "unrelay A<->B", "hangup NORMAL_CLEARING"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	if ch.Cause() != call.NormalClearing || ch.Var("originate_disposition") != "SUCCESS" {
		t.Errorf("cause %s, disposition %q", ch.Cause(), ch.Var("originate_disposition"))
	}
	got := ep.vars[0]
	for k, v := range map[string]string{"origination_caller_id_name": "Extension 1001",
		"origination_caller_id_number": "1001", "team": "blue", "call_timeout": "30"} {
		if got[k] != v {
			t.Errorf("B leg var %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if ep.calls[0] != "ok" {
		t.Errorf("dialled %q", ep.calls)
	}
}

func TestBridgeWithoutHangupAfterBridgeGoesOn(t *testing.T) {
	h, _ := bridgeHarness(t, "bridge fake/ok", "rec after ${last_bridge_hangup_cause}")
	defer hangupBOnBridge(h, call.UserBusy)()
	h.call(map[string]string{"context": "default", "destination_number": "x"})
	if got := h.rec.all(); !slices.Contains(got, "rec after USER_BUSY") {
		t.Errorf("saw %q", got)
	}
}

func TestBridgeFailureHangsUpCallerWithCause(t *testing.T) {
	h, _ := bridgeHarness(t, "bridge fake/busy", "rec after")
	ch := h.call(map[string]string{"context": "default", "destination_number": "x"})
	if ch.Cause() != call.UserBusy {
		t.Errorf("cause %s, want USER_BUSY", ch.Cause())
	}
	if got, want := h.rec.all(), []string{"180", "hangup USER_BUSY"}; !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	if ch.Var("originate_disposition") != "USER_BUSY" {
		t.Errorf("originate_disposition %q", ch.Var("originate_disposition"))
	}
}

func TestBridgeContinueOnFail(t *testing.T) {
	for _, v := range []string{"true", "NO_ANSWER,USER_BUSY", "19,17"} {
		h, _ := bridgeHarness(t, "set continue_on_fail="+v, "bridge fake/busy", "rec after ${originate_disposition}")
		h.call(map[string]string{"context": "default", "destination_number": "x"})
		if got := h.rec.all(); !slices.Contains(got, "rec after USER_BUSY") {
			t.Errorf("continue_on_fail=%s: saw %q", v, got)
		}
	}
	h, _ := bridgeHarness(t, "set continue_on_fail=NO_ANSWER", "bridge fake/busy", "rec after")
	ch := h.call(map[string]string{"context": "default", "destination_number": "x"})
	if ch.Cause() != call.UserBusy || slices.Contains(h.rec.all(), "rec after") {
		t.Errorf("continue_on_fail=NO_ANSWER on USER_BUSY: cause %s, saw %q", ch.Cause(), h.rec.all())
	}
}

func TestBridgeNoAnswerTimesOut(t *testing.T) {
	h, _ := bridgeHarness(t, "set continue_on_fail=true", "bridge [leg_timeout=1]fake/noanswer", "rec ${originate_disposition}")
	h.call(map[string]string{"context": "default", "destination_number": "x"})
	if got := h.rec.all(); !slices.Contains(got, "rec NO_ANSWER") {
		t.Errorf("saw %q", got)
	}
}

func TestBridgeEarlyMediaRelayedUntilAnswer(t *testing.T) {
	h, _ := bridgeHarness(t, "set hangup_after_bridge=true", "bridge fake/early")
	defer hangupBOnBridge(h, call.NormalClearing)()
	h.call(map[string]string{"context": "default", "destination_number": "x"})
	want := []string{"183", "relay A<->B", "unrelay A<->B", "200", "relay A<->B", "unrelay A<->B", "hangup NORMAL_CLEARING"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q, want %q", got, want)
	}
	// With ignore_early_media the caller only hears ringing.
	h, _ = bridgeHarness(t, "set ignore_early_media=true", "set hangup_after_bridge=true", "bridge fake/early")
	defer hangupBOnBridge(h, call.NormalClearing)()
	h.call(map[string]string{"context": "default", "destination_number": "x"})
	want = []string{"180", "200", "relay A<->B", "unrelay A<->B", "hangup NORMAL_CLEARING"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("ignore_early_media: saw %q, want %q", got, want)
	}
}

func TestBridgeCallerHangsUpFirst(t *testing.T) {
	h, ep := bridgeHarness(t, "bridge fake/ok")
	events, cancel := h.core.Bus.Subscribe(16, func(e *call.Event) bool { return e.Name == "CHANNEL_BRIDGE" })
	defer cancel()
	ch, _ := h.channel(map[string]string{"context": "default", "destination_number": "x"})
	h.core.Route(ch)
	select {
	case <-events:
	case <-time.After(5 * time.Second):
		t.Fatal("no bridge")
	}
	ch.Terminated(call.NormalClearing) // the caller's BYE
	b := ep.legs[0]
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("B leg not hung up after the caller left")
	}
	if b.Cause() != call.NormalClearing {
		t.Errorf("B cause %s", b.Cause())
	}
}

type echoMedia struct {
	*fakeMedia
}

func (e echoMedia) Echo() (func(), error) {
	e.rec.add("echo on")
	return func() { e.rec.add("echo off") }, nil
}

func TestEcho(t *testing.T) {
	for _, withEcho := range []bool{false, true} {
		h := newHarness(t, singleContext("default", ext("e", cond("", "", "echo"))), Options{})
		m := &fakeMedia{rec: h.rec, name: "A"}
		var media call.Media = m
		if withEcho {
			media = echoMedia{m}
		}
		ch := h.core.NewChannel(call.ChannelSpec{Direction: call.Inbound, Vars: map[string]string{"context": "default"},
			Signalling: fakeSig{h.rec}, Media: media, Log: quietLog()})
		done := make(chan error, 1)
		go func() { done <- h.dp.Route(ch.Context(), ch) }()
		last := "200"
		if withEcho {
			last = "echo on"
		}
		h.rec.waitSaw(t, last)
		ch.Terminated(call.NormalClearing)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("echo did not end at hangup")
		}
		got := h.rec.all()
		want := []string{"200"}
		if withEcho {
			want = []string{"200", "echo on", "echo off"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("echo (Echoer=%v): saw %q, want %q", withEcho, got, want)
		}
	}
}

// TestLogLevelMapping: FreeSWITCH levels onto slog. ALERT, which the
// article's dialplan logs on every queue call as a banner, is INFO; only
// ERR and CRIT reach the error stream.
func TestLogLevelMapping(t *testing.T) {
	for word, want := range map[string]slog.Level{
		"CONSOLE": slog.LevelInfo, "ALERT": slog.LevelInfo, "CRIT": slog.LevelError, "ERR": slog.LevelError,
		"WARNING": slog.LevelWarn, "NOTICE": slog.LevelInfo, "INFO": slog.LevelInfo, "DEBUG": slog.LevelDebug,
		"alert": slog.LevelInfo,
	} {
		if got, ok := parseLevel(word); !ok || got != want {
			t.Errorf("%s -> %v %v, want %v", word, got, ok, want)
		}
	}
	if _, ok := parseLevel("words"); ok {
		t.Error("a word that is no level parsed as one")
	}
}

// TestFailureLevel: a missing file or one outside the folders fails every
// call the same way and is an ERROR; other failures are WARN.
func TestFailureLevel(t *testing.T) {
	for _, c := range []struct {
		err  error
		want slog.Level
	}{
		{fmt.Errorf("lua x.lua: %w", fs.ErrNotExist), slog.LevelError},
		{fmt.Errorf("media: sound refused: %w", guard.ErrOutside), slog.LevelError},
		{errors.New("bridge: no answer"), slog.LevelWarn},
	} {
		if got := failureLevel(c.err); got != c.want {
			t.Errorf("%v -> %v, want %v", c.err, got, c.want)
		}
	}
}
