package api

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"ccpbx/call"
	"ccpbx/guard"
)

// DefaultEventSocketAddr is where the event socket listens when the
// configuration names no address: loopback only, FreeSWITCH's port.
const DefaultEventSocketAddr = "127.0.0.1:8021"

const (
	// eventQueueLen is how many events one listener may have waiting; past
	// that the bus drops (and counts) events for it instead of blocking the
	// core.
	eventQueueLen = 4096
	// writeTimeout disconnects a client that stops reading: its socket
	// buffer is full and no write has progressed for this long.
	writeTimeout = 30 * time.Second
	// goodbye is the disconnect notice body.
	goodbye = "Disconnected, goodbye.\n"
)

// EventSocket is the FreeSWITCH-compatible event socket server
// (mod_event_socket's inbound mode): clients authenticate with the
// password, run API commands synchronously (api) or in the background
// (bgapi), and subscribe to events in plain, json or xml form.
//
// Unlike FreeSWITCH's, it is locked down (see Lockdown): an address outside
// the ACL or banned for failed logins is closed on accept, connections and
// unauthenticated connections are capped, a client has AuthTimeout to log
// in, and before login only a short "auth" frame is read, never a body.
type EventSocket struct {
	core     *call.Core
	addr     string
	password string
	log      *slog.Logger
	lock     Lockdown

	logs *LogTap
	auth AuthObserver

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*eslConn]struct{}
	pending int // connections not yet authenticated
	closed  bool
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// NewEventSocket prepares an event socket on addr (DefaultEventSocketAddr
// when empty); Start opens it.
func NewEventSocket(core *call.Core, addr, password string, log *slog.Logger) *EventSocket {
	if addr == "" {
		addr = DefaultEventSocketAddr
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &EventSocket{
		core: core, addr: addr, password: password, log: log,
		conns: make(map[*eslConn]struct{}), ctx: ctx, cancel: cancel,
	}
	s.SetLockdown(Lockdown{})
	return s
}

// Defaults of Lockdown's zero fields.
const (
	DefaultMaxConnections     = 64
	DefaultMaxUnauthenticated = 16
	DefaultAuthTimeout        = 5 * time.Second
)

// DefaultAuthBans is the ban policy of an event socket that is given no
// Bans: 5 wrong passwords from one address within 5 minutes ban it for
// 15 minutes.
var DefaultAuthBans = guard.BanPolicy{MaxFailures: 5, Window: 5 * time.Minute, BanTime: 15 * time.Minute}

// Lockdown says who may connect to the event socket and what a client may
// cost before it has logged in. Zero fields take the defaults above.
type Lockdown struct {
	// ACL lists the networks that may connect (FreeSWITCH's
	// apply-inbound-acl); empty allows any address that reaches the
	// listener. Others are closed before a byte is read.
	ACL []netip.Prefix
	// MaxConnections caps connected clients, MaxUnauthenticated those not
	// logged in yet; a connection beyond a cap is closed at once.
	MaxConnections     int
	MaxUnauthenticated int
	// AuthTimeout is how long a client may take to log in.
	AuthTimeout time.Duration
	// Bans counts wrong passwords per address; a banned address is closed
	// on accept and its password is not even compared. Nil means a table
	// with DefaultAuthBans. The table may be shared with other listeners.
	Bans *guard.Bans
}

// SetLockdown replaces the lockdown settings; call it before Start.
func (s *EventSocket) SetLockdown(l Lockdown) {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxUnauthenticated <= 0 {
		l.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
	l.MaxUnauthenticated = min(l.MaxUnauthenticated, l.MaxConnections)
	if l.AuthTimeout <= 0 {
		l.AuthTimeout = DefaultAuthTimeout
	}
	if l.Bans == nil {
		l.Bans = guard.NewBans(DefaultAuthBans)
	}
	s.lock = l
}

// Bans is the table of addresses banned for failed logins (for `ban list`
// style commands and for sharing with other listeners).
func (s *EventSocket) Bans() *guard.Bans { return s.lock.Bans }

// Start listens and accepts clients in the background.
func (s *EventSocket) Start() error {
	if s.password == "" {
		// An empty password would let anyone who reaches the port run
		// commands; FreeSWITCH ships a well-known one, ccpbx insists on one.
		return errors.New("event socket: no password configured")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("event socket listen %s: %w", s.addr, err)
	}
	if len(s.lock.ACL) == 0 && !isLoopbackListener(ln.Addr()) {
		s.log.Warn("event socket listens beyond loopback without an acl: anyone who reaches the port may try the password; set event_socket.acl",
			"listen", ln.Addr().String())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("event socket: closed")
	}
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	// Caps and refusals are the event socket's own (accept); the guard
	// listener only keeps accepting through EMFILE/ENFILE.
	go s.accept(guard.NewListener(ln, guard.ConnLimits{}, func(msg string, err error, _ string) {
		s.log.Warn("event socket: "+msg, "err", err)
	}))
	return nil
}

// SetLogTap lets clients follow the process log with "log <level>", as
// fs_cli follows FreeSWITCH's console. Call it before Start; without a tap
// the log command is not available.
func (s *EventSocket) SetLogTap(t *LogTap) { s.logs = t }

// Addr is the listening address (useful with port 0).
func (s *EventSocket) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops listening, disconnects every client and waits for their
// goroutines to end.
func (s *EventSocket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	conns := make([]*eslConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	for _, c := range conns {
		c.conn.Close()
	}
	s.wg.Wait()
	return err
}

func (s *EventSocket) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		// guard.Listener (Start) waits out EMFILE and the like, so an
		// error here means the listener is gone.
		nc, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("event socket listener stopped", "err", err)
			}
			return
		}
		ip := remoteIP(nc)
		if why := s.refuse(ip); why != "" {
			// Nothing is read or written: a refused peer learns nothing,
			// and a flood of them costs one accept and one close each.
			s.log.Debug("event socket: connection refused", "remote", nc.RemoteAddr().String(), "reason", why)
			nc.Close()
			continue
		}
		c := &eslConn{srv: s, conn: nc, ip: ip, log: s.log.With("remote", nc.RemoteAddr().String())}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if len(s.conns) >= s.lock.MaxConnections || s.pending >= s.lock.MaxUnauthenticated {
			s.mu.Unlock()
			s.log.Debug("event socket: connection refused", "remote", nc.RemoteAddr().String(), "reason", "too many connections")
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.pending++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			if !c.authed {
				s.pending--
			}
			s.mu.Unlock()
		}()
	}
}

