package call

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable time source for Core.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) set(t time.Time) {
	f.mu.Lock()
	f.t = t
	f.mu.Unlock()
}

// observeNames records the names of events as they are fired.
func observeNames(t *testing.T, c *Core) func() []string {
	var mu sync.Mutex
	var names []string
	cancel := c.Bus.Observe(nil, func(e *Event) {
		mu.Lock()
		names = append(names, e.Name)
		mu.Unlock()
	})
	t.Cleanup(cancel)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), names...)
	}
}

func TestHangupCompleteTimingVariables(t *testing.T) {
	c := newTestCore(t)
	clk := &fakeClock{t: time.Unix(1700000000, 900_000_000)}
	c.Clock = clk.now
	var got *Event
	stop := c.Bus.Observe(func(e *Event) bool { return e.Name == "CHANNEL_HANGUP_COMPLETE" }, func(e *Event) { got = e })
	defer stop()
	ch := c.NewChannel(ChannelSpec{UUID: "a1", Name: "sofia/internal/1001@127.0.0.1", Direction: Inbound,
		Signalling: &fakeSig{}, Media: &fakeMedia{},
		Vars: map[string]string{"caller_id_name": "Alice", "caller_id_number": "1001"}})
	clk.set(time.Unix(1700000001, 200_000_000))
	if err := ch.RingReady(); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Unix(1700000002, 100_000_000))
	if err := ch.Answer(); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Unix(1700000013, 50_000_000))
	ch.Hangup(NormalClearing)
	if got == nil {
		t.Fatal("no CHANNEL_HANGUP_COMPLETE for a leg nobody holds")
	}
	want := map[string]string{
		"Hangup-Cause":                       "NORMAL_CLEARING",
		"Channel-Call-State":                 "HANGUP",
		"Answer-State":                       "hangup",
		"Unique-ID":                          "a1",
		"Caller-Channel-Created-Time":        "1700000000900000",
		"Caller-Channel-Answered-Time":       "1700000002100000",
		"Caller-Channel-Progress-Time":       "1700000001200000",
		"Caller-Channel-Progress-Media-Time": "0",
		"Caller-Channel-Hangup-Time":         "1700000013050000",
		"variable_start_epoch":               "1700000000",
		"variable_start_uepoch":              "1700000000900000",
		"variable_answer_epoch":              "1700000002",
		"variable_answer_uepoch":             "1700000002100000",
		"variable_progress_epoch":            "1700000001",
		"variable_progress_media_epoch":      "0",
		"variable_end_epoch":                 "1700000013",
		"variable_end_uepoch":                "1700000013050000",
		"variable_start_stamp":               time.Unix(1700000000, 0).Local().Format("2006-01-02 15:04:05"),
		"variable_answer_stamp":              time.Unix(1700000002, 0).Local().Format("2006-01-02 15:04:05"),
		"variable_end_stamp":                 time.Unix(1700000013, 0).Local().Format("2006-01-02 15:04:05"),
		// Whole seconds are differences of whole-second epochs, as in
		// FreeSWITCH: 13-0 and 13-2, although 12.15 s and 10.95 s passed.
		"variable_duration":       "13",
		"variable_billsec":        "11",
		"variable_mduration":      "12150",
		"variable_billmsec":       "10950",
		"variable_uduration":      "12150000",
		"variable_billusec":       "10950000",
		"variable_answersec":      "2",
		"variable_progresssec":    "1",
		"variable_caller_id":      `"Alice" <1001>`,
		"variable_hangup_cause":   "NORMAL_CLEARING",
		"variable_read_codec":     "PCMU",
		"variable_write_codec":    "PCMU",
		"variable_caller_id_name": "Alice",
	}
	for k, v := range want {
		if g := got.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
	if got.Headers[0].Name != "Event-Name" || got.Headers[0].Value != "CHANNEL_HANGUP_COMPLETE" {
		t.Errorf("first header %v", got.Headers[0])
	}
}

func TestHangupCompleteUnansweredLeg(t *testing.T) {
	c := newTestCore(t)
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	c.Clock = clk.now
	var got *Event
	stop := c.Bus.Observe(func(e *Event) bool { return e.Name == "CHANNEL_HANGUP_COMPLETE" }, func(e *Event) { got = e })
	defer stop()
	ch, _ := newLeg(c, "sofia/internal/1002@127.0.0.1")
	clk.set(time.Unix(1700000007, 0))
	ch.Terminated(NoAnswer)
	if got == nil {
		t.Fatal("no CHANNEL_HANGUP_COMPLETE")
	}
	for k, v := range map[string]string{
		"variable_duration": "7", "variable_billsec": "0", "variable_answer_epoch": "0",
		"variable_answer_stamp": "", "Hangup-Cause": "NO_ANSWER", "Caller-Channel-Answered-Time": "0",
	} {
		if g := got.Get(k); g != v {
			t.Errorf("%s = %q, want %q", k, g, v)
		}
	}
}

