package media

import (
	"fmt"
	"sync"
)

// Echo sends every packet the leg receives back to its sender, through the
// leg's own outbound stream (so SSRC, sequence and timestamps stay the
// leg's): the dialplan's echo application, used to test a phone's audio
// path. It goes on top of the leg's sources like a bridge and is refused
// while the leg is bridged; stop takes it off and the previous source
// resumes.
func (l *Leg) Echo() (stop func(), err error) {
	bridgeMu.Lock()
	defer bridgeMu.Unlock()
	select {
	case <-l.closed:
		return nil, fmt.Errorf("media: echo: %w", ErrClosed)
	default:
	}
	if l.relay.Load() != nil {
		return nil, ErrBridged
	}
	half := &relayHalf{to: l, src: &source{kind: "echo"}}
	l.out.push(half.src)
	l.relay.Store(half)
	var once sync.Once
	return func() {
		once.Do(func() {
			bridgeMu.Lock()
			l.relay.CompareAndSwap(half, nil)
			bridgeMu.Unlock()
			l.out.remove(half.src)
		})
	}, nil
}
