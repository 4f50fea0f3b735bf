package api

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"ccpbx/call"
)

// parkApp waits for queued commands like dialplan's park.
func parkApp(core *call.Core) call.App {
	return func(ctx context.Context, ch *call.Channel, _ string) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-ch.Done():
				return nil
			case cmd := <-ch.Commands():
				core.RunCommand(ctx, ch, cmd)
			}
		}
	}
}

// TestSendmsgExecute: sendmsg execute on a parked channel runs the
// application, and CHANNEL_EXECUTE_COMPLETE carries the client's
// Event-UUID as Application-UUID (what modesl's execute() waits for).
func TestSendmsgExecute(t *testing.T) {
	core := newTestCore(t, Deps{})
	played := make(chan string, 1)
	core.RegisterApp("playback", func(_ context.Context, _ *call.Channel, data string) error {
		played <- data
		return nil
	})
	core.RegisterApp("park", parkApp(core))
	s := startSocket(t, core)
	ch := core.NewChannel(call.ChannelSpec{UUID: "p1", Name: "sofia/internal/1001@x", Direction: call.Inbound})
	defer ch.Hangup(call.NormalClearing)
	go core.Execute(ch.Context(), ch, "park", "")

	rc := dialRaw(t, s)
	rc.login()
	rc.send("event plain CHANNEL_EXECUTE_COMPLETE\n\n")
	rc.expect(commandReply("+OK event listener enabled plain"))
	rc.send("sendmsg nope\ncall-command: execute\nexecute-app-name: playback\n\n")
	rc.expect(commandReply("-ERR invalid session id [nope]"))
	rc.send("sendmsg p1\ncall-command: execute\nexecute-app-name: bogus\n\n")
	rc.expect(commandReply("-ERR invalid application bogus"))
	rc.send("sendmsg p1\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: /tmp/hello.wav\nEvent-UUID: ev-1\nevent-lock: true\n\n")
	if got := <-played; got != "/tmp/hello.wav" {
		t.Errorf("played %q", got)
	}
	replied := false
	for {
		f := rc.frame()
		if f == commandReply("+OK") {
			replied = true
			continue
		}
		if strings.Contains(f, "Application: playback") {
			if !strings.Contains(f, "Application-UUID: ev-1") || !strings.Contains(f, "Unique-ID: p1") {
				t.Errorf("execute complete without the Event-UUID: %s", f)
			}
			break
		}
	}
	if !replied {
		rc.expect(commandReply("+OK"))
	}
	rc.send("myevents plain nope\n\n")
	rc.expect(commandReply("-ERR invalid uuid"))
	rc.send("linger\n\n")
	rc.expect(commandReply("-ERR not controlling a session"))
	rc.send("divert_events on\n\n")
	rc.expect(commandReply("-ERR not controlling a session.")) // sic: FreeSWITCH's texts differ
	rc.send("sendevent CUSTOM\nEvent-Subclass: my::thing\nX-Foo: bar\n\n")
	if f := rc.frame(); !strings.Contains(f, "Reply-Text: +OK ") {
		t.Errorf("sendevent reply %q", f)
	}
	rc.send("sendmsg p1\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n")
	// Events the hangup fires may come before the reply.
	for f := rc.frame(); f != commandReply("+OK"); f = rc.frame() {
		if strings.HasPrefix(f, "Content-Type: command/reply") {
			t.Fatalf("hangup reply %q", f)
		}
	}
	<-ch.Done()
	if ch.Cause() != call.UserBusy {
		t.Errorf("cause %s", ch.Cause())
	}
}

// TestOutboundSocket: the socket app connects to a program, answers
// "connect" with the channel data, and runs what the program sends.
func TestOutboundSocket(t *testing.T) {
	core := newTestCore(t, Deps{})
	core.RegisterApp("answer", func(_ context.Context, ch *call.Channel, _ string) error { return ch.Answer() })
	s := startSocket(t, core)
	s.RegisterSocketApp()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := core.NewChannel(call.ChannelSpec{UUID: "o1", Name: "sofia/blueivr/5550001@x", Direction: call.Inbound,
		Vars: map[string]string{"caller_id_number": "5550001", "destination_number": "3000"}})
	defer ch.Hangup(call.NormalClearing)
	done := make(chan error, 1)
	go func() { done <- core.Execute(ch.Context(), ch, "socket", ln.Addr().String()+" async full") }()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawConn{t: t, c: nc, r: bufio.NewReader(nc)}
	rc.send("connect\n\n")
	data := rc.frame()
	for _, want := range []string{"Event-Name: CHANNEL_DATA\n", "Unique-ID: o1\n", "Caller-Caller-ID-Number: 5550001\n",
		"Socket-Mode: async\n", "Control: full\n", "Content-Type: command/reply\n", "Reply-Text: +OK\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("connect reply lacks %q:\n%s", want, data)
		}
	}
	rc.send("myevents\n\n")
	rc.expect(commandReply("+OK Events Enabled"))
	rc.send("getvar caller_id_number\n\n")
	rc.expect(commandReply("5550001"))
	rc.send("divert_events\n\n")
	rc.expect(commandReply("-ERR missing value."))
	rc.send("linger\n\n")
	rc.expect(commandReply("+OK will linger"))
	rc.send("sendmsg\ncall-command: execute\nexecute-app-name: answer\n\n")
	// The reply and the answer's events may come in either order.
	replied, answered := false, false
	for !replied || !answered {
		f := rc.frame()
		replied = replied || f == commandReply("+OK")
		answered = answered || strings.Contains(f, "Event-Name: CHANNEL_ANSWER")
	}
	rc.send("exit\n\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Without "resume" the call ends with the program's session.
	<-ch.Done()
}

// TestOutboundSingleChannel: without "full" the program drives only its
// own channel: api and event are refused, sendmsg to another channel too.
func TestOutboundSingleChannel(t *testing.T) {
	core := newTestCore(t, Deps{})
	s := startSocket(t, core)
	s.RegisterSocketApp()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	other := core.NewChannel(call.ChannelSpec{UUID: "other", Name: "sofia/internal/1002@x", Direction: call.Inbound})
	defer other.Hangup(call.NormalClearing)
	ch := core.NewChannel(call.ChannelSpec{UUID: "o2", Name: "sofia/blueivr/5550002@x", Direction: call.Inbound})
	done := make(chan error, 1)
	go func() { done <- core.Execute(ch.Context(), ch, "socket", ln.Addr().String()) }()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawConn{t: t, c: nc, r: bufio.NewReader(nc)}
	rc.send("connect\n\n")
	if data := rc.frame(); !strings.Contains(data, "Socket-Mode: static\n") || !strings.Contains(data, "Control: single-channel\n") {
		t.Errorf("connect reply:\n%s", data)
	}
	rc.send("api status\n\n")
	rc.expect(commandReply("-ERR command not found"))
	rc.send("event plain ALL\n\n")
	rc.expect(commandReply("-ERR command not found"))
	rc.send("sendmsg other\ncall-command: hangup\n\n")
	rc.expect(commandReply("-ERR invalid session id [other]"))
	if !other.Ready() {
		t.Error("a single-channel session hung up another channel")
	}
	ch.Hangup(call.NormalClearing)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
