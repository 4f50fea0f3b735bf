package call

import (
	"errors"
	"sync"
)

// DefaultHoldMusic is what the partner of a held leg hears when neither
// leg sets hold_music: the music on hold the media engine ships.
const DefaultHoldMusic = "ivr/common/music-on-hold.wav"

// ErrCannotHold: the channel's signalling cannot put its peer on hold.
var ErrCannotHold = errors.New("channel cannot be put on hold")

// relay is the media relay of one bridge. Hold pauses it (the partner of
// the held leg hears hold music instead) and unhold connects it again;
// stop ends it for good when the bridge ends.
type relay struct {
	a, b Media

	mu         sync.Mutex
	disconnect func() // nil while paused or stopped
	music      func() // the hold music playing while paused
	stopped    bool
}

func newRelay(a, b Media) (*relay, error) {
	d, err := a.Bridge(b)
	if err != nil {
		return nil, err
	}
	return &relay{a: a, b: b, disconnect: d}, nil
}

// pause takes the relay off and loops music to partner (one of a, b).
func (r *relay) pause(partner Media, music string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.disconnect == nil {
		return nil
	}
	r.disconnect()
	r.disconnect = nil
	stop, err := partner.Music(music)
	if err != nil {
		return err
	}
	r.music = stop
	return nil
}

// resume stops the hold music and connects the relay again.
func (r *relay) resume() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.disconnect != nil {
		return nil
	}
	if r.music != nil {
		r.music()
		r.music = nil
	}
	d, err := r.a.Bridge(r.b)
	if err != nil {
		return err
	}
	r.disconnect = d
	return nil
}

// stop ends the relay and any hold music for good.
func (r *relay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.music != nil {
		r.music()
		r.music = nil
	}
	if r.disconnect != nil {
		r.disconnect()
		r.disconnect = nil
	}
}

// setRelay records the relay of the bridge this channel is in (nil: none).
func (c *Channel) setRelay(r *relay) {
	c.mu.Lock()
	c.relay = r
	c.mu.Unlock()
}

// clearRelay forgets r when the bridge that made it ends.
func (c *Channel) clearRelay(r *relay) {
	c.mu.Lock()
	if c.relay == r {
		c.relay = nil
	}
	c.mu.Unlock()
}

// SetHold puts the channel's peer on hold or takes it off (uuid_hold), the
// way FreeSWITCH does: the signalling tells the phone (a re-INVITE with
// a=sendonly or a=sendrecv), and while held the bridged partner hears
// hold_music (the held leg's variable, else the partner's, else
// DefaultHoldMusic) instead of the relay. Events fire only for a hold that
// happened; a channel whose signalling cannot hold gets ErrCannotHold.
func (c *Channel) SetHold(held bool) error {
	c.mu.Lock()
	sig := c.sig
	c.mu.Unlock()
	h, ok := sig.(Holder)
	if !ok {
		return ErrCannotHold
	}
	c.holdMu.Lock()
	defer c.holdMu.Unlock()
	if err := h.Hold(held); err != nil {
		return err
	}
	c.mu.Lock()
	r, other := c.relay, c.other
	c.mu.Unlock()
	if r != nil && other != nil {
		if held {
			music := c.Var("hold_music")
			if music == "" {
				music = other.Var("hold_music")
			}
			if music == "" {
				music = DefaultHoldMusic
			}
			if om := other.Media(); om != nil {
				if err := r.pause(om, music); err != nil {
					c.core.Log.Warn("hold music", "uuid", c.UUID(), "music", music, "err", err)
				}
			}
		} else if err := r.resume(); err != nil {
			c.core.Log.Warn("unhold: relay", "uuid", c.UUID(), "err", err)
		}
	}
	c.MarkHeld(held)
	return nil
}
