package media

import (
	"fmt"
	"sync"
)

// relayHalf says where one leg's received packets go: onto the outbound
// stream of to, as source src.
type relayHalf struct {
	to  *Leg
	src *source
}

// bridge is a relay between two legs.
type bridge struct {
	a, b   *Leg
	ab, ba *relayHalf // a's packets to b, b's packets to a
	once   sync.Once
}

// bridgeMu serialises Connect and disconnect; they are rare, and one lock
// keeps two legs' relay pointers consistent without lock ordering.
var bridgeMu sync.Mutex

// Connect relays audio between a and b in both directions: each packet is
// forwarded by the reader that received it (no re-pacing, no jitter buffer),
// with SSRC, sequence and timestamp rewritten for the receiving peer,
// PCMU<->PCMA converted by table when the legs differ, telephone-event and
// CN payload types remapped (dropped when the other side did not negotiate
// them) and unknown payload types dropped. The bridge goes on top of each
// leg's sources; disconnect (also run when either leg closes) takes it off,
// so each leg returns to what it played before, e.g. its music on hold.
func Connect(a, b *Leg) (disconnect func(), err error) {
	if a == nil || b == nil || a == b {
		return nil, fmt.Errorf("media: connect needs two different legs")
	}
	bridgeMu.Lock()
	defer bridgeMu.Unlock()
	for _, l := range []*Leg{a, b} {
		select {
		case <-l.closed:
			return nil, fmt.Errorf("media: connect: %w", ErrClosed)
		default:
		}
		if l.relay.Load() != nil {
			return nil, ErrBridged
		}
	}
	br := &bridge{
		a:  a,
		b:  b,
		ab: &relayHalf{to: b, src: &source{kind: "bridge"}},
		ba: &relayHalf{to: a, src: &source{kind: "bridge"}},
	}
	a.out.push(br.ba.src)
	b.out.push(br.ab.src)
	a.relay.Store(br.ab)
	b.relay.Store(br.ba)
	for _, l := range []*Leg{a, b} {
		l.mu.Lock()
		l.bridge = br
		l.mu.Unlock()
	}
	return br.disconnect, nil
}

func (br *bridge) disconnect() {
	br.once.Do(func() {
		bridgeMu.Lock()
		br.a.relay.CompareAndSwap(br.ab, nil)
		br.b.relay.CompareAndSwap(br.ba, nil)
		bridgeMu.Unlock()
		br.a.out.remove(br.ba.src)
		br.b.out.remove(br.ab.src)
		for _, l := range []*Leg{br.a, br.b} {
			l.mu.Lock()
			if l.bridge == br {
				l.bridge = nil
			}
			l.mu.Unlock()
		}
	})
}
