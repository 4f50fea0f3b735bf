package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
)

const testPassword = "s3cret-pw"

// startSocket runs an event socket on an ephemeral loopback port.
func startSocket(t *testing.T, core *call.Core) *EventSocket {
	t.Helper()
	s := NewEventSocket(core, "127.0.0.1:0", testPassword, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawConn speaks the protocol by hand so the test sees the exact bytes.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, s *EventSocket) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A generous bound so a broken server fails the test instead of hanging
	// it; it is not a timing assertion.
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// frame reads one frame and returns it verbatim (headers, blank line, body).
func (rc *rawConn) frame() string {
	rc.t.Helper()
	var b strings.Builder
	n := 0
	for {
		line, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("reading frame after %q: %v", b.String(), err)
		}
		b.WriteString(line)
		if line == "\n" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			n = atoiOrFail(rc.t, strings.TrimSpace(v))
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rc.r, body); err != nil {
		rc.t.Fatal(err)
	}
	b.Write(body)
	return b.String()
}

func atoiOrFail(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("bad number %q", s)
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func (rc *rawConn) expect(want string) {
	rc.t.Helper()
	if got := rc.frame(); got != want {
		rc.t.Fatalf("frame:\n%q\nwant\n%q", got, want)
	}
}

// expectClosed checks the server hung up.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	if b, err := rc.r.ReadByte(); err == nil {
		rc.t.Fatalf("connection still open, read %q", b)
	} else if !errors.Is(err, io.EOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			rc.t.Fatal("connection not closed")
		}
	}
}

