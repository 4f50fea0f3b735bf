package call

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestChannelVariables(t *testing.T) {
	c := newTestCore(t)
	ch := c.NewChannel(ChannelSpec{
		UUID: "u-1", Name: "sofia/internal/1001@127.0.0.1", Direction: Inbound,
		Vars: map[string]string{"caller_id_number": "1001", "empty": ""},
	})
	for name, want := range map[string]string{
		"uuid": "u-1", "channel_name": "sofia/internal/1001@127.0.0.1", "direction": "inbound", "caller_id_number": "1001",
	} {
		if got := ch.Var(name); got != want {
			t.Errorf("Var(%q) = %q, want %q", name, got, want)
		}
	}
	if _, ok := ch.LookupVar("empty"); ok {
		t.Error("an empty spec variable was set")
	}
	ch.SetVar("x", "1")
	if v, ok := ch.LookupVar("x"); !ok || v != "1" {
		t.Errorf("LookupVar(x) = %q, %v", v, ok)
	}
	ch.SetVar("x", "")
	if v, ok := ch.LookupVar("x"); ok {
		t.Errorf("SetVar(x, \"\") left x = %q set", v)
	}
	vars := ch.Vars()
	vars["uuid"] = "changed"
	if ch.Var("uuid") != "u-1" {
		t.Error("Vars returned the channel's own map, not a copy")
	}
	if got, ok := c.Channel("u-1"); !ok || got != ch {
		t.Error("Core.Channel does not find the new channel")
	}
	if ch.UUID() != "u-1" || ch.Name() != "sofia/internal/1001@127.0.0.1" || ch.Direction() != Inbound || ch.Core() != c {
		t.Error("accessors do not return the spec")
	}
}

func TestChannelGeneratesUUID(t *testing.T) {
	c := newTestCore(t)
	a := c.NewChannel(ChannelSpec{})
	b := c.NewChannel(ChannelSpec{})
	if a.UUID() == "" || a.UUID() == b.UUID() {
		t.Fatalf("uuids %q and %q", a.UUID(), b.UUID())
	}
	if got := c.Channels(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("Channels() = %v, want the two channels oldest first", got)
	}
}

func TestAnswerIdempotent(t *testing.T) {
	c := newTestCore(t)
	answers := collect(t, c, "CHANNEL_ANSWER")
	sig := &fakeSig{}
	ch := c.NewChannel(ChannelSpec{Direction: Inbound, Signalling: sig})
	if ch.Answered() || ch.State() != "DOWN" {
		t.Fatalf("new channel answered=%v state=%s", ch.Answered(), ch.State())
	}
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); ch.MarkAnswered() }()
	}
	wg.Wait()
	if sig.answers != 1 {
		t.Errorf("signalling answered %d times, want 1", sig.answers)
	}
	if n := len(answers()); n != 1 {
		t.Errorf("%d CHANNEL_ANSWER events, want 1", n)
	}
	if !ch.Answered() || ch.AnsweredAt().IsZero() || ch.Var("answer_epoch") == "" || ch.State() != "ACTIVE" {
		t.Errorf("after Answer: answered=%v epoch=%q state=%s", ch.Answered(), ch.Var("answer_epoch"), ch.State())
	}
}

func TestMarkAnsweredWithoutSignalling(t *testing.T) {
	c := newTestCore(t)
	answers := collect(t, c, "CHANNEL_ANSWER")
	ch := c.NewChannel(ChannelSpec{Direction: Outbound})
	ch.MarkAnswered()
	ch.MarkAnswered()
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	if n := len(answers()); n != 1 || !ch.Answered() {
		t.Fatalf("%d CHANNEL_ANSWER events, answered=%v", n, ch.Answered())
	}
}

