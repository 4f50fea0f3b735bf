package media

import (
	"context"
	"fmt"
	"time"
)

// Play plays the sound at path once to this leg. It suspends whatever the
// leg was sending (music, a bridge) and hands back to it afterwards, and
// returns when the sound has played, or early with ctx's error or ErrClosed.
// Before the peer's SDP is known the frames are paced but not sent.
func (l *Leg) Play(ctx context.Context, path string) error {
	snd, err := l.e.Sound(path)
	if err != nil {
		return err
	}
	select {
	case <-l.closed:
		return ErrClosed
	default:
	}
	src := &source{kind: "prompt"}
	l.out.push(src)
	defer l.out.remove(src)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	start := time.Now()
	// Absolute deadlines: a late wake-up shortens the next wait instead of
	// stretching the prompt.
	frames := snd.Frames()
	for i := 0; i <= frames; i++ {
		if d := time.Until(start.Add(time.Duration(i) * frameDuration)); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				return fmt.Errorf("media: play %s: %w", path, ctx.Err())
			case <-l.closed:
				return ErrClosed
			}
		}
		if i == frames {
			break // the last frame has had its 20 ms
		}
		ulaw, alaw := snd.frames(i)
		l.out.sendFrame(src, ulaw, alaw, frameSamples, true)
	}
	return nil
}
