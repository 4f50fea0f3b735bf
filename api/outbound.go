package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"ccpbx/call"
)

// FreeSWITCH's outbound event socket: the `socket` dialplan application
// connects to a program ("socket 127.0.0.1:8084 async full") and lets it
// drive the channel with the event-socket protocol, the program being the
// client: it sends "connect" and gets the channel data, then sendmsg,
// myevents, linger, api … as on an inbound connection. Commands for the
// channel run here, in the channel's goroutine, while the app blocks.

const (
	// outboundDialTimeout bounds the connect to the program.
	outboundDialTimeout = 5 * time.Second
	// maxLinger bounds how long a lingering connection keeps receiving
	// the hung-up channel's last events ("linger" without a time lingers
	// until the program hangs up, bounded by this).
	maxLinger = 600 * time.Second
)

// RegisterSocketApp registers the `socket` application on the core; the
// connections it makes are closed with the event socket.
func (s *EventSocket) RegisterSocketApp() {
	s.core.RegisterApp("socket", s.appSocket)
}

// appSocket is `socket <host:port> [async] [full]`.
func (s *EventSocket) appSocket(ctx context.Context, ch *call.Channel, data string) error {
	f := strings.Fields(data)
	if len(f) == 0 {
		return errors.New("socket: no address")
	}
	addr := f[0]
	full, async := false, false
	for _, w := range f[1:] {
		switch strings.ToLower(w) {
		case "full":
			full = true
		case "async":
			async = true
		}
	}
	d := net.Dialer{Timeout: outboundDialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		ch.SetVar("socket_host", addr)
		return fmt.Errorf("socket %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return errors.New("socket: event socket closed")
	}
	c := &eslConn{srv: s, conn: nc, ip: remoteIP(nc), authed: true, session: ch, full: full, async: async,
		log: ch.Log().With("component", "esl", "outbound", addr)}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	c.format.Store(FormatPlain)
	ch.Log().Info("socket: connected", "addr", addr, "full", full)

	gone := make(chan struct{})
	go func() {
		defer s.wg.Done()
		defer close(gone)
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
		defer c.cleanup()
		c.readLoop()
	}()

	cmds := ch.Commands()
	for {
		select {
		case cmd := <-cmds:
			s.core.RunCommand(ctx, ch, cmd)
			if ch.TransferPending() {
				// The dialplan takes the channel back; the program is told.
				c.write(disconnectNotice(goodbye))
				nc.Close()
				return nil
			}
		case <-gone:
			c.wmu.Lock()
			resume := c.resume
			c.wmu.Unlock()
			if !resume && ch.Ready() {
				// Without "resume" the call ends with the program's session.
				ch.Hangup(call.NormalClearing)
			}
			return nil
		case <-ctx.Done():
			if ch.TransferPending() {
				c.write(disconnectNotice(goodbye))
				nc.Close()
				return nil
			}
			c.hungUp(gone)
			return nil
		case <-ch.Done():
			c.hungUp(gone)
			return nil
		}
	}
}

// hungUp ends an outbound connection whose channel is gone: at once, or
// after the linger time when the program asked to linger, so it still
// receives the channel's last events.
func (c *eslConn) hungUp(gone <-chan struct{}) {
	c.wmu.Lock()
	linger, lingerFor := c.linger, c.lingerFor
	c.wmu.Unlock()
	if !linger {
		c.write("Content-Type: text/disconnect-notice\nController-Type: outbound\nContent-Disposition: disconnect\nContent-Length: " +
			fmt.Sprint(len(goodbye)) + "\n\n" + goodbye)
		c.conn.Close()
		return
	}
	c.write("Content-Type: text/disconnect-notice\nContent-Disposition: linger\nContent-Length: " +
		fmt.Sprint(len(goodbye)) + "\n\n" + goodbye)
	go func() {
		t := time.NewTimer(lingerFor)
		defer t.Stop()
		select {
		case <-gone:
		case <-t.C:
			c.conn.Close()
		}
	}()
}

// channelData is the reply to "connect": the session's channel data as
// the headers of a command/reply, the way FreeSWITCH greets an outbound
// program.
func (c *eslConn) channelData() string {
	ch := c.session
	e := ch.Event("CHANNEL_DATA")
	c.srv.core.Stamp(e)
	var b strings.Builder
	for _, h := range e.Headers {
		if h.Value == "" {
			continue
		}
		b.WriteString(h.Name)
		b.WriteString(": ")
		writeURLEncoded(&b, h.Value)
		b.WriteByte('\n')
	}
	mode := "static"
	if c.async {
		mode = "async"
	}
	control := "single-channel"
	if c.full {
		control = "full"
	}
	b.WriteString("Socket-Mode: " + mode + "\nControl: " + control + "\n")
	b.WriteString("Content-Type: command/reply\nReply-Text: +OK\n\n")
	return b.String()
}
