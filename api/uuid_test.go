package api

import (
	"context"
	"testing"

	"ccpbx/call"
)

// TestUUIDCommandReplies: the uuid_* commands answer with FreeSWITCH's
// mod_commands strings, for a live channel and for one that does not exist.
func TestUUIDCommandReplies(t *testing.T) {
	core := newTestCore(t, Deps{Hostname: "blueivr"})
	ch := core.NewChannel(call.ChannelSpec{UUID: "u1", Name: "sofia/internal/1001@127.0.0.1", Direction: call.Inbound,
		Media: fakeMedia{}, Signalling: &holdSig{}, Vars: map[string]string{"destination_number": "3000"}})
	defer ch.Hangup(call.NormalClearing)
	plain := core.NewChannel(call.ChannelSpec{UUID: "u2", Name: "sofia/internal/1002@127.0.0.1", Direction: call.Inbound,
		Media: fakeMedia{}, Vars: map[string]string{"destination_number": "3000"}})
	defer plain.Hangup(call.NormalClearing)
	plain.MarkAnswered()
	for _, tt := range []struct{ in, want string }{
		{"uuid_exists u1", "true"},
		{"uuid_exists nope", "false"},
		{"uuid_setvar u1 foo bar", "+OK\n"},
		{"uuid_getvar u1 foo", "bar"},
		{"uuid_getvar u1 missing", "_undef_"},
		{"uuid_setvar u1 foo", "+OK\n"},
		{"uuid_getvar u1 foo", "_undef_"},
		{"uuid_setvar nope foo bar", "-ERR No such channel!\n"},
		{"uuid_getvar nope foo", "-ERR No such channel!\n"},
		{"uuid_setvar", "-USAGE: <uuid> <var> [value]\n"},
		{"uuid_getvar u1", "-USAGE: <uuid> <var>\n"},
		{"uuid_transfer nope 1000", "-ERR No Such Channel!\n"},
		{"uuid_transfer u1", "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"},
		{"uuid_transfer u1 1000 XML default", "+OK\n"},
		{"uuid_break nope", "-ERR No Such Channel!\n"},
		{"uuid_break", "-USAGE: <uuid> [all]\n"},
		{"uuid_break u1", ""},
		{"uuid_bridge u1", "-USAGE: <uuid> <other_uuid>\n"},
		{"uuid_bridge u1 nope", "-ERR Invalid uuid\n"},
		{"uuid_broadcast u1", "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"},
		{"uuid_broadcast nope /x.wav", "-ERR Invalid uuid\n"},
		{"uuid_broadcast u1 /x.wav aleg", "+OK Message Sent\n"},
		{"uuid_hold u1", "-ERR Operation failed\n"}, // not answered yet
		{"uuid_answer nope", "-ERROR\n"},
		{"uuid_answer u1", "+OK\n"},
		{"uuid_hold u1", "+OK Success\n"},
		{"uuid_hold u1", "-ERR Operation failed\n"}, // already held
		{"uuid_hold toggle u1", "+OK Success\n"},
		{"uuid_hold off u1", "-ERR Operation failed\n"},
		{"uuid_hold", "-USAGE: [off|toggle] <uuid> [<display>]\n-ERR Operation failed\n"},
		{"uuid_hold nope", "-ERR Operation failed\n"},
		{"uuid_hold u2", "-ERR Operation failed\n"}, // signalling that cannot hold
	} {
		if got := core.API(context.Background(), tt.in, nil); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.in, got, tt.want)
		}
	}
	if plain.Held() {
		t.Error("a failed uuid_hold marked the channel held")
	}
	if ch.Var("destination_number") != "1000" || ch.Var("context") != "default" || !ch.TakeTransfer() {
		t.Errorf("uuid_transfer did not set up the re-hunt: dest %q context %q", ch.Var("destination_number"), ch.Var("context"))
	}
	select {
	case cmd := <-ch.Commands():
		if cmd.App != "playback" || cmd.Arg != "/x.wav" {
			t.Errorf("uuid_broadcast queued %+v", cmd)
		}
	default:
		t.Error("uuid_broadcast queued nothing")
	}
}

// holdSig is signalling that can hold (call.Holder).
type holdSig struct{}

func (*holdSig) Ring(bool) error         { return nil }
func (*holdSig) Answer() error           { return nil }
func (*holdSig) Hangup(call.Cause) error { return nil }
func (*holdSig) Hold(bool) error         { return nil }
