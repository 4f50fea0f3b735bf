package call

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFireEnvelope(t *testing.T) {
	at := time.Date(2026, 11, 26, 7, 30, 5, 250000000, time.UTC)
	tests := []struct {
		name     string
		event    *Event
		envelope []string
	}{
		{
			name:  "CUSTOM puts Event-Subclass first",
			event: &Event{Name: "CUSTOM", Subclass: "callcenter::info", Time: at, Headers: []Header{{"CC-Queue", "support@default"}}},
			envelope: []string{"Event-Subclass", "Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname",
				"FreeSWITCH-IPv4", "Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp",
				"Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence", "CC-Queue"},
		},
		{
			name:  "a plain event starts with Event-Name",
			event: &Event{Name: "HEARTBEAT", Time: at, Headers: []Header{{"Up-Time", "1"}}},
			envelope: []string{"Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname",
				"FreeSWITCH-IPv4", "Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp",
				"Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence", "Up-Time"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t)
			c.UUID = "core-1"
			ch, cancel := c.Bus.Subscribe(4, nil)
			defer cancel()
			c.Fire(tt.event)
			e := <-ch
			if e != tt.event {
				t.Fatal("subscriber got another event")
			}
			var names []string
			for _, h := range e.Headers {
				names = append(names, h.Name)
			}
			if len(names) != len(tt.envelope) {
				t.Fatalf("headers %v\nwant %v", names, tt.envelope)
			}
			for i := range names {
				if names[i] != tt.envelope[i] {
					t.Fatalf("header %d is %s, want %s (all: %v)", i, names[i], tt.envelope[i], names)
				}
			}
			for k, want := range map[string]string{
				"Event-Name": tt.event.Name, "Core-UUID": "core-1", "FreeSWITCH-Hostname": "testhost",
				"FreeSWITCH-Switchname": "testhost", "FreeSWITCH-IPv4": "127.0.0.1",
				"Event-Date-GMT": "Thu, 26 Nov 2026 07:30:05 GMT", "Event-Date-Timestamp": "1795678205250000",
				"Event-Date-Local": at.Local().Format("2006-01-02 15:04:05"), "Event-Sequence": "1",
			} {
				if got := e.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if e.Seq != 1 {
				t.Errorf("Seq = %d", e.Seq)
			}
		})
	}
}

func TestFireSequenceAndClock(t *testing.T) {
	c := newTestCore(t)
	at := time.Unix(1700000000, 0)
	c.Clock = func() time.Time { return at }
	ch, cancel := c.Bus.Subscribe(64, nil)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 8 {
				c.Fire(&Event{Name: "HEARTBEAT"})
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for range 32 {
		e := <-ch
		n, err := strconv.ParseUint(e.Get("Event-Sequence"), 10, 64)
		if err != nil || n != e.Seq || n < 1 || n > 32 || seen[n] {
			t.Fatalf("Event-Sequence %q (Seq %d) is not a fresh number in 1..32", e.Get("Event-Sequence"), e.Seq)
		}
		seen[n] = true
		if !e.Time.Equal(at) {
			t.Errorf("event time %v, want the core clock's %v", e.Time, at)
		}
	}
	// Sequence numbers keep growing across fires.
	c.Fire(&Event{Name: "HEARTBEAT"})
	if e := <-ch; e.Seq != 33 {
		t.Errorf("next Seq = %d, want 33", e.Seq)
	}
}

func TestBusFilters(t *testing.T) {
	var b Bus
	all, cancelAll := b.Subscribe(8, nil)
	defer cancelAll()
	custom, cancelCustom := b.Subscribe(8, func(e *Event) bool { return e.Name == "CUSTOM" && e.Subclass == "callcenter::info" })
	defer cancelCustom()
	for _, e := range []*Event{
		{Name: "CHANNEL_CREATE"}, {Name: "CUSTOM", Subclass: "callcenter::info"}, {Name: "CUSTOM", Subclass: "other"},
	} {
		b.Publish(e)
	}
	if n := len(all); n != 3 {
		t.Errorf("unfiltered subscriber got %d events, want 3", n)
	}
	if n := len(custom); n != 1 {
		t.Fatalf("filtered subscriber got %d events, want 1", n)
	}
	if e := <-custom; e.Subclass != "callcenter::info" {
		t.Errorf("filtered subscriber got %s %s", e.Name, e.Subclass)
	}
	if b.Dropped() != 0 {
		t.Errorf("Dropped = %d", b.Dropped())
	}
}

func TestBusFullSubscriberDoesNotBlock(t *testing.T) {
	var b Bus
	slow, cancelSlow := b.Subscribe(1, nil)
	defer cancelSlow()
	fast, cancelFast := b.Subscribe(10, nil)
	defer cancelFast()
	// Publish runs in this goroutine: a blocking send to the full
	// subscriber would hang the test here.
	for i := range 5 {
		b.Publish(&Event{Name: "E", Seq: uint64(i)})
	}
	if got := b.Dropped(); got != 4 {
		t.Errorf("Dropped = %d, want 4", got)
	}
	if len(slow) != 1 || len(fast) != 5 {
		t.Errorf("slow has %d, fast has %d; want 1 and 5", len(slow), len(fast))
	}
	if e := <-slow; e.Seq != 0 {
		t.Errorf("slow subscriber kept event %d, want the first", e.Seq)
	}
}

func TestBusCancel(t *testing.T) {
	var b Bus
	ch, cancel := b.Subscribe(4, nil)
	b.Publish(&Event{Name: "A"})
	cancel()
	cancel() // idempotent
	if e, ok := <-ch; !ok || e.Name != "A" {
		t.Fatalf("buffered event before cancel lost: %v %v", e, ok)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel not closed by cancel")
	}
	b.Publish(&Event{Name: "B"}) // must not send on the closed channel
	if b.Dropped() != 0 {
		t.Errorf("an event for a cancelled subscriber counted as dropped")
	}
}

func TestBusCancelWhilePublishing(t *testing.T) {
	var b Bus
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				b.Publish(&Event{Name: "E"})
			}
		}
	}()
	for range 200 {
		ch, cancel := b.Subscribe(1, nil)
		cancel()
		for range ch {
		}
	}
	close(stop)
	wg.Wait()
}

