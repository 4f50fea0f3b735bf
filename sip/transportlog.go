package sip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"

	sipmsg "github.com/emiago/sipgo/sip"
)

// inputGuard keeps input that is not SIP away from sipgo. sipgo logs every
// message it cannot parse at ERROR with all its bytes; on a public port
// that is anyone's to trigger, so a flood of garbage would flood the log.
// Malformed input is the peer's fault, not ours: the guard parses first,
// counts what does not parse and logs it at DEBUG, cut short, and sipgo
// never sees it.
//
// It sits in two places: UDP datagrams pass sipgo's transport read hook
// (filterUDP, WithTransportLayerReadFilter), and accepted TCP connections
// are wrapped (listener) because a stream needs a parser per connection.
// TCP connections sipgo dials itself (calls to a phone whose registration
// connection is gone) are not wrapped; sipgo offers no seam for them.
type inputGuard struct {
	log     *slog.Logger
	parser  *sipmsg.Parser
	dropped atomic.Uint64
}

// maxLoggedDatagram is how much of unparsable input a DEBUG record keeps:
// enough to recognise the sender's software.
const maxLoggedDatagram = 200

func newInputGuard(log *slog.Logger) *inputGuard {
	return &inputGuard{log: log, parser: sipmsg.NewParser()}
}

// drop counts and logs input that does not parse.
func (g *inputGuard) drop(transport string, from net.Addr, data []byte, err error) {
	g.dropped.Add(1)
	if !g.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	s := string(data)
	if len(s) > maxLoggedDatagram {
		s = s[:maxLoggedDatagram] + "…"
	}
	src := ""
	if from != nil {
		src = from.String()
	}
	g.log.Debug("unparsable SIP message dropped", "transport", transport, "source", src, "error", err, "data", s)
}

// keepAlive reports a CRLF keep-alive (RFC 5626 §3.5.1), which sipgo
// answers itself.
func keepAlive(data []byte) bool {
	return len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0
}

// filterUDP is sipgo's transport read hook: each call is one datagram, and
// returning no bytes drops it.
func (g *inputGuard) filterUDP(info sipmsg.TransportReadProps, data []byte) ([]byte, error) {
	if !strings.EqualFold(info.Transport, "udp") || keepAlive(data) {
		return data, nil
	}
	if _, err := g.parser.ParseSIP(data); err != nil {
		g.drop("udp", info.RemoteAddr, data, err)
		return nil, nil
	}
	return data, nil
}

// listener wraps a TCP listener so every accepted connection is checked.
func (g *inputGuard) listener(l net.Listener) net.Listener { return guardedListener{l, g} }

type guardedListener struct {
	net.Listener
	g *inputGuard
}

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, g: l.g, stream: l.g.parser.NewSIPStream(), idle: true}, nil
}

// guardedConn parses the stream alongside sipgo, with the same framing
// rules: a chunk that breaks the framing closes the connection before
// sipgo reads it, which it takes as the peer hanging up.
type guardedConn struct {
	net.Conn
	g      *inputGuard
	stream *sipmsg.ParserStream
	// idle: between messages, where sipgo skips keep-alives.
	idle   bool
	broken bool
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.broken {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if n == 0 || bytes.Count(p[:n], []byte{0}) == n || (c.idle && keepAlive(p[:n])) {
		return n, err
	}
	perr := c.stream.ParseSIPStream(p[:n], func(sipmsg.Message) {})
	switch {
	case perr == nil:
		c.idle = true
	case errors.Is(perr, sipmsg.ErrParseSipPartial):
		c.idle = false
	default:
		c.broken = true
		c.g.drop("tcp", c.Conn.RemoteAddr(), p[:n], perr)
		c.stream.Close()
		c.Conn.Close()
		return 0, io.EOF
	}
	return n, err
}
