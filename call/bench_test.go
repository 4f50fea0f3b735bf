package call

import (
	"strconv"
	"strings"
	"testing"
)

func BenchmarkParseDialString(b *testing.B) {
	const dial = `{origination_caller_id_number=1001,ignore_early_media=true,cc_member_uuid='a,b'}[leg_timeout=15]user/1001,user/1002|sofia/internal/sip:1003@127.0.0.1:5060`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDialString(dial); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFire measures stamping and publishing a channel event (what
// every CHANNEL_* and callcenter event costs) to one subscriber that keeps
// up and one that filters it out.
func BenchmarkFire(b *testing.B) {
	c := newTestCore(b)
	ch := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@127.0.0.1", Direction: Inbound,
		Vars: map[string]string{"caller_id_number": "1001", "destination_number": "300"}})
	events, cancel := c.Bus.Subscribe(1, nil)
	defer cancel()
	_, cancelOther := c.Bus.Subscribe(1, func(e *Event) bool { return e.Name == "CUSTOM" })
	defer cancelOther()
	b.ReportAllocs()
	for b.Loop() {
		c.Fire(ch.Event("CHANNEL_EXECUTE"))
		<-events
	}
}

// BenchmarkChannelEventQueueCall builds the event of a leg of a bridged
// queue call: ~60 variables (what a trunk caller carries once the
// callcenter app ran) and the other leg's profile. A queue call fires a few
// dozen of these (CHANNEL_* states, EXECUTE, callcenter::info).
func BenchmarkChannelEventQueueCall(b *testing.B) {
	c := newTestCore(b)
	vars := map[string]string{"caller_id_number": "5550001", "caller_id_name": "Caller", "destination_number": "3000",
		"context": "blueivr", "network_addr": "127.0.0.1"}
	for i := range 55 {
		vars["cc_variable_"+strconv.Itoa(i)] = "value-" + strconv.Itoa(i)
	}
	a := c.NewChannel(ChannelSpec{Name: "sofia/blueivr/5550001@127.0.0.1:5080", Direction: Inbound, Vars: vars})
	o := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@127.0.0.1:5060", Direction: Outbound,
		Vars: map[string]string{"caller_id_number": "5550001", "destination_number": "1001"}})
	a.mu.Lock()
	a.other, a.otherType = o, "originatee"
	a.mu.Unlock()
	b.ReportAllocs()
	for b.Loop() {
		e := a.Event("CHANNEL_EXECUTE")
		c.stamp(e)
	}
}

// BenchmarkLegEvents is the channel events of one queue call: a caller leg
// (with ~40 variables) and an agent leg created, answered, bridged and
// hung up, down to CHANNEL_HANGUP_COMPLETE. "plain" has the subscribers of
// a plain run (the status counter and the metrics on CREATE, HANGUP,
// BRIDGE and UNBRIDGE, the CDR writer on HANGUP_COMPLETE, all bare: main
// at cfd4ab8 built every one of those events full all the same); "esl"
// adds an event-socket client that wants every channel event in full.
func BenchmarkLegEvents(b *testing.B) {
	for _, esl := range []bool{false, true} {
		name := "plain"
		if esl {
			name = "esl"
		}
		b.Run(name, func(b *testing.B) {
			c := newTestCore(b)
			kinds := Kinds("CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE")
			bridged := make(chan struct{}, 1)
			defer c.Bus.ObserveBare(kinds, nil, func(e *Event) {
				if e.Name == "CHANNEL_BRIDGE" {
					bridged <- struct{}{}
				}
			})()
			_, stop := c.Bus.SubscribeBare(0, Kinds("CHANNEL_CREATE", "CHANNEL_HANGUP"), func(*Event) bool { return false })
			defer stop()
			// The CDR writer: bare, it reads the variables of a record
			// from the channel as the event is fired.
			var complete int
			names := []string{"hangup_cause", "uuid", "direction", "caller_id_name", "caller_id_number",
				"destination_number", "context", "start_stamp", "answer_stamp", "end_stamp", "duration", "billsec",
				"read_codec", "write_codec", "sip_call_id", "cc_queue", "cc_agent", "cc_side", "cc_cause"}
			vals := make([]string, len(names))
			defer c.Bus.ObserveBare(Kinds("CHANNEL_HANGUP_COMPLETE"), nil, func(e *Event) {
				e.Channel.LookupVars(names, vals)
				complete++
			})()
			if esl {
				events, stop := c.Bus.SubscribeKinds(1024, func(name, _ string) bool { return strings.HasPrefix(name, "CHANNEL_") }, nil)
				defer stop()
				go func() {
					for range events {
					}
				}()
			}
			vars := map[string]string{"caller_id_number": "5550001", "caller_id_name": "Caller",
				"destination_number": "3000", "context": "public", "network_addr": "127.0.0.1"}
			for i := range 35 {
				vars["sip_h_X-Var-"+strconv.Itoa(i)] = "value-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			for b.Loop() {
				a := c.NewChannel(ChannelSpec{Name: "sofia/trunk/5550001@127.0.0.1:5080", Direction: Inbound,
					Vars: vars, Signalling: &fakeSig{}, Media: &fakeMedia{}})
				o := c.NewChannel(ChannelSpec{Name: "sofia/internal/1001@127.0.0.1:5060", Direction: Outbound,
					Vars:       map[string]string{"caller_id_number": "5550001", "destination_number": "1001"},
					Signalling: &fakeSig{}, Media: &fakeMedia{}})
				_ = a.Answer()
				o.MarkAnswered()
				done := make(chan error, 1)
				go func() { done <- c.Bridge(a, o) }()
				<-bridged
				o.Hangup(NormalClearing)
				<-done
				a.Hangup(NormalClearing)
			}
			if complete == 0 {
				b.Fatal("no CHANNEL_HANGUP_COMPLETE")
			}
		})
	}
}
