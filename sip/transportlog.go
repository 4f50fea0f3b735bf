package sip

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/guard"
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
//
// On TCP it also bounds what a connection may hold (tcpLimits): the
// listener caps connections in all and per address and keeps accepting
// through EMFILE (guard.Listener), and each connection has read deadlines:
// one that is silent for the idle timeout is closed, and so is one whose
// message is not complete the message timeout after its first byte (a
// slowloris sending a byte a second, or a Content-Length that never
// arrives). A new connection must finish its first message within the
// message timeout too.
type inputGuard struct {
	log     *slog.Logger
	parser  *sipmsg.Parser
	tcp     tcpLimits
	dropped atomic.Uint64
	// timedOut counts TCP connections closed by a deadline.
	timedOut atomic.Uint64
	// shed, when set, may answer a parsed UDP request itself while the
	// switch is overloaded (limits.go shedEarly); true means answered, and
	// sipgo never sees it.
	shed func(req *sipmsg.Request, from net.Addr) bool
	// closed, when set, is told of every accepted TCP or TLS connection
	// that closes (once each, whoever closes it), with its transport and
	// the peer's address: the registrar drops the bindings that rode it.
	closed func(transport string, remote netip.AddrPort)
	// banned, when set, drops datagrams from a banned source before they
	// are parsed (Stack.bannedAddr).
	banned func(from net.Addr) bool
	// shedding, when set, says whether shed may answer now; only then must
	// every UDP request be parsed here (see plainUDP).
	shedding func() bool
	// lastPlain is the source of the last datagram handed to sipgo
	// unparsed: sipgo parses it next, in the same read loop, so a parse
	// failure it logs comes from there (sipgoLog).
	lastPlain atomic.Pointer[net.UDPAddr]
}

// tcpLimits bound SIP over TCP; zero values mean no bound.
type tcpLimits struct {
	conns         guard.ConnLimits
	idle, message time.Duration
}

// maxLoggedDatagram is how much of unparsable input a DEBUG record keeps:
// enough to recognise the sender's software.
const maxLoggedDatagram = 200

func newInputGuard(log *slog.Logger, tcp tcpLimits) *inputGuard {
	return &inputGuard{log: log, parser: sipmsg.NewParser(), tcp: tcp}
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
	if !strings.EqualFold(info.Transport, "udp") {
		return data, nil
	}
	if g.banned != nil && g.banned(info.RemoteAddr) {
		return nil, nil
	}
	if keepAlive(data) {
		return data, nil
	}
	if g.plainUDP(data) {
		if ua, ok := info.RemoteAddr.(*net.UDPAddr); ok {
			g.lastPlain.Store(ua)
		}
		return data, nil
	}
	msg, err := g.parser.ParseSIP(data)
	if err != nil {
		g.drop("udp", info.RemoteAddr, data, err)
		return nil, nil
	}
	req, ok := msg.(*sipmsg.Request)
	if !ok {
		return data, nil
	}
	if g.shed != nil && g.shed(req, info.RemoteAddr) {
		return nil, nil
	}
	if giveRFC2543Branch(req) {
		return []byte(req.String()), nil
	}
	return data, nil
}

// plainUDP says whether a datagram may go to sipgo without being parsed
// here first: parsing costs about as much as sipgo's own parse (a
// profile of 3,200 REGISTER/s showed it at 5 % of the CPU, in the one
// read loop of the socket), and most datagrams need nothing from the
// guard beyond it. Those are responses, and requests whose top Via
// carries an RFC 3261 branch, while shedding is off. What sipgo then
// fails to parse is still dropped quietly: sipgoLog turns its ERROR into
// the guard's drop. Anything the cheap look is unsure of (an RFC 2543
// branch, a folded, quoted or oddly spaced Via) is parsed here as before.
func (g *inputGuard) plainUDP(data []byte) bool {
	if g.shedding != nil && g.shedding() {
		return false
	}
	if bytes.HasPrefix(data, []byte("SIP/2.0 ")) {
		return true
	}
	return topViaHasCookie(data)
}

// topViaHasCookie reports whether the first Via header line's first value
// has exactly one branch parameter, written ";branch=z9hG4bK…". False
// means "not sure", never "no".
func topViaHasCookie(data []byte) bool {
	crlf := []byte("\r\n")
	_, rest, ok := bytes.Cut(data, crlf) // the start line
	for ok {
		var line []byte
		line, rest, ok = bytes.Cut(rest, crlf)
		if !ok || len(line) == 0 {
			return false // end of the headers without a Via
		}
		name, val, isHeader := bytes.Cut(line, []byte(":"))
		if !isHeader {
			return false
		}
		name = bytes.TrimRight(name, " \t")
		if !bytes.EqualFold(name, []byte("Via")) && !bytes.EqualFold(name, []byte("v")) {
			continue
		}
		if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			return false // folded onto the next line
		}
		if i := bytes.IndexByte(val, ','); i >= 0 {
			val = val[:i]
		}
		if bytes.IndexByte(val, '"') >= 0 || countFold(val, "branch") != 1 {
			return false
		}
		return bytes.Contains(val, []byte(";branch="+sipmsg.RFC3261BranchMagicCookie))
	}
	return false
}

// countFold counts the ASCII case-insensitive occurrences of word in b.
func countFold(b []byte, word string) int {
	n := 0
	for i := 0; i+len(word) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(word)], []byte(word)) {
			n++
		}
	}
	return n
}

