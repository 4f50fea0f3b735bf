package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"ccpbx/call"
)

// Client errors.
var (
	ErrAuth         = errors.New("event socket: authentication failed")
	ErrDisconnected = errors.New("event socket: disconnected")
	ErrBadCommand   = errors.New("event socket: command must be one line")
)

// clientEventQueue bounds events waiting for NextEvent; beyond it the
// client drops events rather than stall replies behind them.
const clientEventQueue = 4096

// Client is an event-socket client, enough for `ccpbx cli` and tests; it
// speaks to ccpbx and to a real FreeSWITCH alike. One goroutine reads the
// socket and sorts frames into replies and events, so events arriving
// while a command waits for its reply are kept, not mistaken for it.
type Client struct {
	conn    net.Conn
	timeout time.Duration

	reqMu   sync.Mutex // one command at a time, as the protocol requires
	replies chan *frame
	events  chan *ClientEvent
	done    chan struct{}
	err     error // why the reader stopped; set before done is closed
}

// ClientEvent is one event received by a Client, with its header values
// decoded.
type ClientEvent struct {
	// Format is "plain", "json" or "xml" for events, "log" for log lines
	// (after "log <level>"; Body is the line).
	Format  string
	Headers []call.Header
	Body    string
	// Raw is the event as it came over the wire (the frame body).
	Raw string
}

// Plain renders the event the way fs_cli prints it after "RECV EVENT":
// decoded "Name: value" lines, then a blank line or the body.
func (e *ClientEvent) Plain() string {
	ev := &call.Event{Headers: e.Headers, Body: e.Body}
	return serializePlain(ev, false)
}

// Dial connects and authenticates. timeout bounds the connect, the login
// and every later reply (0 means no bound for replies).
func Dial(addr, password string, timeout time.Duration) (*Client, error) {
	if strings.ContainsAny(password, "\r\n") {
		return nil, ErrBadCommand
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("event socket dial %s: %w", addr, err)
	}
	c := &Client{
		conn: conn, timeout: timeout,
		replies: make(chan *frame, 1),
		events:  make(chan *ClientEvent, clientEventQueue),
		done:    make(chan struct{}),
	}
	r := bufio.NewReader(conn)
	if timeout > 0 {
		conn.SetReadDeadline(time.Now().Add(timeout))
	}
	f, err := readFrame(r, false)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("event socket %s: waiting for auth/request: %w", addr, err)
	}
	if ct := f.Get("Content-Type"); ct != "auth/request" {
		conn.Close()
		return nil, fmt.Errorf("event socket %s: expected auth/request, got %q", addr, ct)
	}
	conn.SetReadDeadline(time.Time{})
	go c.readLoop(r)
	reply, err := c.send("auth " + password)
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.HasPrefix(reply.Get("Reply-Text"), "+OK") {
		c.Close()
		return nil, fmt.Errorf("%w: %s", ErrAuth, reply.Get("Reply-Text"))
	}
	return c, nil
}

func (c *Client) readLoop(r *bufio.Reader) {
	defer close(c.done)
	for {
		f, err := readFrame(r, false)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				err = ErrDisconnected
			}
			c.err = err
			return
		}
		ct := f.Get("Content-Type")
		switch {
		case ct == "api/response" || ct == "command/reply":
			select {
			case c.replies <- f:
			default:
				// A reply nobody asked for (a misbehaving server); keeping
				// it would pair it with the next command.
			}
		case strings.HasPrefix(ct, "text/event-"):
			ev := parseClientEvent(strings.TrimPrefix(ct, "text/event-"), f.Body)
			select {
			case c.events <- ev:
			default: // nobody is reading events: drop, keep replies flowing
			}
		case ct == "log/data":
			ev := &ClientEvent{Format: "log", Body: f.Body, Raw: f.Body}
			for _, h := range f.Headers {
				if !strings.EqualFold(h.Name, "Content-Type") && !strings.EqualFold(h.Name, "Content-Length") {
					ev.Headers = append(ev.Headers, h)
				}
			}
			select {
			case c.events <- ev:
			default: // nobody is reading events: drop, keep replies flowing
			}
		case ct == "text/disconnect-notice":
			c.err = ErrDisconnected
			return
		}
	}
}