func TestAnswerFailureAndAfterHangup(t *testing.T) {
	c := newTestCore(t)
	boom := errors.New("transport closed")
	sig := &fakeSig{answerErr: boom}
	ch := c.NewChannel(ChannelSpec{Direction: Inbound, Signalling: sig})
	if err := ch.Answer(); !errors.Is(err, boom) {
		t.Fatalf("Answer = %v, want %v", err, boom)
	}
	if ch.Answered() {
		t.Fatal("a failed answer marked the channel answered")
	}
	ch.Hangup(UserBusy)
	if err := ch.Answer(); err != UserBusy {
		t.Fatalf("Answer after hangup = %v, want USER_BUSY", err)
	}
	if err := ch.RingReady(); err != UserBusy {
		t.Fatalf("RingReady after hangup = %v, want USER_BUSY", err)
	}
	ch.MarkAnswered()
	if ch.Answered() {
		t.Fatal("MarkAnswered after hangup answered the channel")
	}
}

func TestRinging(t *testing.T) {
	tests := []struct {
		name  string
		ring  func(*Channel) error
		early bool
		event string
		state string
	}{
		{"RingReady", (*Channel).RingReady, false, "CHANNEL_PROGRESS", "RINGING"},
		{"PreAnswer", (*Channel).PreAnswer, true, "CHANNEL_PROGRESS_MEDIA", "EARLY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t)
			events := collect(t, c, tt.event)
			sig := &fakeSig{}
			ch := c.NewChannel(ChannelSpec{Direction: Inbound, Signalling: sig})
			if err := tt.ring(ch); err != nil {
				t.Fatal(err)
			}
			ch.MarkRinging(tt.early)
			if len(sig.rings) != 1 || sig.rings[0] != tt.early {
				t.Errorf("signalling rings = %v, want [%v]", sig.rings, tt.early)
			}
			if n := len(events()); n != 1 {
				t.Errorf("%d %s events, want 1", n, tt.event)
			}
			if ch.State() != tt.state {
				t.Errorf("State = %s, want %s", ch.State(), tt.state)
			}
			ch.Answer()
			if err := tt.ring(ch); err != nil || len(sig.rings) != 1 {
				t.Errorf("ringing an answered channel: err=%v rings=%v", err, sig.rings)
			}
		})
	}
}

func TestHangupFirstCauseWins(t *testing.T) {
	c := newTestCore(t)
	hangups := collect(t, c, "CHANNEL_HANGUP")
	sig := &fakeSig{}
	ch := c.NewChannel(ChannelSpec{Direction: Inbound, Signalling: sig})
	id := ch.UUID()
	ch.Hangup(UserBusy)
	ch.Hangup(NormalClearing)
	ch.Terminated(OriginatorCancel)
	if got := sig.hangupCauses(); len(got) != 1 || got[0] != UserBusy {
		t.Errorf("signalling hangups = %v, want [USER_BUSY]", got)
	}
	if ch.Cause() != UserBusy || ch.Var("hangup_cause") != "USER_BUSY" || ch.Var("hangup_cause_q850") != "17" {
		t.Errorf("cause=%s hangup_cause=%q q850=%q", ch.Cause(), ch.Var("hangup_cause"), ch.Var("hangup_cause_q850"))
	}
	select {
	case <-ch.Done():
	default:
		t.Error("Done not closed")
	}
	if ch.Context().Err() == nil {
		t.Error("Context not cancelled")
	}
	if ch.Ready() || ch.State() != "HANGUP" {
		t.Errorf("Ready=%v State=%s after hangup", ch.Ready(), ch.State())
	}
	if _, ok := c.Channel(id); ok {
		t.Error("hung-up channel still registered")
	}
	ev := hangups()
	if len(ev) != 1 {
		t.Fatalf("%d CHANNEL_HANGUP events, want 1", len(ev))
	}
	if ev[0].Get("Hangup-Cause") != "USER_BUSY" || ev[0].Get("Channel-Call-State") != "HANGUP" || ev[0].Get("Answer-State") != "hangup" {
		t.Errorf("CHANNEL_HANGUP headers %v", ev[0].Headers)
	}
}

