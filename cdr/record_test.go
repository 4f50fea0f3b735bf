package cdr

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"ccpbx/call"
	"ccpbx/store"
)

// fromEventMap is FromEvent as it was written first (a map of every
// variable): the reference the one-pass FromEvent must agree with.
func fromEventMap(e *call.Event) store.CDR {
	v := make(map[string]string, 64)
	for _, h := range e.Headers {
		if name, ok := strings.CutPrefix(h.Name, "variable_"); ok {
			v[name] = h.Value
		}
	}
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(v[name], 10, 64)
		return n
	}
	cause := e.Get("Hangup-Cause")
	if cause == "" {
		cause = v["hangup_cause"]
	}
	bleg := v["bleg_uuid"]
	if bleg == "" {
		bleg = v["last_bridge_to"]
	}
	uuid := v["uuid"]
	if uuid == "" {
		uuid = e.Get("Unique-ID")
	}
	direction := v["direction"]
	if direction == "" {
		direction = e.Get("Call-Direction")
	}
	return store.CDR{UUID: uuid, BlegUUID: bleg, Direction: direction, ChannelName: e.Get("Channel-Name"),
		CallerIDName: v["caller_id_name"], CallerIDNumber: v["caller_id_number"],
		DestinationNumber: v["destination_number"], Context: v["context"], StartStamp: v["start_stamp"],
		AnswerStamp: v["answer_stamp"], EndStamp: v["end_stamp"], StartUepoch: num("start_uepoch"),
		AnswerUepoch: num("answer_uepoch"), EndUepoch: num("end_uepoch"), Duration: num("duration"),
		Billsec: num("billsec"), HangupCause: cause, HangupCauseQ850: num("hangup_cause_q850"),
		Accountcode: v["accountcode"], ReadCodec: v["read_codec"], WriteCodec: v["write_codec"],
		SIPCallID: v["sip_call_id"], CCQueue: v["cc_queue"], CCAgent: v["cc_agent"], CCSide: v["cc_side"],
		CCQueueJoined: num("cc_queue_joined_epoch"), CCQueueAnswered: num("cc_queue_answered_epoch"),
		CCCause: v["cc_cause"], CCCancelReason: v["cc_cancel_reason"], Switchname: e.Get("FreeSWITCH-Switchname")}
}

// completeEvent is the CHANNEL_HANGUP_COMPLETE of a queue caller's leg,
// built and stamped as the switch fires it to a full subscriber.
func completeEvent(t testing.TB) *call.Event {
	e, _ := completeRecords(t)
	return e
}

// completeRecords fires a queue caller's leg's CHANNEL_HANGUP_COMPLETE to a
// full subscriber and a bare one; it returns the full event and the
// records FromChannel made in the two callbacks, as the event was fired.
func completeRecords(t testing.TB) (full *call.Event, fromChannel [2]store.CDR) {
	core := call.NewCore("pbx1", slog.New(slog.NewTextHandler(io.Discard, nil)))
	vars := map[string]string{"caller_id_name": "Caller", "caller_id_number": "5550001",
		"destination_number": "3000", "context": "public", "sip_call_id": "abc@127.0.0.1", "accountcode": "acct",
		"cc_queue": "3000@default", "cc_agent": "1001", "cc_side": "member", "cc_queue_joined_epoch": "1795664713",
		"cc_queue_answered_epoch": "1795664715", "cc_cause": "Terminated", "last_bridge_to": "b-leg-uuid"}
	for i := range 30 {
		vars["sip_h_X-"+strconv.Itoa(i)] = "value"
	}
	ch := core.NewChannel(call.ChannelSpec{Name: "sofia/trunk/5550001@127.0.0.1", Direction: call.Inbound, Vars: vars})
	ch.MarkAnswered()
	ch.MarkRinging(true)
	done := make(chan *call.Event, 1)
	defer core.Bus.ObserveKinds(call.Kinds(EventName), nil, func(e *call.Event) {
		fromChannel[0] = FromChannel(e.Channel, e)
		done <- e
	})()
	defer core.Bus.ObserveBare(call.Kinds(EventName), nil, func(e *call.Event) {
		fromChannel[1] = FromChannel(e.Channel, e)
	})()
	ch.Hangup(call.NormalClearing)
	return <-done, fromChannel
}

// TestFromChannelAgreesWithEvent: the record read from the channel as its
// complete event is fired is the one its full event's headers give.
func TestFromChannelAgreesWithEvent(t *testing.T) {
	e, recs := completeRecords(t)
	want := FromEvent(e)
	for i, got := range recs {
		if got != want {
			t.Errorf("FromChannel in callback %d\n got %+v\nwant %+v", i, got, want)
		}
	}
	if want.ChannelName == "" || want.Switchname != "pbx1" || want.HangupCause != "NORMAL_CLEARING" || want.Direction != "inbound" {
		t.Errorf("record %+v", want)
	}
}

// TestWriterIsBare: the CDR writer does not make complete events be built
// with every channel header: it subscribes bare and reads the channel.
func TestWriterIsBare(t *testing.T) {
	r := newRig(t, false)
	if want, full := r.core.Wanted(EventName, ""); !want || full {
		t.Errorf("Wanted(%s) = %v, %v; want true, false", EventName, want, full)
	}
}

// TestFromEventAgreesWithMap: the one-pass FromEvent gives the record the
// map of every variable gave, on a real complete event and on events with
// repeated, missing and malformed headers.
func TestFromEventAgreesWithMap(t *testing.T) {
	e := completeEvent(t)
	if got, want := FromEvent(e), fromEventMap(e); got != want {
		t.Fatalf("FromEvent\n got %+v\nwant %+v", got, want)
	}
	if r := FromEvent(e); r.UUID == "" || r.CCQueue != "3000@default" || r.BlegUUID != "b-leg-uuid" ||
		r.HangupCause != "NORMAL_CLEARING" || r.HangupCauseQ850 != 16 || r.Switchname != "pbx1" || r.StartUepoch == 0 {
		t.Errorf("record %+v", r)
	}
	ev := func(kv ...string) *call.Event {
		e := &call.Event{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Add(kv[i], kv[i+1])
		}
		return e
	}
	odd := []*call.Event{
		ev(),
		ev("Unique-ID", "u1", "Unique-ID", "u2", "Call-Direction", "outbound", "Channel-Name", "a",
			"Channel-Name", "b", "Hangup-Cause", "", "variable_hangup_cause", "X"),
		ev("variable_uuid", "v1", "variable_uuid", "v2", "variable_duration", "12x", "variable_billsec", "-3",
			"variable_bleg_uuid", "b", "variable_last_bridge_to", "c", "variable_", "empty",
			"variable_direction", "", "Call-Direction", "inbound"),
	}
	for i, e := range odd {
		if got, want := FromEvent(e), fromEventMap(e); got != want {
			t.Errorf("odd event %d\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func BenchmarkFromEvent(b *testing.B) {
	e := completeEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		FromEvent(e)
	}
}
