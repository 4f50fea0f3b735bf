package cdr

import (
	"strconv"
	"strings"

	"ccpbx/call"
	"ccpbx/store"
)

// EventName is the event a record is made from.
const EventName = "CHANNEL_HANGUP_COMPLETE"

// FromEvent builds the record of one leg from its CHANNEL_HANGUP_COMPLETE
// event, whose variable_* headers carry the channel variables.
func FromEvent(e *call.Event) store.CDR {
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
	// FreeSWITCH's template names bleg_uuid, which its core never sets; a
	// bridged leg's other side is worth recording, so it falls back to the
	// leg it was last bridged to.
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
	return store.CDR{
		UUID:              uuid,
		BlegUUID:          bleg,
		Direction:         direction,
		ChannelName:       e.Get("Channel-Name"),
		CallerIDName:      v["caller_id_name"],
		CallerIDNumber:    v["caller_id_number"],
		DestinationNumber: v["destination_number"],
		Context:           v["context"],
		StartStamp:        v["start_stamp"],
		AnswerStamp:       v["answer_stamp"],
		EndStamp:          v["end_stamp"],
		StartUepoch:       num("start_uepoch"),
		AnswerUepoch:      num("answer_uepoch"),
		EndUepoch:         num("end_uepoch"),
		Duration:          num("duration"),
		Billsec:           num("billsec"),
		HangupCause:       cause,
		HangupCauseQ850:   num("hangup_cause_q850"),
		Accountcode:       v["accountcode"],
		ReadCodec:         v["read_codec"],
		WriteCodec:        v["write_codec"],
		SIPCallID:         v["sip_call_id"],
		CCQueue:           v["cc_queue"],
		CCAgent:           v["cc_agent"],
		CCSide:            v["cc_side"],
		CCQueueJoined:     num("cc_queue_joined_epoch"),
		CCQueueAnswered:   num("cc_queue_answered_epoch"),
		CCCause:           v["cc_cause"],
		CCCancelReason:    v["cc_cancel_reason"],
		Switchname:        e.Get("FreeSWITCH-Switchname"),
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