// sipgoLog wraps the handler of sipgo's transport logger. sipgo logs a
// message it cannot parse at ERROR with all its bytes ("failed to
// parse"); on a public port that is anyone's to trigger, so it becomes the
// guard's drop (counted, DEBUG, cut short) like the ones the guard parses
// itself. Everything else passes unchanged.
func (g *inputGuard) sipgoLog(h slog.Handler) slog.Handler { return sipgoLogHandler{h, g} }

type sipgoLogHandler struct {
	slog.Handler
	g *inputGuard
}

// sipgoParseFailure is the message sipgo v1.7's transports log when a
// message does not parse.
const sipgoParseFailure = "failed to parse"

func (h sipgoLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l == slog.LevelError || h.Handler.Enabled(ctx, l)
}

func (h sipgoLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level != slog.LevelError || r.Message != sipgoParseFailure {
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
		return h.Handler.Handle(ctx, r)
	}
	var data string
	var perr error
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			data = a.Value.String()
		case "error":
			perr, _ = a.Value.Any().(error)
		}
		return true
	})
	// The source is the last datagram's handed over unparsed; a failure
	// on a connection sipgo dialed itself (TCP, rare) is reported the same
	// way, its source unknown.
	var from net.Addr
	if ua := h.g.lastPlain.Load(); ua != nil {
		from = ua
	}
	h.g.drop("udp", from, []byte(data), perr)
	return nil
}

func (h sipgoLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sipgoLogHandler{h.Handler.WithAttrs(as), h.g}
}

func (h sipgoLogHandler) WithGroup(name string) slog.Handler {
	return sipgoLogHandler{h.Handler.WithGroup(name), h.g}
}

// listener wraps a TCP or TLS listener (transport "tcp" or "tls") so every
// accepted connection is checked and bounded, and its close reported.
func (g *inputGuard) listener(l net.Listener, transport string) *guardedListener {
	gl := guard.NewListener(l, g.tcp.conns, func(msg string, err error, remote string) {
		if err != nil {
			g.log.Warn("sip tcp: "+msg, "err", err)
			return
		}
		g.log.Debug("sip tcp: "+msg, "remote", remote)
	})
	return &guardedListener{gl, g, transport}
}

type guardedListener struct {
	*guard.Listener
	g         *inputGuard
	transport string
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &guardedConn{Conn: c, g: l.g, transport: l.transport, stream: l.g.parser.NewSIPStream(), idle: true, fresh: true}
	gc.msgStart = time.Now()
	return gc, nil
}

// guardedConn parses the stream alongside sipgo, with the same framing
// rules: a chunk that breaks the framing closes the connection before
// sipgo reads it, which it takes as the peer hanging up.
type guardedConn struct {
	net.Conn
	g         *inputGuard
	transport string
	closeOnce sync.Once
	stream    *sipmsg.ParserStream
	// idle: between messages, where sipgo skips keep-alives.
	idle   bool
	broken bool
	// fresh: no whole message yet; msgStart: when the message being read
	// (or, while fresh, the connection) began.
	fresh    bool
	msgStart time.Time
}

// deadline is when the next read must have returned: the message timeout
// from the start of a message (or of a connection that has sent none),
// fixed so that trickling bytes cannot push it back; else the idle timeout
// from now.
func (c *guardedConn) deadline() time.Time {
	t := c.g.tcp
	if (c.fresh || !c.idle) && t.message > 0 {
		return c.msgStart.Add(t.message)
	}
	if t.idle > 0 {
		return time.Now().Add(t.idle)
	}
	return time.Time{}
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.broken {
		return 0, io.EOF
	}
	c.Conn.SetReadDeadline(c.deadline())
	n, err := c.Conn.Read(p)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// sipgo logs read errors other than EOF at ERROR; a peer
			// that dawdles is routine on a public port.
			c.g.timedOut.Add(1)
			c.g.log.Debug("sip tcp: connection timed out", "remote", c.Conn.RemoteAddr().String(),
				"partial", !c.idle, "fresh", c.fresh)
			c.broken = true
			c.stream.Close()
			c.Conn.Close()
			return 0, io.EOF
		}
	}
	if n == 0 || bytes.Count(p[:n], []byte{0}) == n || (c.idle && keepAlive(p[:n])) {
		return n, err
	}
	if c.idle && !c.fresh {
		c.msgStart = time.Now()
	}
	completed := false
	perr := c.stream.ParseSIPStream(p[:n], func(sipmsg.Message) { completed = true })
	if completed {
		c.fresh = false
	}
	switch {
	case perr == nil:
		c.idle = true
	case errors.Is(perr, sipmsg.ErrParseSipPartial):
		if completed {
			// The chunk finished a message and began another.
			c.msgStart = time.Now()
		}
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

// Close closes the connection and reports it to the guard's closed hook,
// once, after the socket is gone: a binding it removes can no longer be
// refreshed over this connection. sipgo closes a connection when its
// reader ends, so a peer's hang-up, a read deadline, broken framing and a
// shutdown all pass here.
func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.g.closed == nil {
			return
		}
		if ap, perr := netip.ParseAddrPort(c.Conn.RemoteAddr().String()); perr == nil {
			c.g.closed(c.transport, ap)
		}
	})
	return err
}
