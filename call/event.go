package call

import (
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header is one event header; events keep headers in emission order because
// FreeSWITCH clients (and our golden files) see them in that order.
type Header struct{ Name, Value string }

// Event is one switch event (CHANNEL_CREATE, CUSTOM callcenter::info, …).
// Headers holds the whole ordered list, envelope first once fired.
type Event struct {
	Name     string
	Subclass string
	Seq      uint64
	Time     time.Time
	Headers  []Header
	Body     string
	// Channel is the channel a channel event (CHANNEL_*, DTMF) is about;
	// nil for other events. It is never serialized. A bare subscriber
	// that needs a few of the channel's values reads them from it in its
	// Observe callback (called as the event is fired, so the channel is
	// as the event describes it) instead of having every channel header
	// built for it.
	Channel *Channel
}

// NewEvent is an event whose header list has room for own headers and for
// the envelope Fire puts in front of them, so that building and firing it
// allocates the list once (AppendHeaders keeps the room for own after the
// channel data it adds).
func NewEvent(name, subclass string, own int) *Event {
	return &Event{Name: name, Subclass: subclass, Headers: make([]Header, 0, max(own, 0)+envelopeMax)}
}

// Add appends a header.
func (e *Event) Add(name, value string) { e.Headers = append(e.Headers, Header{name, value}) }

// Get returns the first header with that name ("" when absent).
func (e *Event) Get(name string) string {
	for _, h := range e.Headers {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// Bus fans events out to subscribers. Publishing never blocks: a subscriber
// whose buffer is full loses the event and the loss is counted.
//
// A subscriber may say which kinds of event it can want (an Interest: by
// name and, for CUSTOM, subclass); Wants reports whether any subscriber
// can want a kind, so producers skip building and stamping events nobody
// receives. Subscribe and Observe, without an Interest, can want every
// kind.
type Bus struct {
	mu      sync.RWMutex
	subs    map[*subscription]struct{}
	dropped atomic.Uint64
	// wantAll counts the subscriptions without an Interest: while it is
	// above 0 every kind is wanted without asking the others. fullAll
	// counts those of them that are not bare (they want full events).
	wantAll atomic.Int32
	fullAll atomic.Int32
}

// Interest reports whether a subscriber can want events of this kind
// (name, and subclass for CUSTOM events): its filter still decides per
// event. It is called from the producing goroutine and must not block.
type Interest func(name, subclass string) bool

// Kinds is the Interest in the listed kinds: an event name
// ("CHANNEL_CREATE"), "CUSTOM" for every CUSTOM event, or "CUSTOM " and a
// subclass ("CUSTOM callcenter::info") for one subclass.
func Kinds(kinds ...string) Interest {
	names := map[string]bool{}
	subclasses := map[string]bool{}
	for _, k := range kinds {
		if sub, ok := strings.CutPrefix(k, "CUSTOM "); ok {
			subclasses[sub] = true
			continue
		}
		names[k] = true
	}
	return func(name, subclass string) bool {
		return names[name] || (name == "CUSTOM" && subclasses[subclass])
	}
}

type subscription struct {
	ch     chan *Event
	filter func(*Event) bool
	kinds  Interest // nil: every kind
	// observe, when set, is called in Publish instead of a send on ch.
	observe func(*Event)
	// bare: the subscriber reads only the event's own headers, never the
	// channel data a producer may add (see Bus.Wanted).
	bare bool
}

func (b *Bus) add(s *subscription) {
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[*subscription]struct{})
	}
	b.subs[s] = struct{}{}
	if s.kinds == nil {
		b.wantAll.Add(1)
		if !s.bare {
			b.fullAll.Add(1)
		}
	}
	b.mu.Unlock()
}

// removeLocked drops s; call with mu held.
func (b *Bus) removeLocked(s *subscription) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	if s.kinds == nil {
		b.wantAll.Add(-1)
		if !s.bare {
			b.fullAll.Add(-1)
		}
	}
}

// Observe calls fn with every published event that passes filter (nil =
// all), in the publishing goroutine, until cancel. Unlike Subscribe it
// never loses an event, so fn must not block: it hands the event on (to a
// queue of its own) and returns. It is for consumers that must see every
// event, such as call detail records.
func (b *Bus) Observe(filter func(*Event) bool, fn func(*Event)) (cancel func()) {
	return b.ObserveKinds(nil, filter, fn)
}

// ObserveKinds is Observe for the events of the kinds in kinds only (nil:
// every kind).
func (b *Bus) ObserveKinds(kinds Interest, filter func(*Event) bool, fn func(*Event)) (cancel func()) {
	return b.observe(&subscription{filter: filter, observe: fn, kinds: kinds})
}

