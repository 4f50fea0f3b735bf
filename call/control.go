package call

import (
	"context"
	"errors"
	"strings"
)

// Control of a live channel from outside its own goroutine: what
// FreeSWITCH's sendmsg, uuid_break, uuid_transfer and uuid_bridge do. The
// channel's goroutine (its dialplan, park, an outbound socket) stays the
// only one that runs applications on it; others queue commands for it and
// interrupt what it runs.

// Command is one queued instruction for a channel (sendmsg's call-command).
type Command struct {
	// Kind is "execute", "hangup" or "unicast"/"nomedia"/… (FreeSWITCH's
	// call-command); ccpbx acts on execute and hangup.
	Kind string
	App  string
	Arg  string
	// Loops runs an execute that many times (at least once).
	Loops int
	// EventUUID is the Event-UUID the client gave; it comes back as
	// Application-UUID on CHANNEL_EXECUTE/_COMPLETE.
	EventUUID string
	Cause     Cause
	// Done, when set, is closed once the command has run (for event-lock).
	Done chan struct{}
}

// maxQueuedCommands bounds a channel's command queue: a client that floods
// sendmsg gets an error instead of growing memory.
const maxQueuedCommands = 64

// ErrCommandQueueFull is returned when a channel has maxQueuedCommands
// commands waiting.
var ErrCommandQueueFull = errors.New("channel command queue full")

// breakable are the applications uuid_break interrupts (those that play
// or wait); a break leaves callcenter, bridge and the rest alone, as
// FreeSWITCH's CF_BREAK does.
var breakable = map[string]bool{"playback": true, "sleep": true, "broadcast": true, "gentones": true,
	"speak": true, "say": true, "phrase": true, "echo": true, "play_and_get_digits": true}

// running is the application a channel is executing now.
type running struct {
	name   string
	cancel context.CancelFunc
	// prev is the application that runs this one (lua running
	// callcenter, park running a queued playback).
	prev *running
}

func (c *Channel) commandQueue() chan Command {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmds == nil {
		c.cmds = make(chan Command, maxQueuedCommands)
	}
	return c.cmds
}

// Enqueue queues cmd for the channel's goroutine and wakes a parked
// channel. It fails on a hung-up channel or a full queue.
func (c *Channel) Enqueue(cmd Command) error {
	if !c.Ready() {
		return c.Cause()
	}
	select {
	case c.commandQueue() <- cmd:
		return nil
	default:
		return ErrCommandQueueFull
	}
}

// Commands is the channel's command queue; a parked goroutine selects on it.
func (c *Channel) Commands() <-chan Command { return c.commandQueue() }

// RunCommands runs the commands queued now (none blocks waiting for more)
// in the calling goroutine, which must be the channel's.
func (c *Core) RunCommands(ctx context.Context, ch *Channel) {
	// Nothing was ever queued if there is no queue: do not make one (64
	// commands, ~6 KB) for every call that runs an application.
	ch.mu.Lock()
	q := ch.cmds
	ch.mu.Unlock()
	if q == nil {
		return
	}
	for ch.Ready() && ctx.Err() == nil {
		select {
		case cmd := <-q:
			c.RunCommand(ctx, ch, cmd)
		default:
			return
		}
	}
}

// RunCommand carries out one queued command on ch.
func (c *Core) RunCommand(ctx context.Context, ch *Channel, cmd Command) {
	defer func() {
		if cmd.Done != nil {
			close(cmd.Done)
		}
	}()
	switch strings.ToLower(cmd.Kind) {
	case "hangup":
		ch.Hangup(cmd.Cause)
	case "execute":
		for i := 0; i < max(cmd.Loops, 1) && ch.Ready() && ctx.Err() == nil; i++ {
			if err := c.ExecuteWithID(ctx, ch, cmd.App, cmd.Arg, cmd.EventUUID); err != nil {
				ch.Log().Warn("queued application failed", "app", cmd.App, "err", err)
				if errors.Is(err, ErrNoApp) {
					return
				}
			}
		}
	}
}

// Interrupt ends the application the channel runs now (its context is
// cancelled). With onlyBreakable (uuid_break) only a playback-like
// application is ended; otherwise (a transfer) every application in the
// chain is, so a script that ran the interrupted one does not go on. It
// reports whether something was interrupted.
func (c *Channel) Interrupt(onlyBreakable bool) bool {
	c.mu.Lock()
	r := c.app
	c.mu.Unlock()
	if r == nil || (onlyBreakable && !breakable[strings.ToLower(r.name)]) {
		return false
	}
	if onlyBreakable {
		r.cancel()
		return true
	}
	for ; r != nil; r = r.prev {
		r.cancel()
	}
	return true
}

// CurrentApp names the application running now ("" when none).
func (c *Channel) CurrentApp() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.app == nil {
		return ""
	}
	return c.app.name
}

// Transfer sends the channel to another extension, as uuid_transfer and
// the transfer app do: the destination (and context when given) are set,
// the running application is interrupted and the dialplan hunts again.
func (c *Channel) Transfer(dest, context string) {
	c.mu.Lock()
	c.setVarLocked("transfer_source", c.varLocked("destination_number"))
	c.setVarLocked("destination_number", dest)
	if context != "" {
		c.setVarLocked("context", context)
	}
	c.transfer = true
	if c.xfer == nil {
		c.xfer = make(chan struct{}, 1)
	}
	select {
	case c.xfer <- struct{}{}: // wakes a bridge this leg is the A leg of
	default:
	}
	c.mu.Unlock()
	c.Interrupt(false)
}

// transferSignal is signalled by Transfer; Bridge watches it.
func (c *Channel) transferSignal() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.xfer == nil {
		c.xfer = make(chan struct{}, 1)
	}
	return c.xfer
}

// TakeTransfer reports (once) whether a transfer was requested.
func (c *Channel) TakeTransfer() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.transfer
	c.transfer = false
	return t
}

// TransferPending reports whether a transfer waits to be taken.
func (c *Channel) TransferPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transfer
}