// refuse says why a new connection from ip is closed on accept ("" when it
// is not): outside the ACL, or banned.
func (s *EventSocket) refuse(ip netip.Addr) string {
	if len(s.lock.ACL) > 0 {
		in := false
		for _, p := range s.lock.ACL {
			if p.Contains(ip) {
				in = true
				break
			}
		}
		if !in {
			return "not in acl"
		}
	}
	if s.lock.Bans.Banned(ip) {
		return "banned"
	}
	return ""
}

// authenticated moves c from the pending count to the logged-in ones.
func (s *EventSocket) authenticated(c *eslConn) {
	s.mu.Lock()
	c.authed = true
	s.pending--
	s.mu.Unlock()
}

func remoteIP(nc net.Conn) netip.Addr {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(nc.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func isLoopbackListener(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// eslConn is one connected client.
type eslConn struct {
	srv  *EventSocket
	conn net.Conn
	ip   netip.Addr
	log  *slog.Logger

	wmu    sync.Mutex // serialises frames from the reader and the event pump
	authed bool       // set under srv.mu; read by this connection's reader

	events   atomic.Pointer[eventSet]
	format   atomic.Value // string
	unsub    func()
	pumpDone chan struct{}
	bg       sync.WaitGroup

	logSub  *logSub // guarded by wmu
	logDone chan struct{}

	// Outbound mode (outbound.go): the channel this connection
	// controls, whether it has full control, and the session flags the
	// client set. Guarded by wmu.
	session   *call.Channel
	full      bool
	async     bool
	linger    bool
	lingerFor time.Duration
	resume    bool
	divert    bool
}

func (c *eslConn) serve() {
	defer c.cleanup()
	c.format.Store(FormatPlain)
	c.log.Debug("event socket client connected")
	if c.write(authRequest()) != nil {
		return
	}
	// A client gets a few seconds to log in; one that connects and says
	// nothing would otherwise hold a pending slot.
	c.conn.SetReadDeadline(time.Now().Add(c.srv.lock.AuthTimeout))
	c.readLoop()
}

// readLoop reads and runs commands until the peer leaves or exits.
func (c *eslConn) readLoop() {
	r := bufio.NewReaderSize(c.conn, 4096)
	for {
		lim := commandFrame
		if !c.authed {
			lim = preAuthFrame
		}
		f, err := readFrameLimited(r, true, lim)
		if err != nil {
			if errors.Is(err, ErrFrameTooBig) || errors.Is(err, ErrLineTooLong) {
				c.log.Warn("event socket: frame over the limit; disconnecting", "authenticated", c.authed, "err", err)
				return
			}
			if !errors.Is(err, net.ErrClosed) {
				c.log.Debug("event socket client gone", "err", err)
			}
			return
		}
		if !c.handle(f) {
			c.write(disconnectNotice(goodbye))
			return
		}
	}
}

// cleanup ends the connection and waits for its goroutines (run deferred:
// it also contains a panic in the connection's handling).
func (c *eslConn) cleanup() {
	if p := recover(); p != nil {
		c.log.Error("event socket connection panic", "panic", p)
	}
	c.events.Store(nil)
	// Closing first unblocks a pump stuck writing to a client that
	// stopped reading.
	c.conn.Close()
	c.wmu.Lock()
	unsub, done := c.unsub, c.pumpDone
	c.wmu.Unlock()
	if unsub != nil {
		unsub()
		<-done
	}
	c.stopLogs()
	c.bg.Wait()
}

// write sends one whole frame.
func (c *eslConn) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(s)
}

func (c *eslConn) writeLocked(s string) error {
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.conn.Write([]byte(s))
	if err != nil {
		// A stuck or vanished reader: drop the connection so the reader
		// goroutine ends too.
		c.conn.Close()
	}
	return err
}

// handle runs one command and reports whether the connection stays open.
func (c *eslConn) handle(f *frame) bool {
	cmd := parseCommand(f.Command)
	if cmd.Verb == verbExit {
		c.write(commandReply("+OK bye"))
		return false
	}
	if !c.authed {
		if cmd.Verb != verbAuth {
			c.write(commandReply("-ERR command not found"))
			return true
		}
		bans := c.srv.lock.Bans
		if bans.Banned(c.ip) {
			// Banned while this connection was open: the password is not
			// even compared, so guessing on parallel connections is no way
			// around the ban.
			c.write(commandReply("-ERR invalid"))
			return false
		}
		if subtle.ConstantTimeCompare([]byte(cmd.Arg), []byte(c.srv.password)) != 1 {
			c.log.Warn("event socket auth failure from ip " + c.ip.String())
			if o := c.srv.auth; o != nil {
				o.AuthFailure(eventSocketListener)
			}
			if bans.Failure(c.ip) {
				c.log.Warn("event socket: address banned after repeated auth failures", "ip", c.ip.String())
				if o := c.srv.auth; o != nil {
					o.Ban(eventSocketListener)
				}
			}
			c.write(commandReply("-ERR invalid"))
			return false
		}
		c.srv.authenticated(c)
		c.conn.SetReadDeadline(time.Time{})
		c.log.Debug("event socket client authenticated")
		return c.write(commandReply("+OK accepted")) == nil
	}
	if c.restricted(cmd.Verb) {
		// A single-channel outbound session (no "full") may only drive
		// its own channel, as in mod_event_socket.
		return c.write(commandReply("-ERR command not found")) == nil
	}
	switch cmd.Verb {
	case verbAPI:
		return c.write(apiResponse(c.srv.runAPI(cmd.Arg))) == nil
	case verbBgAPI:
		job := f.Get("Job-UUID")
		if job == "" || len(job) > 64 {
			job = uuid.NewString()
		}
		// The reply goes out before the job starts so that the
		// BACKGROUND_JOB event can never overtake it.
		err := c.write("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + oneLine(job) + "\nJob-UUID: " + oneLine(job) + "\n\n")
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			c.srv.runJob(job, cmd.Arg)
		}()
		return err == nil
	case verbEvent:
		return c.subscribe(cmd.Arg)
	case verbNixEvent:
		c.wmu.Lock()
		defer c.wmu.Unlock()
		next, keys := applyNixEvent(c.events.Load(), cmd.Arg)
		if keys == 0 {
			return c.writeLocked(commandReply("-ERR no keywords supplied")) == nil
		}
		c.events.Store(next)
		return c.writeLocked(commandReply("+OK events nixed")) == nil
	case verbNoEvents:
		c.wmu.Lock()
		defer c.wmu.Unlock()
		cur := c.events.Load()
		if cur == nil || (!cur.all && len(cur.names) == 0) {
			return c.writeLocked(commandReply("-ERR not listening for events")) == nil
		}
		// Filters survive noevents in FreeSWITCH; subscriptions do not.
		c.events.Store(&eventSet{names: map[string]bool{}, subclasses: map[string]bool{}, filters: cur.filters})
		return c.writeLocked(commandReply("+OK no longer listening for events")) == nil
	case verbFilter:
		c.wmu.Lock()
		defer c.wmu.Unlock()
		next, reply := applyFilter(c.events.Load(), cmd.Arg)
		c.events.Store(next)
		return c.writeLocked(commandReply(reply)) == nil
	case verbLog:
		if c.srv.logs == nil {
			return c.write(commandReply("-ERR command not found")) == nil
		}
		level := fsLogDebug
		if cmd.Arg != "" {
			l, ok := parseFSLogLevel(firstWord(cmd.Arg))
			if !ok {
				return c.write(commandReply("-ERR invalid log level")) == nil
			}
			level = l
		}
		return c.startLogs(level, firstWord(cmd.Arg))
	case verbNoLog:
		if c.stopLogs() {
			return c.write(commandReply("+OK no longer logging")) == nil
		}
		// sic: FreeSWITCH's spelling, which clients may compare against.
		return c.write(commandReply("-ERR not loging")) == nil
	case verbSendMsg:
		return c.write(commandReply(c.sendmsg(cmd.Arg, f))) == nil
	case verbSendEvent:
		return c.write(commandReply(c.sendevent(cmd.Arg, f))) == nil
	case verbMyEvents:
		return c.myevents(cmd.Arg)
	case verbLinger, verbNoLinger, verbDivert, verbResume, verbConnect, verbGetVar:
		return c.write(c.sessionCommand(cmd)) == nil
	default:
		return c.write(commandReply("-ERR command not found")) == nil
	}
}

// startLogs subscribes the client to the log tap at level (or changes its
// level) and replies as FreeSWITCH does.
func (c *eslConn) startLogs(level int, levelText string) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	hub := c.srv.logs.hub
	if c.logSub == nil {
		c.logSub = hub.subscribe(level)
		c.logDone = make(chan struct{})
		go c.logPump(c.logSub, c.logDone)
	} else {
		hub.setLevel(c.logSub, level)
	}
	return c.writeLocked(commandReply("+OK log level "+levelText+" ["+strconv.Itoa(level)+"]")) == nil
}

// stopLogs ends the log subscription; it reports whether there was one.
func (c *eslConn) stopLogs() bool {
	c.wmu.Lock()
	sub, done := c.logSub, c.logDone
	c.logSub, c.logDone = nil, nil
	c.wmu.Unlock()
	if sub == nil {
		return false
	}
	c.srv.logs.hub.unsubscribe(sub)
	<-done
	return true
}

func (c *eslConn) logPump(sub *logSub, done chan struct{}) {
	defer close(done)
	for l := range sub.ch {
		c.wmu.Lock()
		// Lines queued before nolog are not sent after its reply.
		if c.logSub == sub {
			c.writeLocked(l.frame())
		}
		c.wmu.Unlock()
	}
}

// subscribe handles "event …". The first subscription attaches the
// connection to the bus; later ones only widen the set.
func (c *eslConn) subscribe(args string) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	next, format, keys := applyEventCommand(c.events.Load(), args)
	if format != "" {
		c.format.Store(format)
	}
	if keys == 0 {
		return c.writeLocked(commandReply("-ERR no keywords supplied")) == nil
	}
	if c.session != nil && !c.full {
		// A non-full outbound connection sees only its own channel.
		next.session = c.session.UUID()
	}
	c.events.Store(next)
	c.attachLocked()
	return c.writeLocked(commandReply("+OK event listener enabled "+c.format.Load().(string))) == nil
}

