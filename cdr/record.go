package cdr

import (
	"strconv"
	"strings"

	"ccpbx/call"
	"ccpbx/store"
)

// EventName is the event a record is made from.
const EventName = "CHANNEL_HANGUP_COMPLETE"

// The channel variables a record is made of, by index into recordVars.
const (
	vHangupCause = iota
	vBlegUUID
	vLastBridgeTo
	vUUID
	vDirection
	vCallerIDName
	vCallerIDNumber
	vDestinationNumber
	vContext
	vStartStamp
	vAnswerStamp
	vEndStamp
	vStartUepoch
	vAnswerUepoch
	vEndUepoch
	vDuration
	vBillsec
	vHangupCauseQ850
	vAccountcode
	vReadCodec
	vWriteCodec
	vSIPCallID
	vCCQueue
	vCCAgent
	vCCSide
	vCCQueueJoined
	vCCQueueAnswered
	vCCCause
	vCCCancelReason
	nRecordVars
)

var recordVars = [nRecordVars]string{"hangup_cause", "bleg_uuid", "last_bridge_to", "uuid", "direction",
	"caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp", "answer_stamp",
	"end_stamp", "start_uepoch", "answer_uepoch", "end_uepoch", "duration", "billsec", "hangup_cause_q850",
	"accountcode", "read_codec", "write_codec", "sip_call_id", "cc_queue", "cc_agent", "cc_side",
	"cc_queue_joined_epoch", "cc_queue_answered_epoch", "cc_cause", "cc_cancel_reason"}

// recordVarIndex maps a variable name to its index in recordVars.
var recordVarIndex = func() map[string]int {
	m := make(map[string]int, nRecordVars)
	for i, name := range recordVars {
		m[name] = i
	}
	return m
}()

// recordHeaders are the channel headers a record falls back on.
type recordHeaders struct{ cause, uuid, direction, name, switchname string }

// FromEvent builds the record of one leg from its CHANNEL_HANGUP_COMPLETE
// event, whose variable_* headers carry the channel variables. It reads
// the headers once, keeping the variables it records (the last of a name
// counts) and the first of each channel header, without a map of every
// variable.
func FromEvent(e *call.Event) store.CDR {
	var v [nRecordVars]string
	var h recordHeaders
	var seenCause, seenUID, seenDir, seenName, seenSwitch bool
	for _, hd := range e.Headers {
		name, ok := strings.CutPrefix(hd.Name, "variable_")
		if ok {
			if i, ok := recordVarIndex[name]; ok {
				v[i] = hd.Value
			}
			continue
		}
		switch {
		case hd.Name == "Hangup-Cause" && !seenCause:
			h.cause, seenCause = hd.Value, true
		case hd.Name == "Unique-ID" && !seenUID:
			h.uuid, seenUID = hd.Value, true
		case hd.Name == "Call-Direction" && !seenDir:
			h.direction, seenDir = hd.Value, true
		case hd.Name == "Channel-Name" && !seenName:
			h.name, seenName = hd.Value, true
		case hd.Name == "FreeSWITCH-Switchname" && !seenSwitch:
			h.switchname, seenSwitch = hd.Value, true
		}
	}
	return record(&v, &h)
}

// FromChannel builds the record of one leg from the channel itself, as
// its CHANNEL_HANGUP_COMPLETE e (bare or full) is fired: what FromEvent
// reads from the full event's headers, read from the channel, so the
// channel headers need not be built for the CDR. Call it while e is
// being fired (in an Observe callback); only e's envelope is read.
func FromChannel(ch *call.Channel, e *call.Event) store.CDR {
	var v [nRecordVars]string
	ch.LookupVars(recordVars[:], v[:])
	h := recordHeaders{uuid: ch.UUID(), direction: string(ch.Direction()), name: ch.Name(),
		switchname: e.Get("FreeSWITCH-Switchname")}
	if !ch.Ready() {
		// The event has Hangup-Cause once the leg is down.
		h.cause = string(ch.Cause())
	}
	return record(&v, &h)
}

// record is a leg's record from its variables (by recordVars index) and
// channel headers.
func record(v *[nRecordVars]string, h *recordHeaders) store.CDR {
	num := func(i int) int64 {
		n, _ := strconv.ParseInt(v[i], 10, 64)
		return n
	}
	// The Hangup-Cause header first, the variable when it is absent.
	cause := h.cause
	if cause == "" {
		cause = v[vHangupCause]
	}
	// FreeSWITCH's template names bleg_uuid, which its core never sets; a
	// bridged leg's other side is worth recording, so it falls back to the
	// leg it was last bridged to.
	bleg := v[vBlegUUID]
	if bleg == "" {
		bleg = v[vLastBridgeTo]
	}
	uuid := v[vUUID]
	if uuid == "" {
		uuid = h.uuid
	}
	direction := v[vDirection]
	if direction == "" {
		direction = h.direction
	}
	return store.CDR{
		UUID:              uuid,
		BlegUUID:          bleg,
		Direction:         direction,
		ChannelName:       h.name,
		CallerIDName:      v[vCallerIDName],
		CallerIDNumber:    v[vCallerIDNumber],
		DestinationNumber: v[vDestinationNumber],
		Context:           v[vContext],
		StartStamp:        v[vStartStamp],
		AnswerStamp:       v[vAnswerStamp],
		EndStamp:          v[vEndStamp],
		StartUepoch:       num(vStartUepoch),
		AnswerUepoch:      num(vAnswerUepoch),
		EndUepoch:         num(vEndUepoch),
		Duration:          num(vDuration),
		Billsec:           num(vBillsec),
		HangupCause:       cause,
		HangupCauseQ850:   num(vHangupCauseQ850),
		Accountcode:       v[vAccountcode],
		ReadCodec:         v[vReadCodec],
		WriteCodec:        v[vWriteCodec],
		SIPCallID:         v[vSIPCallID],
		CCQueue:           v[vCCQueue],
		CCAgent:           v[vCCAgent],
		CCSide:            v[vCCSide],
		CCQueueJoined:     num(vCCQueueJoined),
		CCQueueAnswered:   num(vCCQueueAnswered),
		CCCause:           v[vCCCause],
		CCCancelReason:    v[vCCCancelReason],
		Switchname:        h.switchname,
	}
}

// csvFields are the values of mod_cdr_csv's "example" template (the
// default-template of FreeSWITCH's vanilla cdr_csv.conf.xml), in its order.
func csvFields(r *store.CDR) [15]string {
	return [15]string{
		r.CallerIDName, r.CallerIDNumber, r.DestinationNumber, r.Context,
		r.StartStamp, r.AnswerStamp, r.EndStamp,
		strconv.FormatInt(r.Duration, 10), strconv.FormatInt(r.Billsec, 10),
		r.HangupCause, r.UUID, r.BlegUUID, r.Accountcode, r.ReadCodec, r.WriteCodec,
	}
}

// AppendCSV appends r's Master.csv line: every field in double quotes,
// comma-separated, no spaces, newline-terminated, as the template writes
// it. FreeSWITCH pastes values in unescaped, so a caller name with a quote
// breaks its line for every CSV reader; ccpbx doubles an embedded quote
// (RFC 4180, which those readers and LOAD DATA … ENCLOSED BY '"' undo) and
// turns CR and LF into spaces so that one line stays one record for
// line-oriented importers.
func AppendCSV(b []byte, r *store.CDR) []byte {
	for i, f := range csvFields(r) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(f); j++ {
			switch c := f[j]; c {
			case '"':
				b = append(b, '"', '"')
			case '\r', '\n':
				b = append(b, ' ')
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	return append(b, '\n')
}
