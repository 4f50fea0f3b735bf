package call

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
)

// isChannelHeader reports whether a header is channel data (what
// AppendHeaders adds), not the envelope or the event's own.
func isChannelHeader(name string) bool {
	for _, p := range []string{"Channel-", "Caller-", "Other-Leg-", "Other-Type", "variable_", "Unique-ID",
		"Call-Direction", "Presence-Call-Direction", "Answer-State", "Hangup-Cause"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// runLeg takes an inbound leg through an app, answer, DTMF, hold, a bridge
// and hangup, firing every kind of channel event.
func runLeg(t *testing.T, c *Core) (a, b *Channel) {
	t.Helper()
	m := &digitMedia{}
	a = c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@x", Direction: Inbound, Media: m, Signalling: &fakeSig{},
		Vars: map[string]string{"caller_id_number": "1001", "destination_number": "3000"}})
	c.RegisterApp("answer", func(_ context.Context, ch *Channel, _ string) error { return ch.Answer() })
	a.SetRunState(CSRouting)
	if err := c.Execute(context.Background(), a, "answer", ""); err != nil {
		t.Fatal(err)
	}
	m.fn('5')
	a.MarkHeld(true)
	a.MarkHeld(false)
	return a, bridgeThenHangup(t, c, a)
}

// bridgeThenHangup bridges a to a new answered outbound leg (1002) and,
// once CHANNEL_BRIDGE is out, hangs a up and waits for the bridge to end.
func bridgeThenHangup(t *testing.T, c *Core, a *Channel) (b *Channel) {
	t.Helper()
	b = c.NewChannel(ChannelSpec{Name: "sofia/internal/1002@x", Direction: Outbound, Media: &fakeMedia{}, Signalling: &fakeSig{}})
	b.MarkRinging(false)
	b.MarkAnswered()
	bridged, stop := c.Bus.SubscribeBare(1, Kinds("CHANNEL_BRIDGE"), nil)
	defer stop()
	done := make(chan error)
	go func() { done <- c.Bridge(a, b) }()
	<-bridged
	a.Hangup(NormalClearing)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return b
}

// ownHeaders are the headers each kind of channel event has of its own
// (after the channel data when full).
var ownHeaders = map[string][]string{
	"CHANNEL_CALLSTATE":        {"Original-Channel-Call-State", "Channel-Call-State-Number"},
	"CHANNEL_BRIDGE":           {"Bridge-A-Unique-ID", "Bridge-B-Unique-ID"},
	"CHANNEL_UNBRIDGE":         {"Bridge-A-Unique-ID", "Bridge-B-Unique-ID"},
	"CHANNEL_EXECUTE":          {"Application"},
	"CHANNEL_EXECUTE_COMPLETE": {"Application", "Application-Response"},
	"DTMF":                     {"DTMF-Digit", "DTMF-Duration", "DTMF-Source"},
}

