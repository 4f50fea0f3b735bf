package dialplan

import (
	"context"

	"ccpbx/call"
)

// appPark is FreeSWITCH's park: the channel waits, answered or not, doing
// nothing until it hangs up, is transferred, or an event-socket client
// tells it what to do (sendmsg execute/hangup, uuid_bridge, uuid_transfer).
// The queued commands run here, in the channel's goroutine. It fires
// CHANNEL_PARK on entry and CHANNEL_UNPARK when it leaves.
func (d *Dialplan) appPark(ctx context.Context, ch *call.Channel, _ string) error {
	ch.SetRunState(call.CSPark)
	ch.FireNamed("CHANNEL_PARK")
	defer func() {
		if ch.Ready() {
			ch.FireNamed("CHANNEL_UNPARK")
			ch.SetRunState(call.CSExecute)
		}
	}()
	cmds := ch.Commands()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch.Done():
			return nil
		case cmd := <-cmds:
			d.core.RunCommand(ctx, ch, cmd)
			if ch.TransferPending() || !ch.Ready() {
				return nil
			}
		}
	}
}