// attachLocked connects the connection to the bus the first time it
// subscribes; later subscriptions only change the set. Call with wmu.
func (c *eslConn) attachLocked() {
	if c.unsub != nil {
		return
	}
	ch, unsub := c.srv.core.Bus.SubscribeKinds(eventQueueLen, func(name, subclass string) bool {
		return c.events.Load().subscribedKind(name, subclass)
	}, func(e *call.Event) bool {
		return c.events.Load().match(e)
	})
	c.unsub = unsub
	c.pumpDone = make(chan struct{})
	go c.pump(ch)
}

// pump writes queued events to the client. It re-checks the subscription
// under the write lock, so events queued before noevents/nixevent are not
// sent after the reply that ended them.
func (c *eslConn) pump(ch <-chan *call.Event) {
	defer close(c.pumpDone)
	for e := range ch {
		c.wmu.Lock()
		if c.events.Load().match(e) {
			format := c.format.Load().(string)
			if c.writeLocked(eventFrame(format, serializeEvent(e, format))) != nil {
				c.wmu.Unlock()
				// Keep draining so unsubscribe never waits on us.
				for range ch {
				}
				return
			}
		}
		c.wmu.Unlock()
	}
}

// runJob runs a bgapi command and fires its BACKGROUND_JOB event, whose
// body is the command's reply.
func (s *EventSocket) runJob(job, line string) {
	body := s.runAPI(line)
	name, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	e := &call.Event{Name: "BACKGROUND_JOB", Body: body}
	e.Add("Job-UUID", job)
	e.Add("Job-Command", name)
	e.Add("Job-Command-Arg", strings.TrimSpace(arg))
	s.core.Fire(e)
}

