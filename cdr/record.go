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
// event, whose variable_* headers carry the channel variables. It reads
// the headers once, keeping the variables it records (the last of a name
// counts) and the first of each channel header, without a map of every
// variable.
func FromEvent(e *call.Event) store.CDR {
	var r store.CDR
	var cause, blegUUID, lastBridgeTo, uuid, direction string
	var startU, answerU, endU, duration, billsec, q850, joined, answered string
	var hcause, uid, calldir, chname, switchname string
	var seenCause, seenUID, seenDir, seenName, seenSwitch bool
	for _, h := range e.Headers {
		name, ok := strings.CutPrefix(h.Name, "variable_")
		if !ok {
			switch {
			case h.Name == "Hangup-Cause" && !seenCause:
				hcause, seenCause = h.Value, true
			case h.Name == "Unique-ID" && !seenUID:
				uid, seenUID = h.Value, true
			case h.Name == "Call-Direction" && !seenDir:
				calldir, seenDir = h.Value, true
			case h.Name == "Channel-Name" && !seenName:
				chname, seenName = h.Value, true
			case h.Name == "FreeSWITCH-Switchname" && !seenSwitch:
				switchname, seenSwitch = h.Value, true
			}
			continue
		}
		v := h.Value
		switch name {
		case "hangup_cause":
			cause = v
		case "bleg_uuid":
			blegUUID = v
		case "last_bridge_to":
			lastBridgeTo = v
		case "uuid":
			uuid = v
		case "direction":
			direction = v
		case "caller_id_name":
			r.CallerIDName = v
		case "caller_id_number":
			r.CallerIDNumber = v
		case "destination_number":
			r.DestinationNumber = v
		case "context":
			r.Context = v
		case "start_stamp":
			r.StartStamp = v
		case "answer_stamp":
			r.AnswerStamp = v
		case "end_stamp":
			r.EndStamp = v
		case "start_uepoch":
			startU = v
		case "answer_uepoch":
			answerU = v
		case "end_uepoch":
			endU = v
		case "duration":
			duration = v
		case "billsec":
			billsec = v
		case "hangup_cause_q850":
			q850 = v
		case "accountcode":
			r.Accountcode = v
		case "read_codec":
			r.ReadCodec = v
		case "write_codec":
			r.WriteCodec = v
		case "sip_call_id":
			r.SIPCallID = v
		case "cc_queue":
			r.CCQueue = v
		case "cc_agent":
			r.CCAgent = v
		case "cc_side":
			r.CCSide = v
		case "cc_queue_joined_epoch":
			joined = v
		case "cc_queue_answered_epoch":
			answered = v
		case "cc_cause":
			r.CCCause = v
		case "cc_cancel_reason":
			r.CCCancelReason = v
		}
	}
	num := func(s string) int64 {
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	// The Hangup-Cause header first, the variable when it is absent.
	r.HangupCause = hcause
	if r.HangupCause == "" {
		r.HangupCause = cause
	}
	// FreeSWITCH's template names bleg_uuid, which its core never sets; a
	// bridged leg's other side is worth recording, so it falls back to the
	// leg it was last bridged to.
	r.BlegUUID = blegUUID
	if r.BlegUUID == "" {
		r.BlegUUID = lastBridgeTo
	}
	r.UUID = uuid
	if r.UUID == "" {
		r.UUID = uid
	}
	r.Direction = direction
	if r.Direction == "" {
		r.Direction = calldir
	}
	r.ChannelName = chname
	r.Switchname = switchname
	r.StartUepoch, r.AnswerUepoch, r.EndUepoch = num(startU), num(answerU), num(endU)
	r.Duration, r.Billsec, r.HangupCauseQ850 = num(duration), num(billsec), num(q850)
	r.CCQueueJoined, r.CCQueueAnswered = num(joined), num(answered)
	return r
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
