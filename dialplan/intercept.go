package dialplan

import (
	"context"
	"fmt"
	"strings"

	"ccpbx/call"
)

// appIntercept is `intercept <uuid>`: the channel is answered and bridged
// to the live channel with that UUID, which stays where it is (parked,
// typically) and is relayed to this one. uuid_bridge queues it on its A
// leg. When the other leg hangs up first, this channel's dialplan goes on.
func (d *Dialplan) appIntercept(_ context.Context, ch *call.Channel, data string) error {
	id := strings.TrimSpace(data)
	other, ok := d.core.Channel(id)
	if !ok || other == ch {
		return fmt.Errorf("intercept %q: no such channel", id)
	}
	if err := ch.Answer(); err != nil {
		return fmt.Errorf("intercept: answer: %w", err)
	}
	if !other.Answered() {
		if err := other.Answer(); err != nil {
			return fmt.Errorf("intercept: answer %s: %w", id, err)
		}
	}
	return d.core.Bridge(ch, other)
}