var channelKinds = []string{"CHANNEL_CREATE", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "CHANNEL_EXECUTE",
	"CHANNEL_EXECUTE_COMPLETE", "CHANNEL_ANSWER", "CHANNEL_PROGRESS", "DTMF", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
	"CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}

// TestBareChannelEvents: when only bare subscribers want a kind of
// channel event, it is built without the channel data (the envelope and
// its own headers only); with a full subscriber beside them, both get the
// one full event, channel data and all.
func TestBareChannelEvents(t *testing.T) {
	// Events are fired from the test's goroutine and Bridge's.
	collectAll := func(subscribe func(fn func(*Event)) func()) (got func() []*Event) {
		var mu sync.Mutex
		var events []*Event
		stop := subscribe(func(e *Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		})
		t.Cleanup(stop)
		return func() []*Event {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(events)
		}
	}
	kinds := Kinds(channelKinds...)

	t.Run("bare only", func(t *testing.T) {
		c := newTestCore(t)
		bare := collectAll(func(fn func(*Event)) func() { return c.Bus.ObserveBare(kinds, nil, fn) })
		runLeg(t, c)
		seen := map[string]bool{}
		for _, e := range bare() {
			seen[e.Name] = true
			if e.Channel == nil || !strings.HasPrefix(e.Channel.Name(), "sofia/internal/100") {
				t.Errorf("bare %s: Channel %v, want the leg it is about", e.Name, e.Channel)
			}
			for _, h := range e.Headers {
				if isChannelHeader(h.Name) && !slices.Contains(ownHeaders[e.Name], h.Name) {
					t.Errorf("%s built for bare subscribers has channel header %s", e.Name, h.Name)
				}
			}
			for _, h := range ownHeaders[e.Name] {
				if e.Get(h) == "" {
					t.Errorf("bare %s lacks its own header %s", e.Name, h)
				}
			}
			if e.Get("Event-Name") != e.Name || e.Get("Core-UUID") != c.UUID || e.Get("Event-Sequence") == "" {
				t.Errorf("bare %s lacks the envelope: %v", e.Name, e.Headers)
			}
		}
		for _, k := range channelKinds {
			if !seen[k] {
				t.Errorf("no %s event", k)
			}
		}
	})

	t.Run("bare and full", func(t *testing.T) {
		c := newTestCore(t)
		bare := collectAll(func(fn func(*Event)) func() { return c.Bus.ObserveBare(kinds, nil, fn) })
		full := collectAll(func(fn func(*Event)) func() { return c.Bus.ObserveKinds(kinds, nil, fn) })
		a, b := runLeg(t, c)
		// The same events (by identity; the two goroutines' events may
		// interleave differently in the two lists).
		bySeq := func(a, b *Event) int { return int(a.Seq) - int(b.Seq) }
		if !slices.Equal(slices.SortedFunc(slices.Values(bare()), bySeq), slices.SortedFunc(slices.Values(full()), bySeq)) {
			t.Fatalf("bare and full subscribers got different events (%d, %d)", len(bare()), len(full()))
		}
		for _, e := range full() {
			leg := a
			if e.Get("Unique-ID") == b.UUID() {
				leg = b
			}
			for _, h := range []string{"Unique-ID", "Channel-Name", "Channel-State", "Caller-Unique-ID",
				"Caller-Channel-Created-Time", "variable_uuid", "variable_direction"} {
				if e.Get(h) == "" {
					t.Errorf("full %s lacks %s", e.Name, h)
				}
			}
			if e.Get("Unique-ID") != leg.UUID() || e.Get("variable_channel_name") != leg.Name() {
				t.Errorf("full %s is about %s", e.Name, e.Get("Unique-ID"))
			}
			for _, h := range ownHeaders[e.Name] {
				if e.Get(h) == "" {
					t.Errorf("full %s lacks its own header %s", e.Name, h)
				}
			}
		}
		// The bridge events carry the other leg's profile.
		for _, e := range full() {
			if e.Name == "CHANNEL_BRIDGE" && e.Get("Other-Leg-Unique-ID") != b.UUID() {
				t.Errorf("full CHANNEL_BRIDGE: Other-Leg-Unique-ID %q, want %q", e.Get("Other-Leg-Unique-ID"), b.UUID())
			}
		}
	})
}

// TestChannelHeadersMax: the channel data before the variables stays
// within channelHeadersMax (appendHeaders copies the variables behind that
// room before writing the blocks) with every field of both profiles set,
// and the variables come out whole, in order, after the blocks.
func TestChannelHeadersMax(t *testing.T) {
	c := newTestCore(t)
	vars := map[string]string{}
	for _, k := range profileVars {
		vars[k] = "v-" + k
	}
	a := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@x", Direction: Inbound, Media: &fakeMedia{}, Vars: vars})
	b := c.NewChannel(ChannelSpec{Name: "sofia/internal/1002@x", Direction: Inbound, Media: &fakeMedia{}, Vars: vars})
	for _, ch := range []*Channel{a, b} {
		ch.MarkRinging(false)
		ch.MarkRinging(true)
		ch.MarkAnswered()
		ch.MarkHeld(true)
		ch.MarkHeld(false)
	}
	a.setBridged(b, "originatee")
	b.setBridged(a, "originator")
	a.Hangup(NormalClearing)
	e := &Event{Name: "CUSTOM"}
	e.Add("Own-Before", "x")
	a.AppendHeaders(e)
	n := 0
	for _, h := range e.Headers[1:] {
		if strings.HasPrefix(h.Name, "variable_") {
			break
		}
		n++
	}
	if n > channelHeadersMax {
		t.Errorf("%d channel headers before the variables, channelHeadersMax is %d", n, channelHeadersMax)
	}
	if n < 80 {
		t.Errorf("only %d channel headers: a profile field is not set by the test", n)
	}
	if e.Headers[0].Name != "Own-Before" {
		t.Errorf("first header %v, want the event's own", e.Headers[0])
	}
	a.mu.Lock()
	want := make([]Header, len(a.vars))
	for i, v := range a.vars {
		want[i] = Header{"variable_" + v.Name, v.Value}
	}
	a.mu.Unlock()
	if got := e.Headers[1+n:]; !slices.Equal(got, want) {
		t.Errorf("variables\n got %v\nwant %v", got, want)
	}
}

// TestTimestampVariables: a leg's completion sets FreeSWITCH's timing
// variables under their names (spelt out, no longer concatenated), no
// more of them than timestampVars, in room allocated once.
func TestTimestampVariables(t *testing.T) {
	c := newTestCore(t)
	ch := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@x", Direction: Inbound, Media: &fakeMedia{},
		Vars: map[string]string{"caller_id_name": "Bob", "caller_id_number": "1001"}})
	ch.MarkRinging(false)
	ch.MarkRinging(true)
	ch.MarkAnswered()
	ch.mu.Lock()
	before := map[string]bool{}
	for _, v := range ch.vars {
		before[v.Name] = true
	}
	ch.mu.Unlock()
	ch.Hangup(NormalClearing)
	ch.mu.Lock()
	var added []string
	for _, v := range ch.vars {
		if !before[v.Name] {
			added = append(added, v.Name)
		}
	}
	ch.mu.Unlock()
	want := []string{"hangup_cause", "hangup_cause_q850",
		"start_stamp", "start_epoch", "start_uepoch", "answer_stamp", "answer_uepoch",
		"progress_stamp", "progress_epoch", "progress_uepoch",
		"progress_media_stamp", "progress_media_epoch", "progress_media_uepoch",
		"end_stamp", "end_epoch", "end_uepoch", "caller_id", "duration", "mduration", "uduration",
		"billsec", "billmsec", "billusec", "answersec", "answermsec", "answerusec",
		"progresssec", "progressmsec", "progressusec", "progress_mediasec", "progress_mediamsec", "progress_mediausec",
		"read_codec", "write_codec"}
	if !slices.Equal(added, want) {
		t.Errorf("variables added at hangup\n got %v\nwant %v", added, want)
	}
	if n := len(want) - 2; n > timestampVars { // hangup_cause* come before complete
		t.Errorf("complete adds %d variables, timestampVars is %d", n, timestampVars)
	}
}

// TestNewEventRoom: an event from NewEvent keeps one header list from its
// own headers through the channel data and the envelope: Fire finds room
// in front for the envelope instead of copying the list.
func TestNewEventRoom(t *testing.T) {
	c := newTestCore(t)
	var got *Event
	defer c.Bus.Observe(nil, func(e *Event) { got = e })()
	ch := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@x", Direction: Inbound,
		Vars: map[string]string{"caller_id_number": "1001"}})
	for _, full := range []bool{false, true} {
		e := NewEvent("CUSTOM", "callcenter::info", 3)
		if full {
			ch.AppendHeaders(e)
		}
		first := &e.Headers[:1][0]
		e.Add("CC-Queue", "q")
		e.Add("CC-Action", "member-queue-start")
		e.Add("CC-Member-UUID", "m")
		c.Fire(e)
		if got != e || &e.Headers[0] != first {
			t.Errorf("full=%v: the header list was reallocated", full)
		}
		if e.Headers[0].Name != "Event-Subclass" || e.Get("CC-Member-UUID") != "m" ||
			(e.Get("Unique-ID") == ch.UUID()) != full {
			t.Errorf("full=%v: headers %v", full, e.Headers)
		}
	}
}