// ObserveBare is ObserveKinds for a consumer that reads only the event's
// own headers (the CC-* headers of a callcenter::info event, say): a
// producer may leave out the channel data it would add for full
// subscribers (Bus.Wanted), and fn then gets the event without it.
func (b *Bus) ObserveBare(kinds Interest, filter func(*Event) bool, fn func(*Event)) (cancel func()) {
	return b.observe(&subscription{filter: filter, observe: fn, kinds: kinds, bare: true})
}

func (b *Bus) observe(s *subscription) (cancel func()) {
	b.add(s)
	return func() {
		b.mu.Lock()
		b.removeLocked(s)
		b.mu.Unlock()
	}
}

// Subscribe returns a channel of events that pass filter (nil = all) and a
// cancel function that closes it.
func (b *Bus) Subscribe(buffer int, filter func(*Event) bool) (<-chan *Event, func()) {
	return b.SubscribeKinds(buffer, nil, filter)
}

// SubscribeKinds is Subscribe for the events of the kinds in kinds only
// (nil: every kind).
func (b *Bus) SubscribeKinds(buffer int, kinds Interest, filter func(*Event) bool) (<-chan *Event, func()) {
	return b.subscribe(buffer, kinds, filter, false)
}

// SubscribeBare is SubscribeKinds for a consumer that reads only the
// event's own headers, as ObserveBare.
func (b *Bus) SubscribeBare(buffer int, kinds Interest, filter func(*Event) bool) (<-chan *Event, func()) {
	return b.subscribe(buffer, kinds, filter, true)
}

func (b *Bus) subscribe(buffer int, kinds Interest, filter func(*Event) bool, bare bool) (<-chan *Event, func()) {
	if buffer < 0 {
		buffer = 0 // make would panic; an unbuffered subscriber only gets events it is waiting for
	}
	s := &subscription{ch: make(chan *Event, buffer), filter: filter, kinds: kinds, bare: bare}
	b.add(s)
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			b.removeLocked(s)
			close(s.ch)
			b.mu.Unlock()
		})
	}
}

// Wants reports whether some subscriber can want events of this kind
// (name, and subclass for CUSTOM): when it is false, an event of that kind
// need not be built.
func (b *Bus) Wants(name, subclass string) bool {
	if b.wantAll.Load() > 0 {
		return true
	}
	want, _ := b.Wanted(name, subclass)
	return want
}

// Wanted reports whether some subscriber can want events of this kind
// (want, as Wants) and whether one of those wants full events (full): a
// subscriber that is not bare. When want is true and full false, the
// producer may leave the channel data out of the event; when both kinds
// of subscriber exist it builds the full event once for all of them.
func (b *Bus) Wanted(name, subclass string) (want, full bool) {
	if b.fullAll.Load() > 0 {
		return true, true
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.kinds == nil || s.kinds(name, subclass) {
			want = true
			if !s.bare {
				return true, true
			}
		}
	}
	return want, false
}

// Publish delivers e to every matching subscriber without blocking.
func (b *Bus) Publish(e *Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		if s.kinds != nil && !s.kinds(e.Name, e.Subclass) {
			continue
		}
		if s.filter != nil && !s.filter(e) {
			continue
		}
		if s.observe != nil {
			s.observe(e)
			continue
		}
		select {
		case s.ch <- e:
		default:
			b.dropped.Add(1)
		}
	}
}

