package api

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/internal/pbxtest"
)

func TestCLIExecutePrintsBodyAndNewline(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr", Registrations: articleBindings()})
	s := startSocket(t, core)
	var out, errb bytes.Buffer
	code := RunCLI(CLIArgs{Addr: s.Addr().String(), Password: testPassword, Command: "show registrations"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	// fs_cli -x prints the body and one more newline.
	if want := readTestdata(t, "show_registrations.golden") + "\n"; out.String() != want {
		t.Fatalf("output:\n%q\nwant\n%q", out.String(), want)
	}

	out.Reset()
	RunCLI(CLIArgs{Addr: s.Addr().String(), Password: testPassword, Command: "hostname"}, nil, &out, &errb)
	if out.String() != "blueivr\n" {
		t.Fatalf("hostname: %q", out.String())
	}
}

func TestCLIConnectionErrors(t *testing.T) {
	core := newTestCore(t, Deps{})
	s := startSocket(t, core)
	var out, errb bytes.Buffer
	if code := RunCLI(CLIArgs{Addr: s.Addr().String(), Password: "nope", Command: "status"}, nil, &out, &errb); code != 1 {
		t.Fatalf("wrong password: exit %d", code)
	}
	if !strings.Contains(errb.String(), "authentication failed") || out.Len() != 0 {
		t.Fatalf("wrong password: stdout %q stderr %q", out.String(), errb.String())
	}
	addr := s.Addr().String()
	s.Close()
	errb.Reset()
	if code := RunCLI(CLIArgs{Addr: addr, Password: testPassword, Command: "status"}, nil, &out, &errb); code != 1 {
		t.Fatalf("no server: exit %d", code)
	}
	if !strings.Contains(errb.String(), "Error connecting to "+addr) {
		t.Fatalf("no server: stderr %q", errb.String())
	}
}

// syncBuffer lets the test read what RunCLI writes from its goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCLIEventsPrintsLikeFsCli(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	var out syncBuffer
	var errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- RunCLI(CLIArgs{Addr: s.Addr().String(), Password: testPassword, Events: "CUSTOM callcenter::info"}, nil, &out, &errb)
	}()
	// The subscription is in place once the server has a listener on the
	// bus; fire until the first event shows up.
	e := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info", Time: testNow}
	e.Add("CC-Agent", "1001")
	e.Add("CC-Action", "agent-status-change")
	e.Add("CC-Agent-Status", "Logged Out")
	pbxtest.WaitFor(t, 20*time.Second, func() bool {
		ev := *e
		ev.Headers = append([]call.Header(nil), e.Headers...)
		core.Fire(&ev)
		return strings.Contains(out.String(), "RECV EVENT")
	}, "the CLI to print the first event")
	s.Close() // the CLI ends when the server goes away
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	got := out.String()
	first, _, _ := strings.Cut(strings.TrimPrefix(got, "RECV EVENT\n"), "RECV EVENT\n")
	want := "Event-Subclass: callcenter::info\nEvent-Name: CUSTOM\nCore-UUID: " + core.UUID +
		"\nFreeSWITCH-Hostname: blueivr\nFreeSWITCH-Switchname: blueivr\nEvent-Date-Local: 2026-11-26 03:45:13\nEvent-Date-GMT: Thu, 26 Nov 2026 03:45:13 GMT\nEvent-Date-Timestamp: 1795664713000000\nEvent-Calling-File: "
	tail := "\nCC-Agent: 1001\nCC-Action: agent-status-change\nCC-Agent-Status: Logged Out\n\n\n"
	if !strings.HasPrefix(got, "RECV EVENT\n") || !strings.HasPrefix(first, want) || !strings.HasSuffix(first, tail) {
		t.Fatalf("events output:\n%s", got)
	}
}

func TestCLIInteractive(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	s := startSocket(t, core)
	in := strings.NewReader("hostname\n\n/bogus\n/noevents\necho two words\n/exit\nhostname\n")
	var out, errb bytes.Buffer
	code := RunCLI(CLIArgs{Addr: s.Addr().String(), Password: testPassword}, in, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := CLIPrompt + "blueivr\n" +
		CLIPrompt + CLIPrompt + "Unknown command [/bogus]\n" +
		CLIPrompt + "-ERR not listening for events\n" +
		CLIPrompt + "two words\n" +
		CLIPrompt
	if out.String() != want {
		t.Fatalf("interactive:\n%q\nwant\n%q", out.String(), want)
	}

	// End of input ends the session too.
	out.Reset()
	code = RunCLI(CLIArgs{Addr: s.Addr().String(), Password: testPassword}, strings.NewReader("version short\n"), &out, io.Discard)
	if code != 0 || out.String() != CLIPrompt+"1.0.0-test\n\n"+CLIPrompt+"\n" {
		t.Fatalf("eof: %d %q", code, out.String())
	}
}

// A server that stops answering: the command fails, and the client does not
// pair a late reply with a later command because it gives the connection up.
func TestClientReplyTimeoutClosesConnection(t *testing.T) {
	ln := pbxtest.ListenTCP(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, authRequest())
		r := bufio.NewReader(c)
		readFrame(r, true) // auth
		io.WriteString(c, commandReply("+OK accepted"))
		readFrame(r, true) // the api command, never answered
		readFrame(r, true) // returns when the client hangs up
	}()
	c, err := Dial(ln.Addr().String(), "pw", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(50 * time.Millisecond)
	if _, err := c.API("status"); err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Fatalf("first: %v", err)
	}
	<-c.Done()
	if _, err := c.API("status"); err == nil {
		t.Fatal("second command on a given-up connection succeeded")
	}
}