// send writes one command and waits for its reply.
func (c *Client) send(cmd string, headers ...string) (*frame, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return nil, ErrBadCommand
	}
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	msg := cmd + "\n"
	for _, h := range headers {
		msg += h + "\n"
	}
	msg += "\n"
	if c.timeout > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	}
	if _, err := io.WriteString(c.conn, msg); err != nil {
		return nil, fmt.Errorf("event socket write: %w", err)
	}
	var timer <-chan time.Time
	if c.timeout > 0 {
		t := time.NewTimer(c.timeout)
		defer t.Stop()
		timer = t.C
	}
	select {
	case f := <-c.replies:
		return f, nil
	case <-c.done:
		// A reply may have arrived just before the disconnect notice.
		select {
		case f := <-c.replies:
			return f, nil
		default:
		}
		return nil, c.err
	case <-timer:
		// A reply arriving later would be taken for the next command's;
		// the connection is no longer usable.
		c.conn.Close()
		return nil, fmt.Errorf("event socket: no reply to %q within %s", firstWord(cmd), c.timeout)
	}
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return w
}

// SetTimeout changes how long later commands wait for their reply (0 =
// no bound), e.g. for an originate that rings for a minute.
func (c *Client) SetTimeout(d time.Duration) {
	c.reqMu.Lock()
	c.timeout = d
	c.reqMu.Unlock()
}

// API runs an API command and returns its reply body ("-ERR …" bodies are
// replies, not errors).
func (c *Client) API(cmd string) (string, error) {
	f, err := c.send("api " + cmd)
	if err != nil {
		return "", err
	}
	if f.Get("Content-Type") != "api/response" {
		return "", fmt.Errorf("event socket: api %s: %s", firstWord(cmd), f.Get("Reply-Text"))
	}
	return f.Body, nil
}

// Command sends any other command line ("filter …", "noevents") and
// returns its Reply-Text.
func (c *Client) Command(line string) (string, error) {
	f, err := c.send(line)
	if err != nil {
		return "", err
	}
	if f.Get("Content-Type") == "api/response" {
		return f.Body, nil
	}
	return f.Get("Reply-Text"), nil
}

// Subscribe asks for events: format is "plain", "json" or "xml" (empty =
// plain), names as for the event command ("CUSTOM callcenter::info",
// "ALL", "CHANNEL_ANSWER BACKGROUND_JOB").
func (c *Client) Subscribe(format string, names string) error {
	if format == "" {
		format = FormatPlain
	}
	text, err := c.Command("event " + format + " " + names)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(text, "+OK") {
		return fmt.Errorf("event socket: event %s: %s", names, text)
	}
	return nil
}

// NextEvent waits for the next event. After the server disconnects it
// returns the events still queued, then ErrDisconnected.
func (c *Client) NextEvent() (*ClientEvent, error) {
	select {
	case e := <-c.events:
		return e, nil
	case <-c.done:
		select {
		case e := <-c.events:
			return e, nil
		default:
		}
		return nil, c.err
	}
}

// Events exposes the event stream for select loops; it is never closed,
// use Done to learn of a disconnect.
func (c *Client) Events() <-chan *ClientEvent { return c.events }

// Done is closed when the connection ends.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close says goodbye and closes the connection.
func (c *Client) Close() error {
	select {
	case <-c.done:
	default:
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(c.conn, "exit\n\n")
	}
	err := c.conn.Close()
	<-c.done
	return err
}

// parseClientEvent decodes an event body of the given format. Malformed
// input yields whatever headers could be read; it never fails, because a
// client that reads a stream must go on after one odd event.
func parseClientEvent(format, raw string) *ClientEvent {
	e := &ClientEvent{Format: format, Raw: raw}
	switch format {
	case FormatJSON:
		e.Headers, e.Body = parseJSONEvent(raw)
	case FormatPlain:
		e.Headers, e.Body = parsePlainEvent(raw)
	}
	return e
}

func parsePlainEvent(raw string) ([]call.Header, string) {
	var hs []call.Header
	rest := raw
	for rest != "" {
		line, after, found := strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			rest = after
			break
		}
		rest = after
		if !found {
			rest = ""
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		val = urlDecode(strings.TrimLeft(val, " \t"))
		if strings.EqualFold(name, "Content-Length") {
			// The body follows the blank line; its length is implied.
			continue
		}
		hs = append(hs, call.Header{Name: name, Value: val})
	}
	return hs, rest
}

// parseJSONEvent keeps the object's key order, which FreeSWITCH and ccpbx
// use for header order.
func parseJSONEvent(raw string) ([]call.Header, string) {
	var hs []call.Header
	var body string
	dec := json.NewDecoder(strings.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, ""
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := kt.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			break
		}
		var val string
		switch x := v.(type) {
		case string:
			val = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			val = string(b)
		}
		switch key {
		case "_body":
			body = val
		case "Content-Length":
		default:
			hs = append(hs, call.Header{Name: key, Value: val})
		}
	}
	return hs, body
}
