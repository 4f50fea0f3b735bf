package cdr

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"ccpbx/call"
	"ccpbx/store"
)

// DefaultListCount is how many records `cdr list` shows without a count.
const DefaultListCount = 20

// maxListCount bounds one listing, so a typo cannot page the whole table
// through the event socket.
const maxListCount = 10000

// cellReplacer keeps a value inside its cell of a |-separated listing.
var cellReplacer = strings.NewReplacer("|", " ", "\n", " ", "\r", " ")

const usage = "-ERR Usage: cdr list [<count>] [json]\n"

// listColumns are the columns of `cdr list`, FreeSWITCH variable names.
var listColumns = []string{"uuid", "bleg_uuid", "direction", "caller_id_name", "caller_id_number",
	"destination_number", "context", "start_stamp", "answer_stamp", "end_stamp", "duration", "billsec",
	"hangup_cause", "accountcode", "cc_queue", "cc_agent", "cc_side", "cc_cause", "cc_cancel_reason",
	"cc_queue_joined_epoch", "cc_queue_answered_epoch"}

// api is the `cdr` command: `cdr list [N] [json]` shows the last N records,
// oldest first, as a |-separated listing in the style of callcenter_config
// (header only when there are rows, then +OK) or as JSON.
func (w *Writer) api(ctx context.Context, args string, _ *call.Channel) string {
	f := strings.Fields(args)
	if len(f) == 0 || f[0] != "list" {
		return usage
	}
	n, asJSON := DefaultListCount, false
	for _, a := range f[1:] {
		switch v, err := strconv.Atoi(a); {
		case a == "json":
			asJSON = true
		case err == nil && v > 0:
			n = min(v, maxListCount)
		default:
			return usage
		}
	}
	// Records of legs that just ended may still be queued; a listing
	// taken right after a hangup should show them.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := w.Flush(fctx); err != nil {
		w.log.Warn("cdr list: queued records not yet written", "err", err)
	}
	cancel()
	recs, err := w.opt.Store.RecentCDRs(ctx, n)
	if err != nil {
		w.log.Error("cdr list", "err", err)
		return "-ERR " + err.Error() + "\n"
	}
	if asJSON {
		return listJSON(recs)
	}
	var b strings.Builder
	if len(recs) > 0 {
		b.WriteString(strings.Join(listColumns, "|"))
		b.WriteByte('\n')
	}
	for i := range recs {
		v := Variables(&recs[i])
		for j, c := range listColumns {
			if j > 0 {
				b.WriteByte('|')
			}
			b.WriteString(cellReplacer.Replace(v[c]))
		}
		b.WriteByte('\n')
	}
	b.WriteString("+OK\n")
	return b.String()
}

// Variables gives a record as FreeSWITCH channel variables (string values),
// leaving out the ones FreeSWITCH would not have set: empty text, and the
// cc_* epochs of legs that never joined or were never answered in a queue.
func Variables(r *store.CDR) map[string]string {
	v := map[string]string{}
	set := func(k, s string) {
		if s != "" {
			v[k] = s
		}
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	set("uuid", r.UUID)
	set("bleg_uuid", r.BlegUUID)
	set("direction", r.Direction)
	set("channel_name", r.ChannelName)
	set("caller_id_name", r.CallerIDName)
	set("caller_id_number", r.CallerIDNumber)
	set("destination_number", r.DestinationNumber)
	set("context", r.Context)
	set("start_stamp", r.StartStamp)
	set("answer_stamp", r.AnswerStamp)
	set("end_stamp", r.EndStamp)
	v["start_epoch"] = i64(r.StartUepoch / 1e6)
	v["answer_epoch"] = i64(r.AnswerUepoch / 1e6)
	v["end_epoch"] = i64(r.EndUepoch / 1e6)
	v["start_uepoch"] = i64(r.StartUepoch)
	v["answer_uepoch"] = i64(r.AnswerUepoch)
	v["end_uepoch"] = i64(r.EndUepoch)
	v["duration"] = i64(r.Duration)
	v["billsec"] = i64(r.Billsec)
	set("hangup_cause", r.HangupCause)
	if r.HangupCauseQ850 != 0 {
		v["hangup_cause_q850"] = i64(r.HangupCauseQ850)
	}
	set("accountcode", r.Accountcode)
	set("read_codec", r.ReadCodec)
	set("write_codec", r.WriteCodec)
	set("sip_call_id", r.SIPCallID)
	set("cc_queue", r.CCQueue)
	set("cc_agent", r.CCAgent)
	set("cc_side", r.CCSide)
	if r.CCQueueJoined != 0 {
		v["cc_queue_joined_epoch"] = i64(r.CCQueueJoined)
	}
	if r.CCQueueAnswered != 0 {
		v["cc_queue_answered_epoch"] = i64(r.CCQueueAnswered)
	}
	set("cc_cause", r.CCCause)
	set("cc_cancel_reason", r.CCCancelReason)
	return v
}

// jsonCDR is one record in the shape of mod_json_cdr's documents
// (switchname, channel_data, variables with string values), plus the row id.
type jsonCDR struct {
	ID          int64             `json:"id"`
	Switchname  string            `json:"switchname"`
	ChannelData jsonChannelData   `json:"channel_data"`
	Variables   map[string]string `json:"variables"`
}

type jsonChannelData struct {
	Direction string `json:"direction"`
	State     string `json:"state"`
}

func listJSON(recs []store.CDR) string {
	out := struct {
		Count int       `json:"count"`
		CDRs  []jsonCDR `json:"cdrs"`
	}{Count: len(recs), CDRs: make([]jsonCDR, 0, len(recs))}
	for i := range recs {
		r := &recs[i]
		out.CDRs = append(out.CDRs, jsonCDR{ID: r.ID, Switchname: r.Switchname,
			ChannelData: jsonChannelData{Direction: r.Direction, State: "CS_REPORTING"},
			Variables:   Variables(r)})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "-ERR " + err.Error() + "\n"
	}
	return string(b) + "\n"
}
