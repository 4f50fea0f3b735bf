package sip

import (
	"context"
	"fmt"
	"sync"

	"ccpbx/call"
	"ccpbx/media"
)

// legMedia is a channel's call.Media: the RTP leg from package media plus
// the digits that arrive by SIP INFO instead of RFC 4733.
type legMedia struct {
	leg *media.Leg

	mu     sync.Mutex
	next   int
	digits map[int]func(rune)
}

func newLegMedia(leg *media.Leg) *legMedia {
	return &legMedia{leg: leg, digits: make(map[int]func(rune))}
}

func (m *legMedia) Play(ctx context.Context, path string) error { return m.leg.Play(ctx, path) }

func (m *legMedia) Music(path string) (func(), error) { return m.leg.Music(path) }

func (m *legMedia) SendDigits(digits string) error { return m.leg.SendDigits(digits) }

func (m *legMedia) Codec() string { return m.leg.Codec() }

// Echo sends the caller's audio back to them (the dialplan's echo app).
func (m *legMedia) Echo() (func(), error) { return m.leg.Echo() }

// OnDigit registers fn for digits from RTP (via the media leg) and from
// SIP INFO.
func (m *legMedia) OnDigit(fn func(rune)) func() {
	removeRTP := m.leg.OnDigit(fn)
	m.mu.Lock()
	id := m.next
	m.next++
	m.digits[id] = fn
	m.mu.Unlock()
	return func() {
		removeRTP()
		m.mu.Lock()
		delete(m.digits, id)
		m.mu.Unlock()
	}
}

func (m *legMedia) fireDigit(d rune) {
	m.mu.Lock()
	fns := make([]func(rune), 0, len(m.digits))
	for _, fn := range m.digits {
		fns = append(fns, fn)
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(d)
	}
}

// Bridge relays RTP between this leg and other, which must be another SIP
// leg's media (every channel in ccpbx is a SIP leg).
func (m *legMedia) Bridge(other call.Media) (func(), error) {
	o, ok := other.(*legMedia)
	if !ok {
		return nil, fmt.Errorf("bridge: %T is not a SIP leg's media: %w", other, call.IncompatibleDestination)
	}
	return media.Connect(m.leg, o.leg)
}