func TestHangupDefaultsAndTerminated(t *testing.T) {
	tests := []struct {
		name   string
		end    func(*Channel)
		cause  Cause
		q850   string
		signal bool
	}{
		{"Hangup with no cause", func(ch *Channel) { ch.Hangup(CauseNone) }, NormalClearing, "16", true},
		{"Hangup NO_ANSWER", func(ch *Channel) { ch.Hangup(NoAnswer) }, NoAnswer, "19", true},
		{"Terminated sends nothing", func(ch *Channel) { ch.Terminated(CallRejected) }, CallRejected, "21", false},
		{"Terminated with no cause", func(ch *Channel) { ch.Terminated(CauseNone) }, NormalClearing, "16", false},
		// FreeSWITCH reports causes without a Q.850 code as 16.
		{"ORIGINATOR_CANCEL has no Q.850 code", func(ch *Channel) { ch.Terminated(OriginatorCancel) }, OriginatorCancel, "16", false},
		{"LOSE_RACE has no Q.850 code", func(ch *Channel) { ch.Hangup(LoseRace) }, LoseRace, "16", true},
		{"PICKED_OFF has no Q.850 code", func(ch *Channel) { ch.Hangup(PickedOff) }, PickedOff, "16", true},
		{"NORMAL_TEMPORARY_FAILURE", func(ch *Channel) { ch.Hangup(NormalTemporaryFailure) }, NormalTemporaryFailure, "41", true},
		{"Hangup after Terminated sends nothing", func(ch *Channel) { ch.Terminated(UserBusy); ch.Hangup(NoAnswer) }, UserBusy, "17", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t)
			sig := &fakeSig{}
			ch := c.NewChannel(ChannelSpec{Signalling: sig})
			tt.end(ch)
			if got := sig.hangupCauses(); (len(got) == 1) != tt.signal {
				t.Errorf("signalling hangups = %v, want sent=%v", got, tt.signal)
			}
			if ch.Cause() != tt.cause || ch.Var("hangup_cause") != string(tt.cause) || ch.Var("hangup_cause_q850") != tt.q850 {
				t.Errorf("cause=%s vars=%q/%q, want %s/%s", ch.Cause(), ch.Var("hangup_cause"), ch.Var("hangup_cause_q850"), tt.cause, tt.q850)
			}
			<-ch.Done()
		})
	}
}

// TestHangupConcurrent: a second Hangup while the first is still sending
// must not signal again, and the first cause is the one recorded.
func TestHangupConcurrent(t *testing.T) {
	c := newTestCore(t)
	sig := &fakeSig{entered: make(chan Cause, 4), gate: make(chan struct{})}
	ch := c.NewChannel(ChannelSpec{Signalling: sig})
	go ch.Hangup(UserBusy)
	if got := <-sig.entered; got != UserBusy {
		t.Fatalf("first signalled cause %s", got)
	}
	second := make(chan struct{})
	go func() { ch.Hangup(ManagerRequest); close(second) }()
	select {
	case <-second:
	case got := <-sig.entered:
		t.Errorf("second Hangup signalled again (%s)", got)
	}
	// The peer's BYE crossing ours must not replace the cause either.
	ch.Terminated(NormalClearing)
	close(sig.gate)
	<-ch.Done()
	if ch.Cause() != UserBusy || ch.Var("hangup_cause") != "USER_BUSY" {
		t.Errorf("cause = %s, want the first one, USER_BUSY", ch.Cause())
	}
	if n := len(sig.hangupCauses()); n != 1 {
		t.Errorf("signalling hung up %d times", n)
	}
}

