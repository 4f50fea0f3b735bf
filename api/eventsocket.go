package api

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"ccpbx/call"
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
	// authTimeout is how long a client may take to authenticate.
	authTimeout = time.Minute
	// goodbye is the disconnect notice body.
	goodbye = "Disconnected, goodbye.\n"
)

// EventSocket is the FreeSWITCH-compatible event socket server
// (mod_event_socket's inbound mode): clients authenticate with the
// password, run API commands synchronously (api) or in the background
// (bgapi), and subscribe to events in plain, json or xml form.
type EventSocket struct {
	core     *call.Core
	addr     string
	password string
	log      *slog.Logger

	logs *LogTap

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*eslConn]struct{}
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
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
	return &EventSocket{
		core: core, addr: addr, password: password, log: log,
		conns: make(map[*eslConn]struct{}), ctx: ctx, cancel: cancel,
	}
}

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
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return errors.New("event socket: closed")
	}
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
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
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("event socket accept", "err", err)
			return
		}
		c := &eslConn{srv: s, conn: nc, log: s.log.With("remote", nc.RemoteAddr().String())}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// eslConn is one connected client.
type eslConn struct {
	srv  *EventSocket
	conn net.Conn
	log  *slog.Logger

	wmu    sync.Mutex // serialises frames from the reader and the event pump
	authed bool

	events   atomic.Pointer[eventSet]
	format   atomic.Value // string
	unsub    func()
	pumpDone chan struct{}
	bg       sync.WaitGroup

	logSub  *logSub // guarded by wmu
	logDone chan struct{}
}

func (c *eslConn) serve() {
	defer func() {
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
	}()
	c.format.Store(FormatPlain)
	c.log.Debug("event socket client connected")
	if c.write(authRequest()) != nil {
		return
	}
	// A client gets a while to log in; one that connects and says nothing
	// would otherwise hold its goroutine and socket forever.
	c.conn.SetReadDeadline(time.Now().Add(authTimeout))
	r := bufio.NewReaderSize(c.conn, 4096)
	for {
		f, err := readFrame(r, true)
		if err != nil {
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
		if subtle.ConstantTimeCompare([]byte(cmd.Arg), []byte(c.srv.password)) != 1 {
			c.log.Warn("event socket: wrong password")
			c.write(commandReply("-ERR invalid"))
			return false
		}
		c.authed = true
		c.conn.SetReadDeadline(time.Time{})
		c.log.Debug("event socket client authenticated")
		return c.write(commandReply("+OK accepted")) == nil
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
	c.events.Store(next)
	if c.unsub == nil {
		ch, unsub := c.srv.core.Bus.Subscribe(eventQueueLen, func(e *call.Event) bool {
			return c.events.Load().match(e)
		})
		c.unsub = unsub
		c.pumpDone = make(chan struct{})
		go c.pump(ch)
	}
	return c.writeLocked(commandReply("+OK event listener enabled "+c.format.Load().(string))) == nil
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
	case verbAuth, verbAPI, verbBgAPI, verbEvent, verbNixEvent, verbNoEvents, verbFilter, verbLog, verbNoLog:
		if v == verbAuth {
			// The password is everything after "auth "; stray trailing
			// whitespace from hand-typed sessions is not part of it.
			return command{Verb: v, Arg: strings.TrimRight(rest, " \t")}
		}
		return command{Verb: v, Arg: strings.TrimSpace(rest)}
	}
	return command{Verb: verbUnknown, Arg: trimmed}
}