// TestHangupCompleteWaitsForDialplan: the dialplan still runs after the
// caller hung up (an app notices and records why it left); the complete
// event waits for it and carries what it set, and it comes once, after
// CHANNEL_HANGUP.
func TestHangupCompleteWaitsForDialplan(t *testing.T) {
	c := newTestCore(t)
	names := observeNames(t, c)
	proceed := make(chan struct{})
	c.SetRouter(func(ctx context.Context, ch *Channel) error {
		<-ctx.Done()
		<-proceed
		ch.SetVar("cc_cause", "cancel")
		return nil
	})
	complete, cancel := c.Bus.Subscribe(4, func(e *Event) bool { return e.Name == "CHANNEL_HANGUP_COMPLETE" })
	defer cancel()
	destroyed, cancelDestroyed := c.Bus.Subscribe(4, func(e *Event) bool { return e.Name == "CHANNEL_DESTROY" })
	defer cancelDestroyed()
	ch := c.NewChannel(ChannelSpec{Direction: Inbound, Signalling: &fakeSig{}})
	if err := c.Route(ch); err != nil {
		t.Fatal(err)
	}
	ch.Terminated(NormalClearing)
	select {
	case e := <-complete:
		t.Fatalf("CHANNEL_HANGUP_COMPLETE while the dialplan runs: %v", e.Headers)
	default:
	}
	close(proceed)
	var e *Event
	select {
	case e = <-complete:
	case <-time.After(10 * time.Second):
		t.Fatal("no CHANNEL_HANGUP_COMPLETE after the dialplan returned")
	}
	if e.Get("variable_cc_cause") != "cancel" {
		t.Errorf("variable_cc_cause = %q, want what the dialplan set on its way out", e.Get("variable_cc_cause"))
	}
	<-destroyed // the leg's last event, right after the record
	n := names()
	hangup, done := -1, -1
	for i, name := range n {
		switch name {
		case "CHANNEL_HANGUP":
			hangup = i
		case "CHANNEL_HANGUP_COMPLETE":
			if done >= 0 {
				t.Errorf("two CHANNEL_HANGUP_COMPLETE: %v", n)
			}
			done = i
		}
	}
	if hangup < 0 || done < hangup {
		t.Errorf("event order %v", n)
	}
	// A hold taken after the record is out changes nothing.
	ch.Hold()()
	if got := names(); len(got) != len(n) {
		t.Errorf("events after a late Hold: %v", got[len(n):])
	}
}

func TestBusObserveSeesEveryEvent(t *testing.T) {
	var b Bus
	var seen int
	cancel := b.Observe(func(e *Event) bool { return e.Name == "X" }, func(*Event) { seen++ })
	full, cancelFull := b.Subscribe(1, nil)
	defer cancelFull()
	for range 100 {
		b.Publish(&Event{Name: "X"})
		b.Publish(&Event{Name: "Y"})
	}
	if seen != 100 {
		t.Errorf("observer saw %d of 100", seen)
	}
	if len(full) != 1 || b.Dropped() != 199 {
		t.Errorf("subscriber buffered %d, dropped %d", len(full), b.Dropped())
	}
	cancel()
	b.Publish(&Event{Name: "X"})
	if seen != 100 {
		t.Error("observer called after cancel")
	}
}

// TestHangupEventsBeforeCompleteFromAnotherGoroutine: the hangup's own
// events and the leg's completion come from two goroutines (signalling
// runs Terminated; the dialplan, woken by Done, releases its Hold). The
// test lets the releasing goroutine run to its end while Terminated is
// between its first hangup event and the rest; the leg's events must still
// come out in the order FreeSWITCH's channel thread fires them.
func TestHangupEventsBeforeCompleteFromAnotherGoroutine(t *testing.T) {
	c := newTestCore(t)
	ch, _ := newLeg(c, "a")
	release := ch.Hold()
	released := make(chan struct{})
	go func() {
		<-ch.Done()
		release()
		close(released)
	}()
	var once sync.Once
	var mu sync.Mutex
	var got []string
	stop := c.Bus.Observe(func(e *Event) bool { return e.Get("Unique-ID") == ch.UUID() }, func(e *Event) {
		mu.Lock()
		got = append(got, e.Name+" "+e.Get("Channel-State"))
		mu.Unlock()
		if e.Name == "CHANNEL_CALLSTATE" && e.Get("Channel-Call-State") == "HANGUP" {
			once.Do(func() { <-released })
		}
	})
	defer stop()
	ch.Terminated(NormalClearing)
	<-released
	mu.Lock()
	defer mu.Unlock()
	want := []string{"CHANNEL_CALLSTATE CS_INIT", "CHANNEL_HANGUP CS_INIT", "CHANNEL_STATE CS_HANGUP",
		"CHANNEL_STATE CS_REPORTING", "CHANNEL_HANGUP_COMPLETE CS_REPORTING", "CHANNEL_STATE CS_DESTROY", "CHANNEL_DESTROY CS_DESTROY"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}