func TestEventGetAdd(t *testing.T) {
	var e Event
	e.Add("A", "1")
	e.Add("A", "2")
	if e.Get("A") != "1" || e.Get("B") != "" || len(e.Headers) != 2 {
		t.Fatalf("Get/Add: %v", e.Headers)
	}
}

func TestBusNegativeBuffer(t *testing.T) {
	var b Bus
	ch, cancel := b.Subscribe(-5, nil)
	defer cancel()
	b.Publish(&Event{Name: "E"}) // nobody receiving: dropped, not blocked
	if b.Dropped() != 1 || len(ch) != 0 {
		t.Fatalf("Dropped = %d, queued %d", b.Dropped(), len(ch))
	}
}

// TestBusWantsKinds: subscribers that name their kinds make the bus want
// only those; one without kinds wants everything; cancelling takes the
// interest back. Events of kinds nobody wants are not stamped or
// delivered, and a channel fires (builds) only the wanted ones.
func TestBusWantsKinds(t *testing.T) {
	c := newTestCore(t)
	if c.Wants("CHANNEL_CREATE", "") || c.Wants("CUSTOM", "callcenter::info") {
		t.Fatal("a bus with no subscriber wants events")
	}
	var got []string
	var mu sync.Mutex
	stop := c.Bus.ObserveKinds(Kinds("CHANNEL_HANGUP", "CUSTOM callcenter::info"), nil, func(e *Event) {
		mu.Lock()
		got = append(got, e.Name+"/"+e.Subclass)
		mu.Unlock()
	})
	for _, k := range []struct {
		name, sub string
		want      bool
	}{
		{"CHANNEL_HANGUP", "", true},
		{"CHANNEL_CREATE", "", false},
		{"CUSTOM", "callcenter::info", true},
		{"CUSTOM", "sofia::register", false},
	} {
		if w := c.Wants(k.name, k.sub); w != k.want {
			t.Errorf("Wants(%s, %s) = %v, want %v", k.name, k.sub, w, k.want)
		}
	}
	unwanted := &Event{Name: "CUSTOM", Subclass: "sofia::register"}
	c.Fire(unwanted)
	if unwanted.Seq != 0 || len(unwanted.Headers) != 0 {
		t.Errorf("an unwanted event was stamped: seq %d, %d headers", unwanted.Seq, len(unwanted.Headers))
	}
	ch := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@127.0.0.1", Direction: Inbound})
	ch.Hangup(NormalClearing)
	c.Fire(&Event{Name: "CUSTOM", Subclass: "callcenter::info"})
	mu.Lock()
	eq := strings.Join(got, ",") == "CHANNEL_HANGUP/,CUSTOM/callcenter::info"
	gotS := strings.Join(got, ",")
	mu.Unlock()
	if !eq {
		t.Errorf("observed %q, want only the hangup and the callcenter event", gotS)
	}

	all, cancel := c.Bus.Subscribe(1, nil)
	if !c.Wants("CHANNEL_CREATE", "") || !c.Wants("CUSTOM", "anything") {
		t.Error("a subscriber without kinds does not make every kind wanted")
	}
	cancel()
	for range all {
	}
	stop()
	if c.Wants("CHANNEL_HANGUP", "") || c.Wants("CHANNEL_CREATE", "") {
		t.Error("interest outlived its subscriptions")
	}
}

// TestWantedBareAndFull: Wanted tells producers whether some subscriber
// wants a kind and whether one of those wants the full event (is not
// bare).
func TestWantedBareAndFull(t *testing.T) {
	var b Bus
	check := func(what string, want, full bool) {
		t.Helper()
		w, f := b.Wanted("CUSTOM", "callcenter::info")
		if w != want || f != full {
			t.Fatalf("%s: Wanted = %v, %v; want %v, %v", what, w, f, want, full)
		}
		if b.Wants("CUSTOM", "callcenter::info") != want {
			t.Fatalf("%s: Wants disagrees with Wanted", what)
		}
	}
	check("no subscriber", false, false)
	stopOther := b.ObserveBare(Kinds("CHANNEL_CREATE"), nil, func(*Event) {})
	check("bare subscriber of another kind", false, false)
	stopBare := b.ObserveBare(Kinds("CUSTOM callcenter::info"), nil, func(*Event) {})
	check("bare subscriber", true, false)
	_, stopBareSub := b.SubscribeBare(1, Kinds("CUSTOM callcenter::info"), nil)
	check("two bare subscribers", true, false)
	_, stopFull := b.SubscribeKinds(1, Kinds("CUSTOM callcenter::info"), nil)
	check("bare and full", true, true)
	stopFull()
	check("full cancelled", true, false)
	_, stopAllBare := b.SubscribeBare(1, nil, nil)
	check("bare subscriber of every kind", true, false)
	stopAll := b.Observe(nil, func(*Event) {})
	check("full subscriber of every kind", true, true)
	stopAll()
	check("full of every kind cancelled", true, false)
	stopAllBare()
	stopBareSub()
	stopBare()
	check("bare cancelled", false, false)
	stopOther()
	if b.wantAll.Load() != 0 || b.fullAll.Load() != 0 {
		t.Fatalf("counters left at %d, %d", b.wantAll.Load(), b.fullAll.Load())
	}
}