// runAPI runs one API command for a client. A command that panics (a bug
// in whichever package registered it) costs that command, not the client's
// connection or, for bgapi, the whole process.
func (s *EventSocket) runAPI(line string) (body string) {
	defer func() {
		if p := recover(); p != nil {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			s.log.Error("api command panicked", "command", name, "panic", p)
			body = "-ERR " + name + " Command failed!\n"
		}
	}()
	body = s.core.API(s.ctx, line, nil)
	if body == "" {
		// FreeSWITCH's reply when a command wrote nothing.
		body = "-ERR no reply\n"
	}
	return body
}

// Event-socket command verbs.
const (
	verbUnknown  = ""
	verbAuth     = "auth"
	verbAPI      = "api"
	verbBgAPI    = "bgapi"
	verbEvent    = "event"
	verbNixEvent = "nixevent"
	verbNoEvents = "noevents"
	verbFilter   = "filter"
	verbExit     = "exit"
	verbLog      = "log"
	verbNoLog    = "nolog"
	// Session verbs (session.go, outbound.go).
	verbSendMsg   = "sendmsg"
	verbSendEvent = "sendevent"
	verbMyEvents  = "myevents"
	verbLinger    = "linger"
	verbNoLinger  = "nolinger"
	verbDivert    = "divert_events"
	verbResume    = "resume"
	verbConnect   = "connect"
	verbGetVar    = "getvar"
)