// Dropped counts events lost to full subscriber buffers.
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Fire stamps e with the FreeSWITCH envelope (Event-Name, Core-UUID,
// hostname, dates, sequence) in front of its own headers and publishes it.
//
// An event no subscriber can want (Bus.Wants) is neither stamped nor
// published; producers that build costly events ask Wants first.
func (c *Core) Fire(e *Event) {
	if !c.Bus.Wants(e.Name, e.Subclass) {
		return
	}
	c.stamp(e)
	c.Bus.Publish(e)
}

// Wants reports whether an event of this kind would reach any subscriber
// (Bus.Wants): producers skip building events nobody receives.
func (c *Core) Wants(name, subclass string) bool { return c.Bus.Wants(name, subclass) }

// Wanted is Bus.Wanted: whether an event of this kind would reach any
// subscriber, and whether one of them wants the full event.
func (c *Core) Wanted(name, subclass string) (want, full bool) { return c.Bus.Wanted(name, subclass) }

// Fire publishes e, an event about this channel (built with c.Event or
// c.AppendHeaders), in order with the channel's other events: a channel's
// events all go out through here or through its state setters, under its
// event lock, whichever goroutine fires them.
func (c *Channel) Fire(e *Event) {
	c.evMu.Lock()
	c.core.Fire(e)
	c.evMu.Unlock()
}

// Stamp puts the envelope on e without publishing it: for events that go
// to one peer only, such as the channel data an outbound socket gets.
func (c *Core) Stamp(e *Event) { c.stamp(e) }

func (c *Core) stamp(e *Event) {
	e.Seq = c.seq.Add(1)
	if e.Time.IsZero() {
		e.Time = c.Now()
	}
	// The envelope is put in front of the headers the event already has,
	// in place when there is room (AppendHeaders leaves it), instead of a
	// new list built around them. Empty values (no IPv6 known) are left
	// out.
	var env [envelopeMax]Header
	n := 0
	add := func(name, value string) {
		if value != "" {
			env[n] = Header{name, value}
			n++
		}
	}
	add("Event-Subclass", e.Subclass)
	add("Event-Name", e.Name)
	add("Core-UUID", c.UUID)
	add("FreeSWITCH-Hostname", c.Hostname)
	add("FreeSWITCH-Switchname", c.Hostname)
	add("FreeSWITCH-IPv4", c.IPv4)
	add("FreeSWITCH-IPv6", c.IPv6)
	local, gmt := eventDates(e.Time)
	add("Event-Date-Local", local)
	add("Event-Date-GMT", gmt)
	add("Event-Date-Timestamp", strconv.FormatInt(e.Time.UnixMicro(), 10))
	// Event-Calling-*: where the event was fired, as FreeSWITCH names the
	// C function; here the Go file, function and line that called Fire
	// (through the channel helpers that fire on a leg's behalf).
	if site := callSite(); site.file != "" {
		add("Event-Calling-File", site.file)
		add("Event-Calling-Function", site.fn)
		add("Event-Calling-Line-Number", site.line)
	}
	add("Event-Sequence", strconv.FormatUint(e.Seq, 10))
	l := len(e.Headers)
	if cap(e.Headers) < l+n {
		hs := make([]Header, n+l)
		copy(hs[n:], e.Headers)
		e.Headers = hs
	} else {
		e.Headers = e.Headers[:l+n]
		copy(e.Headers[n:], e.Headers[:l])
	}
	copy(e.Headers, env[:n])
}

// envelopeMax is the most headers stamp puts in front of an event.
const envelopeMax = 14

// eventDates are Event-Date-Local and Event-Date-GMT for t, formatted
// once per second (every event of that second shares them).
func eventDates(t time.Time) (local, gmt string) {
	sec := t.Unix()
	if d := lastDates.Load(); d != nil && d.sec == sec {
		return d.local, d.gmt
	}
	d := &datePair{sec: sec, local: t.Local().Format("2006-01-02 15:04:05"),
		gmt: t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")}
	lastDates.Store(d)
	return d.local, d.gmt
}

type datePair struct {
	sec        int64
	local, gmt string
}

var lastDates atomic.Pointer[datePair]

// callSite finds the first caller of Fire outside this package's firing
// helpers (Channel.Fire and the state setters are skipped; a channel's
// Event/AppendHeaders/state setters count as the
// firing site, the way switch_channel.c is FreeSWITCH's). Sites are
// resolved once per call stack (a bounded cache keyed by the stack's
// program counters).
func callSite() site {
	var pcs [8]uintptr
	runtime.Callers(4, pcs[:])
	if v, ok := sites.Load(pcs); ok {
		return v.(site)
	}
	st := resolveSite(pcs[:])
	if siteCount.Load() < maxSites {
		if _, loaded := sites.LoadOrStore(pcs, st); !loaded {
			siteCount.Add(1)
		}
	}
	return st
}

// site is one resolved Event-Calling-* triple.
type site struct{ file, fn, line string }

var (
	sites     sync.Map // [8]uintptr → site
	siteCount atomic.Int32
)

const maxSites = 4096

func resolveSite(pcs []uintptr) site {
	n := len(pcs)
	for n > 0 && pcs[n-1] == 0 {
		n--
	}
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		name := f.Function
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		if (!strings.HasSuffix(name, ".setCallState") && !strings.HasSuffix(name, ".SetRunState") &&
			!strings.HasSuffix(name, "(*Channel).Fire")) || !more {
			if f.File == "" {
				return site{}
			}
			return site{path.Base(f.File), name, strconv.Itoa(f.Line)}
		}
	}
}
