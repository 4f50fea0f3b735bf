package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"ccpbx/call"
)

// The event-socket commands that act on a channel or on the connection's
// own session: sendmsg, sendevent, myevents, linger/nolinger,
// divert_events and resume, with mod_event_socket's reply texts.

// maxLoops bounds sendmsg's loops header: a client cannot queue an
// application to run forever.
const maxLoops = 1000

// sendmsg queues a call-command (execute, hangup) for a channel: the one
// named on the command line, else the connection's own session. The
// channel runs it in its own goroutine (park, the outbound socket app, or
// between dialplan applications); CHANNEL_EXECUTE_COMPLETE carries the
// client's Event-UUID as Application-UUID, which is how ESL libraries
// (modesl's execute) learn that it finished.
func (c *eslConn) sendmsg(arg string, f *frame) string {
	id := strings.TrimSpace(arg)
	if id == "" {
		id = f.Get("session-id")
	}
	c.wmu.Lock()
	session, full := c.session, c.full
	c.wmu.Unlock()
	if id == "" && session != nil {
		id = session.UUID()
	}
	ch, ok := c.srv.core.Channel(id)
	if !ok || (session != nil && !full && ch != session) {
		return "-ERR invalid session id [" + oneLine(id) + "]"
	}
	kind := strings.ToLower(f.Get("call-command"))
	switch kind {
	case "hangup":
		cause, _ := call.ParseCause(f.Get("hangup-cause"))
		ch.Hangup(cause)
		return "+OK"
	case "execute":
		app := f.Get("execute-app-name")
		if app == "" {
			return "-ERR missing execute-app-name"
		}
		if _, ok := c.srv.core.LookupApp(app); !ok {
			return "-ERR invalid application " + oneLine(app)
		}
		appArg := f.Get("execute-app-arg")
		if appArg == "" && f.Body != "" {
			// Long arguments travel in the body (Content-Type: text/plain).
			appArg = strings.TrimRight(f.Body, "\r\n")
		}
		loops := 1
		if l := f.Get("loops"); l != "" {
			loops = min(max(call.Atoi(l), 1), maxLoops)
		}
		cmd := call.Command{Kind: "execute", App: app, Arg: appArg, Loops: loops, EventUUID: f.Get("Event-UUID")}
		if err := ch.Enqueue(cmd); err != nil {
			return "-ERR " + oneLine(err.Error())
		}
		return "+OK"
	case "unicast", "nomedia", "xferext":
		return "-ERR " + kind + " not supported"
	default:
		return "-ERR invalid call-command"
	}
}

// sendevent fires an event built from the frame's headers and body, as
// mod_event_socket does; the reply names its Event-UUID.
func (c *eslConn) sendevent(arg string, f *frame) string {
	name := strings.ToUpper(strings.TrimSpace(arg))
	if name == "" {
		name = strings.ToUpper(f.Get("Event-Name"))
	}
	if !eventNames[name] || name == "ALL" {
		return "-ERR invalid event"
	}
	e := &call.Event{Name: name, Body: f.Body}
	for _, h := range f.Headers {
		switch strings.ToLower(h.Name) {
		case "event-name", "content-length":
			continue
		case "event-subclass":
			e.Subclass = h.Value
			continue
		}
		e.Add(h.Name, h.Value)
	}
	if name == "CUSTOM" && e.Subclass == "" {
		return "-ERR invalid event"
	}
	// FreeSWITCH stamps every sent event with a fresh Event-UUID and
	// names it in the reply.
	id := uuid.NewString()
	e.Add("Event-UUID", id)
	c.srv.core.Fire(e)
	return "+OK " + id
}

// myevents subscribes to every event of one channel: the session's, or
// in inbound mode the one named ("myevents [plain|json|xml] <uuid>").
func (c *eslConn) myevents(args string) bool {
	format, id := "", ""
	for _, w := range strings.Fields(args) {
		switch strings.ToLower(w) {
		case FormatPlain, FormatJSON, FormatXML:
			format = strings.ToLower(w)
		default:
			id = w
		}
	}
	c.wmu.Lock()
	if cur := c.events.Load(); cur != nil && cur.session != "" && cur.all {
		c.wmu.Unlock()
		return c.write(commandReply("-ERR aready enabled.")) == nil // sic
	}
	if c.session != nil {
		id = c.session.UUID()
	}
	c.wmu.Unlock()
	if _, ok := c.srv.core.Channel(id); !ok {
		return c.write(commandReply("-ERR invalid uuid")) == nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	next := c.events.Load().clone()
	next.all = true
	next.session = id
	if format != "" {
		c.format.Store(format)
	}
	c.events.Store(next)
	c.attachLocked()
	return c.writeLocked(commandReply("+OK Events Enabled")) == nil
}

// sessionCommand answers linger, nolinger, divert_events, resume and
// connect, which only mean something on an outbound connection.
func (c *eslConn) sessionCommand(cmd command) string {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.session == nil {
		switch cmd.Verb {
		case verbConnect, verbResume, verbGetVar:
			return commandReply("-ERR command not found")
		case verbDivert:
			return commandReply("-ERR not controlling a session.") // sic, with the period
		}
		return commandReply("-ERR not controlling a session")
	}
	switch cmd.Verb {
	case verbLinger:
		c.linger = true
		c.lingerFor = maxLinger
		if n := call.Atoi(cmd.Arg); n > 0 {
			c.lingerFor = min(time.Duration(n)*time.Second, maxLinger)
			return commandReply("+OK will linger " + strconv.Itoa(n) + " seconds")
		}
		return commandReply("+OK will linger")
	case verbNoLinger:
		c.linger = false
		return commandReply("+OK will not linger")
	case verbDivert:
		v := strings.TrimSpace(cmd.Arg)
		if v == "" {
			return commandReply("-ERR missing value.")
		}
		c.divert = strings.EqualFold(v, "on")
		if c.divert {
			return commandReply("+OK events diverted")
		}
		return commandReply("+OK events not diverted")
	case verbResume:
		c.resume = true
		c.session.SetVar("socket_resume", "true")
		return commandReply("+OK")
	case verbConnect:
		return c.channelData()
	case verbGetVar:
		return commandReply(oneLine(c.session.Var(strings.TrimSpace(cmd.Arg))))
	}
	return commandReply("-ERR command not found")
}

// restricted reports whether verb is refused on this connection: a
// single-channel outbound session (socket app without "full") gets only
// the commands about its own channel.
func (c *eslConn) restricted(verb string) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.session == nil || c.full {
		return false
	}
	switch verb {
	case verbFilter, verbResume, verbConnect, verbGetVar, verbMyEvents, verbDivert, verbSendMsg,
		verbLinger, verbNoLinger, verbExit:
		return false
	}
	return true
}
