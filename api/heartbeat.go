package api

import (
	"context"
	"strconv"
	"strings"
	"time"

	"ccpbx/call"
)

// HeartbeatInterval is how often HEARTBEAT fires, FreeSWITCH's default
// (event-heartbeat-interval 20).
const HeartbeatInterval = 20 * time.Second

// Commands is the handle RegisterCommands returns: what runs beside the
// commands (the heartbeat) and what other commands report through them.
type Commands struct{ c *commands }

// RunHeartbeat fires HEARTBEAT every interval (HeartbeatInterval when <= 0)
// until ctx ends, with FreeSWITCH's header set: uptime, version and the
// session counters that `status` prints. Dashboards use it as the "switch
// is alive" tick.
func (h *Commands) RunHeartbeat(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = HeartbeatInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.c.core.Fire(h.c.heartbeat())
		}
	}
}

// heartbeat builds one HEARTBEAT event.
func (c *commands) heartbeat() *call.Event {
	up := max(c.core.Now().Sub(c.d.Started), 0)
	c.mu.Lock()
	sessions, peak := c.sessions, c.peak
	c.mu.Unlock()
	e := &call.Event{Name: "HEARTBEAT"}
	e.Add("Event-Info", "System Ready")
	if c.core.Closing() {
		e.Headers[0].Value = "System Shutting Down"
	}
	e.Add("Up-Time", strings.TrimPrefix(uptimeText(up), "UP "))
	e.Add("FreeSWITCH-Version", c.d.Version)
	e.Add("Uptime-msec", strconv.FormatInt(up.Milliseconds(), 10))
	e.Add("Session-Count", strconv.Itoa(len(c.core.Channels())))
	e.Add("Max-Sessions", "1000")
	e.Add("Session-Since-Startup", strconv.FormatUint(sessions, 10))
	e.Add("Session-Peak-Max", strconv.Itoa(peak))
	return e
}