func (rc *rawConn) login() {
	rc.t.Helper()
	rc.expect("Content-Type: auth/request\n\n")
	rc.send("auth " + testPassword + "\n\n")
	rc.expect("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
}

func TestEventSocketAuth(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)

	t.Run("wrong password", func(t *testing.T) {
		rc := dialRaw(t, s)
		rc.expect("Content-Type: auth/request\n\n")
		rc.send("auth ClueCon\n\n")
		rc.expect("Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
		rc.expect(disconnectNotice(goodbye))
		rc.expectClosed()
	})
	t.Run("commands before auth", func(t *testing.T) {
		rc := dialRaw(t, s)
		rc.expect("Content-Type: auth/request\n\n")
		rc.send("api status\n\n")
		rc.expect("Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
		rc.send("\n\nauth " + testPassword + "\r\n\r\n") // stray blank lines, CRLF
		rc.expect("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
	})
	t.Run("empty password refused at start", func(t *testing.T) {
		e := NewEventSocket(core, "127.0.0.1:0", "", nil)
		if err := e.Start(); err == nil {
			e.Close()
			t.Fatal("started without a password")
		}
	})
}

func TestEventSocketAPIAndExit(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	rc := dialRaw(t, s)
	rc.login()

	rc.send("api hostname\n\n")
	rc.expect("Content-Type: api/response\nContent-Length: 7\n\nblueivr")

	// fs_cli sends a console_execute header; it changes nothing here.
	rc.send("api show registrations\nconsole_execute: true\n\n")
	rc.expect("Content-Type: api/response\nContent-Length: 10\n\n\n0 total.\n")

	rc.send("api nosuch thing\n\n")
	rc.expect(apiResponse("-ERR nosuch Command not found!\n"))

	rc.send("api echo\n\n") // empty reply body
	rc.expect(apiResponse("-ERR no reply\n"))

	rc.send("sendmsg\n\n") // inbound: no session to default to
	rc.expect("Content-Type: command/reply\nReply-Text: -ERR invalid session id []\n\n")

	rc.send("frobnicate\n\n")
	rc.expect("Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")

	rc.send("exit\n\n")
	rc.expect("Content-Type: command/reply\nReply-Text: +OK bye\n\n")
	rc.expect("Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n")
	rc.expectClosed()
}

func TestEventSocketEventsPlain(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	rc := dialRaw(t, s)
	rc.login()

	rc.send("event plain CUSTOM callcenter::info\n\n")
	rc.expect("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n")

	// Not subscribed: another subclass and a channel event.
	core.Fire(&call.Event{Name: "CUSTOM", Subclass: "other::thing"})
	core.Fire(&call.Event{Name: "CHANNEL_ANSWER"})
	e := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info"}
	e.Add("CC-Queue", "3000@default")
	e.Add("CC-Action", "agent-status-change")
	e.Add("CC-Agent", "1001")
	e.Add("CC-Agent-Status", "Logged Out")
	core.Fire(e)

	got := rc.frame()
	head, body, ok := strings.Cut(got, "\n\n")
	if !ok || !strings.HasPrefix(head, "Content-Length: ") || !strings.HasSuffix(head, "\nContent-Type: text/event-plain") {
		t.Fatalf("event frame header: %q", got)
	}
	wantPrefix := "Event-Subclass: callcenter%3A%3Ainfo\nEvent-Name: CUSTOM\nCore-UUID: " + core.UUID + "\nFreeSWITCH-Hostname: blueivr\nFreeSWITCH-Switchname: blueivr\nEvent-Date-Local: 2026-11-26%2003%3A45%3A13\nEvent-Date-GMT: Thu,%2026%20Nov%202026%2003%3A45%3A13%20GMT\nEvent-Date-Timestamp: 1795664713000000\nEvent-Calling-File: "
	wantSuffix := "\nCC-Queue: 3000%40default\nCC-Action: agent-status-change\nCC-Agent: 1001\nCC-Agent-Status: Logged%20Out\n\n"
	if !strings.HasPrefix(body, wantPrefix) || !strings.HasSuffix(body, wantSuffix) {
		t.Fatalf("event body:\n%s", body)
	}

	// Widen to a channel event; nixevent narrows again.
	rc.send("event plain CHANNEL_ANSWER\n\n")
	rc.expect(commandReply("+OK event listener enabled plain"))
	core.Fire(&call.Event{Name: "CHANNEL_ANSWER"})
	if f := rc.frame(); !strings.Contains(f, "\nEvent-Name: CHANNEL_ANSWER\n") {
		t.Fatalf("channel event: %q", f)
	}
	rc.send("nixevent CHANNEL_ANSWER\n\n")
	rc.expect(commandReply("+OK events nixed"))
	rc.send("event plain NOT_AN_EVENT\n\n")
	rc.expect(commandReply("-ERR no keywords supplied"))

	// noevents stops everything; the next fired event must not arrive
	// before the reply to the following api command.
	rc.send("noevents\n\n")
	rc.expect(commandReply("+OK no longer listening for events"))
	core.Fire(e)
	rc.send("api hostname\n\n")
	rc.expect(apiResponse("blueivr"))
	rc.send("noevents\n\n")
	rc.expect(commandReply("-ERR not listening for events"))
}

func TestEventSocketJSONAndFilter(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(FormatJSON, "ALL"); err != nil {
		t.Fatal(err)
	}
	text, err := c.Command("filter CC-Agent 1002")
	if err != nil || text != "+OK filter added. [CC-Agent]=[1002]" {
		t.Fatalf("filter: %q %v", text, err)
	}
	for _, agent := range []string{"1001", "1002"} {
		e := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info"}
		e.Add("CC-Agent", agent)
		e.Add("CC-Agent-Status", "On Break")
		core.Fire(e)
	}
	ev, err := c.NextEvent()
	if err != nil {
		t.Fatal(err)
	}
	if ev.Format != FormatJSON || eventHeader(ev, "CC-Agent") != "1002" || eventHeader(ev, "CC-Agent-Status") != "On Break" || eventHeader(ev, "Event-Subclass") != "callcenter::info" {
		t.Fatalf("json event: %+v", ev)
	}
	if !strings.HasPrefix(ev.Raw, `{"Event-Subclass":"callcenter::info","Event-Name":"CUSTOM",`) {
		t.Errorf("json raw: %s", ev.Raw)
	}
	if text, _ := c.Command("filter delete CC-Agent 1002"); text != "+OK filter deleted. [CC-Agent][1002]" {
		t.Errorf("filter delete: %q", text)
	}
	if text, _ := c.Command("filter lonely"); text != "-ERR invalid syntax" {
		t.Errorf("filter without value: %q", text)
	}
}

func TestEventSocketBgAPI(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	rc := dialRaw(t, s)
	rc.login()
	rc.send("event plain BACKGROUND_JOB\n\n")
	rc.expect(commandReply("+OK event listener enabled plain"))

	rc.send("bgapi version short\nJob-UUID: 7f4db78a-17d7-11dd-b7a0-db4edd065621\n\n")
	rc.expect("Content-Type: command/reply\nReply-Text: +OK Job-UUID: 7f4db78a-17d7-11dd-b7a0-db4edd065621\nJob-UUID: 7f4db78a-17d7-11dd-b7a0-db4edd065621\n\n")
	f := rc.frame()
	for _, part := range []string{
		"Content-Type: text/event-plain\n\n",
		"\nEvent-Name: BACKGROUND_JOB\n",
		"\nJob-UUID: 7f4db78a-17d7-11dd-b7a0-db4edd065621\nJob-Command: version\nJob-Command-Arg: short\nContent-Length: 11\n\n1.0.0-test\n",
	} {
		if !strings.Contains(f, part) {
			t.Fatalf("BACKGROUND_JOB frame lacks %q:\n%s", part, f)
		}
	}

	// Without a Job-UUID header the server makes one up.
	c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe("", "BACKGROUND_JOB"); err != nil {
		t.Fatal(err)
	}
	reply, err := c.Command("bgapi hostname")
	job, ok := strings.CutPrefix(reply, "+OK Job-UUID: ")
	if err != nil || !ok || len(job) != 36 {
		t.Fatalf("bgapi: %q %v", reply, err)
	}
	ev, err := c.NextEvent()
	if err != nil {
		t.Fatal(err)
	}
	if eventHeader(ev, "Job-UUID") != job || ev.Body != "blueivr" {
		t.Fatalf("job event: %+v", ev)
	}
}

// A client that subscribes and never reads must not hold up Fire.
func TestEventSocketSlowConsumerDoesNotBlockCore(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	rc := dialRaw(t, s)
	rc.login()
	rc.send("event plain ALL\n\n")
	rc.expect(commandReply("+OK event listener enabled plain"))
	big := strings.Repeat("x", 8<<10)
	n := 3 * eventQueueLen
	for i := 0; i < n; i++ {
		e := &call.Event{Name: "CUSTOM", Subclass: "load::test"}
		e.Add("Payload", big)
		core.Fire(e) // returns although nobody reads: that is the test
	}
	if core.Bus.Dropped() == 0 {
		t.Fatalf("fired %d events of 8 KiB at a client that never reads, none dropped", n)
	}
	// The server is still responsive to others.
	c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if body, err := c.API("hostname"); err != nil || body != "blueivr" {
		t.Fatalf("api after flood: %q %v", body, err)
	}
}

func TestEventSocketCloseDisconnectsClients(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe("", "ALL"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := c.NextEvent(); err == nil {
		t.Fatal("event after server close")
	}
	if _, err := c.API("status"); err == nil {
		t.Fatal("api after server close")
	}
	if _, err := Dial(s.Addr().String(), testPassword, 20*time.Second); err == nil {
		t.Fatal("dial after close")
	}
}

func TestClientRejectsBadPasswordAndInjection(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	if _, err := Dial(s.Addr().String(), "wrong", 20*time.Second); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v", err)
	}
	c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.API("status\n\nexit"); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("multi-line command: %v", err)
	}
	if body, err := c.API("echo still here"); err != nil || body != "still here" {
		t.Fatalf("after refused command: %q %v", body, err)
	}
}

func TestEventSocketSurvivesPanickingCommand(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	core.RegisterAPI("boom", "panics", func(context.Context, string, *call.Channel) string { panic("bug") })
	s := startSocket(t, core)
	c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if body, err := c.API("boom now"); err != nil || body != "-ERR boom Command failed!\n" {
		t.Fatalf("api boom: %q %v", body, err)
	}
	if err := c.Subscribe("", "BACKGROUND_JOB"); err != nil {
		t.Fatal(err)
	}
	if reply, err := c.Command("bgapi boom"); err != nil || !strings.HasPrefix(reply, "+OK Job-UUID: ") {
		t.Fatalf("bgapi boom: %q %v", reply, err)
	}
	ev, err := c.NextEvent()
	if err != nil || ev.Body != "-ERR boom Command failed!\n" {
		t.Fatalf("bgapi boom: %+v %v", ev, err)
	}
	if body, err := c.API("hostname"); err != nil || body != "blueivr" {
		t.Fatalf("after panic: %q %v", body, err)
	}
}

// Close ends every goroutine the socket started: acceptor, connections,
// event pumps.
func TestEventSocketCloseLeavesNoGoroutines(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	before := goleak.IgnoreCurrent()
	s := NewEventSocket(core, "127.0.0.1:0", testPassword, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var clients []*Client
	for i := 0; i < 3; i++ {
		c, err := Dial(s.Addr().String(), testPassword, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("", "ALL"); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	core.Fire(&call.Event{Name: "HEARTBEAT"})
	s.Close()
	for _, c := range clients {
		c.Close()
	}
	pbxtest.CheckLeaks(t, before)
}

// eventHeader returns the first header of e with that name, ignoring case.
func eventHeader(e *ClientEvent, name string) string {
	v, _ := headerFold(e.Headers, name)
	return v
}

// TestEventSocketInterest: the bus wants what a listener subscribed to,
// by name and CUSTOM subclass, so producers build those events and skip
// the others; "all" wants every kind, and a closed listener nothing.
func TestEventSocketInterest(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	if core.Wants("CHANNEL_EXECUTE", "") || core.Wants("CUSTOM", "callcenter::info") {
		t.Fatal("events wanted before any listener subscribed")
	}
	rc := dialRaw(t, s)
	rc.login()
	rc.send("event plain CUSTOM callcenter::info\n\n")
	rc.expect(commandReply("+OK event listener enabled plain"))
	if !core.Wants("CUSTOM", "callcenter::info") || core.Wants("CUSTOM", "other::thing") || core.Wants("CHANNEL_EXECUTE", "") {
		t.Error("a CUSTOM subclass listener: wrong interest")
	}
	rc.send("event plain all\n\n")
	rc.expect(commandReply("+OK event listener enabled plain"))
	if !core.Wants("CHANNEL_EXECUTE", "") || !core.Wants("CUSTOM", "other::thing") {
		t.Error("an `all` listener does not want every kind")
	}
	ch := core.NewChannel(call.ChannelSpec{Name: "sofia/internal/1001@127.0.0.1", Direction: call.Inbound})
	if f := rc.frame(); !strings.Contains(f, "\nEvent-Name: CHANNEL_CREATE\n") {
		t.Fatalf("first event: %q", f)
	}
	ch.Hangup(call.NormalClearing)
	rc.send("noevents\n\n")
	for {
		if f := rc.frame(); strings.Contains(f, "+OK no longer listening for events") {
			break
		}
	}
	if core.Wants("CHANNEL_EXECUTE", "") {
		t.Error("interest outlived noevents")
	}
}