// command is one parsed command line.
type command struct {
	Verb string
	Arg  string
}

// parseCommand splits a command line into its verb (case-insensitive) and
// argument. It accepts what FreeSWITCH accepts: "exit" and "..." end the
// session; "api" and "bgapi" take the rest of the line verbatim.
func parseCommand(line string) command {
	line = strings.TrimRight(line, "\r\n")
	trimmed := strings.TrimLeft(line, " \t")
	if trimmed == "..." {
		return command{Verb: verbExit}
	}
	word, rest, _ := strings.Cut(trimmed, " ")
	switch v := strings.ToLower(word); v {
	case verbExit:
		return command{Verb: verbExit}
	case verbAuth, verbAPI, verbBgAPI, verbEvent, verbNixEvent, verbNoEvents, verbFilter, verbLog, verbNoLog,
		verbSendMsg, verbSendEvent, verbMyEvents, verbLinger, verbNoLinger, verbDivert, verbResume, verbConnect, verbGetVar:
		if v == verbAuth {
			// The password is everything after "auth "; stray trailing
			// whitespace from hand-typed sessions is not part of it.
			return command{Verb: v, Arg: strings.TrimRight(rest, " \t")}
		}
		return command{Verb: v, Arg: strings.TrimSpace(rest)}
	}
	return command{Verb: verbUnknown, Arg: trimmed}
}

// Clients is the number of connected clients, logged in or not.
func (s *EventSocket) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// AuthObserver is told of failed logins and bans (*Metrics counts them).
type AuthObserver interface {
	AuthFailure(listener string)
	Ban(listener string)
}

// eventSocketListener names the event socket in auth metrics.
const eventSocketListener = "event_socket"

// SetAuthObserver reports failed logins and bans to o; call before Start.
func (s *EventSocket) SetAuthObserver(o AuthObserver) { s.auth = o }