func TestChannelEventHeaders(t *testing.T) {
	c := newTestCore(t)
	c.Clock = func() time.Time { return time.Unix(1700000000, 123456000) }
	ch := c.NewChannel(ChannelSpec{
		UUID: "abc", Name: "sofia/internal/1001@127.0.0.1", Direction: Inbound,
		Vars: map[string]string{
			"caller_id_name": "Alice", "caller_id_number": "1001", "destination_number": "300",
			"context": "default", "network_addr": "127.0.0.1", "username": "1001", "zeta": "z", "alpha": "a",
		},
	})
	ev := ch.Event("CHANNEL_PARK")
	want := map[string]string{
		"Channel-Call-State": "DOWN", "Channel-Name": "sofia/internal/1001@127.0.0.1", "Unique-ID": "abc",
		"Call-Direction": "inbound", "Answer-State": "ringing", "Caller-Direction": "inbound",
		"Caller-Username": "1001", "Caller-Caller-ID-Name": "Alice", "Caller-Caller-ID-Number": "1001",
		"Caller-Network-Addr": "127.0.0.1", "Caller-Destination-Number": "300", "Caller-Unique-ID": "abc",
		"Caller-Context": "default", "Caller-Channel-Name": "sofia/internal/1001@127.0.0.1",
		"Caller-Channel-Created-Time": "1700000000123456", "variable_alpha": "a", "variable_uuid": "abc",
	}
	for k, v := range want {
		if got := ev.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if ev.Get("Hangup-Cause") != "" {
		t.Error("Hangup-Cause on a live channel")
	}
	var vars []string
	for i, h := range ev.Headers {
		if strings.HasPrefix(h.Name, "variable_") {
			vars = append(vars, h.Name)
		} else if len(vars) > 0 {
			t.Errorf("header %d %s after the variables", i, h.Name)
		}
	}
	// FreeSWITCH lists variables in the order they were set: direction
	// and uuid first, the creator's variables, then channel_name.
	wantVars := []string{"variable_direction", "variable_uuid", "variable_alpha", "variable_caller_id_name",
		"variable_caller_id_number", "variable_context", "variable_destination_number", "variable_network_addr",
		"variable_username", "variable_zeta", "variable_channel_name"}
	if !slices.Equal(vars, wantVars) || len(vars) != len(ch.Vars()) {
		t.Errorf("variable headers %v\nwant %v", vars, wantVars)
	}
	if ev.Headers[0].Name != "Channel-State" || ev.Headers[1].Name != "Channel-Call-State" || ev.Headers[4].Name != "Unique-ID" {
		t.Errorf("channel headers start %v", ev.Headers[:5])
	}
	ch.MarkAnswered()
	if ev := ch.Event("X"); ev.Get("Channel-Call-State") != "ACTIVE" || ev.Get("Answer-State") != "answered" {
		t.Errorf("answered channel headers: %s/%s", ev.Get("Channel-Call-State"), ev.Get("Answer-State"))
	}
}

// TestLateSignallingAndMedia: sip attaches the protocol side and the media
// after creating the channel; the core must then use them.
func TestLateSignallingAndMedia(t *testing.T) {
	c := newTestCore(t)
	c.Clock = func() time.Time { return time.Unix(1700000000, 0) }
	ch := c.NewChannel(ChannelSpec{})
	if ch.Media() != nil || !ch.Created().Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("media %v created %v", ch.Media(), ch.Created())
	}
	sig, m := &fakeSig{}, &fakeMedia{}
	ch.SetSignalling(sig)
	ch.SetMedia(m)
	if ch.Media() != m {
		t.Error("SetMedia not kept")
	}
	if err := ch.Answer(); err != nil || sig.answers != 1 {
		t.Errorf("Answer = %v, signalling answers %d", err, sig.answers)
	}
	ch.Hangup(NormalClearing)
	if got := sig.hangupCauses(); len(got) != 1 {
		t.Errorf("signalling hangups %v", got)
	}
}

func TestNewCoreDefaults(t *testing.T) {
	c := NewCore("h", nil)
	if c.Log == nil || c.UUID == "" || c.Hostname != "h" || c.Now().IsZero() {
		t.Fatalf("NewCore defaults: %+v", c)
	}
}
