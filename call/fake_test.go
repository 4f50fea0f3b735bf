package call

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// fakeSig records what the core asked the protocol side to send.
type fakeSig struct {
	mu      sync.Mutex
	rings   []bool
	answers int
	hangups []Cause
	// answerErr is returned by Answer when set.
	answerErr error
	// entered, when set, gets every Hangup as it starts; gate, when set,
	// holds Hangup until it is closed.
	entered chan Cause
	gate    chan struct{}
}

func (f *fakeSig) Ring(early bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rings = append(f.rings, early)
	return nil
}

func (f *fakeSig) Answer() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answerErr != nil {
		return f.answerErr
	}
	f.answers++
	return nil
}

func (f *fakeSig) Hangup(cause Cause) error {
	f.mu.Lock()
	f.hangups = append(f.hangups, cause)
	entered, gate := f.entered, f.gate
	f.mu.Unlock()
	if entered != nil {
		entered <- cause
	}
	if gate != nil {
		<-gate
	}
	return nil
}

func (f *fakeSig) hangupCauses() []Cause {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Cause(nil), f.hangups...)
}

// fakeMedia records bridging; it plays nothing.
type fakeMedia struct {
	mu        sync.Mutex
	bridged   Media
	unbridged int
	bridgeErr error
}

func (m *fakeMedia) Play(ctx context.Context, path string) error { return nil }
func (m *fakeMedia) Music(path string) (func(), error)           { return func() {}, nil }
func (m *fakeMedia) OnDigit(fn func(rune)) func()                { return func() {} }
func (m *fakeMedia) SendDigits(string) error                     { return nil }
func (m *fakeMedia) Codec() string                               { return "PCMU" }

func (m *fakeMedia) Bridge(other Media) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bridgeErr != nil {
		return nil, m.bridgeErr
	}
	m.bridged = other
	return func() {
		m.mu.Lock()
		m.unbridged++
		m.mu.Unlock()
	}, nil
}

func (m *fakeMedia) state() (Media, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bridged, m.unbridged
}

// epFunc adapts a function to Endpoint.
type epFunc func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error)

func (f epFunc) Dial(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
	return f(ctx, target, vars, o)
}

// giveUp is what an Endpoint returns when its ctx ends: the ctx's Cause,
// else ORIGINATOR_CANCEL (the contract on Endpoint).
func giveUp(ctx context.Context) error {
	if c, ok := AsCause(context.Cause(ctx)); ok {
		return c
	}
	return OriginatorCancel
}

func newTestCore(t testing.TB) *Core {
	t.Helper()
	c := NewCore("testhost", slog.New(slog.NewTextHandler(io.Discard, nil)))
	c.IPv4 = "127.0.0.1"
	return c
}

// newLeg creates an outbound channel with a fake signalling, as an endpoint would.
func newLeg(c *Core, name string) (*Channel, *fakeSig) {
	sig := &fakeSig{}
	ch := c.NewChannel(ChannelSpec{Name: name, Direction: Outbound, Signalling: sig, Media: &fakeMedia{}})
	return ch, sig
}

// collect subscribes to events named name and returns a function that
// returns what has arrived so far without waiting.
func collect(t testing.TB, c *Core, name string) func() []*Event {
	t.Helper()
	ch, cancel := c.Bus.Subscribe(256, func(e *Event) bool { return e.Name == name })
	t.Cleanup(cancel)
	var got []*Event
	return func() []*Event {
		for {
			select {
			case e := <-ch:
				got = append(got, e)
			default:
				return got
			}
		}
	}
}
