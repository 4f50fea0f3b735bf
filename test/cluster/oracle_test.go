package cluster

// The oracle's phone side, independent of ccpbx: it reads only what an
// agent's phone saw (sipp's -trace_msg file) and turns it into offer
// intervals, then looks for two of one agent's intervals that overlap (the
// agent offered twice at once, or offered during one of its calls). These
// helpers carry no build tag, so their unit tests run with every
// `go test ./...`.

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// traceMsg is one message of a sipp trace.
type traceMsg struct {
	at       time.Time
	sent     bool   // sipp sent it (else received)
	method   string // request method, "" for a response
	status   int    // response status, 0 for a request
	callID   string
	cseqMeth string // the CSeq header's method
	toTag    bool   // the To header has a tag
	from     string // the From header's value
}

// traceSep opens every entry of a sipp message trace:
// "----------------------------------------------- 2026-12-02 15:45:32.135957".
const traceSep = "----------------------------------------------- "

// parseTrace reads a sipp -trace_msg file (timestamps in local time, as
// sipp writes them). Entries it cannot read (a truncated last one) are
// skipped; a trace can be read while sipp still writes it.
func parseTrace(r io.Reader) ([]traceMsg, error) {
	var out []traceMsg
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var cur *traceMsg
	inMsg, first := false, false
	flush := func() {
		if cur != nil && cur.callID != "" && (cur.method != "" || cur.status != 0) {
			out = append(out, *cur)
		}
		cur = nil
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if rest, ok := strings.CutPrefix(line, traceSep); ok {
			flush()
			at, err := time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(rest), time.Local)
			if err != nil {
				continue
			}
			cur = &traceMsg{at: at}
			inMsg, first = false, false
			continue
		}
		if cur == nil {
			continue
		}
		if !inMsg {
			switch {
			case strings.Contains(line, "message sent"):
				cur.sent = true
			case strings.Contains(line, "message received"):
			case line == "":
				inMsg, first = true, true
			}
			continue
		}
		if first {
			if line == "" {
				continue
			}
			first = false
			if rest, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
				code, _, _ := strings.Cut(rest, " ")
				cur.status, _ = strconv.Atoi(code)
			} else if m, _, ok := strings.Cut(line, " "); ok {
				cur.method = m
			}
			continue
		}
		if line == "" { // the body follows
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "call-id", "i":
			if cur.callID == "" {
				cur.callID = value
			}
		case "cseq":
			if f := strings.Fields(value); len(f) == 2 {
				cur.cseqMeth = f[1]
			}
		case "to", "t":
			cur.toTag = strings.Contains(value, ";tag=")
		case "from", "f":
			cur.from = value
		}
	}
	flush()
	return out, sc.Err()
}

// offer is one ACD offer as the agent's phone lived it: from the INVITE's
// arrival to the first message that ends it (a final status above 299 sent,
// a CANCEL or BYE either way). An offer with none of those ends at its last
// message; Open says so (the phone still thinks it is in that call).
type offer struct {
	agent      string
	callID     string
	from       string // the INVITE's From (the caller, as ccpbx presents it)
	start, end time.Time
	answered   bool // the phone sent 200 to the INVITE
	acked      bool // and got the ACK
	open       bool
}

// offers turns an agent's trace into its offers, in INVITE order. Only
// initial INVITEs received (no To tag) start one; re-INVITEs are part of
// their call.
func offers(agent string, msgs []traceMsg) []offer {
	byCall := map[string]*offer{}
	var order []string
	for _, m := range msgs {
		o := byCall[m.callID]
		if o == nil {
			if m.sent || m.method != "INVITE" || m.toTag {
				continue
			}
			o = &offer{agent: agent, callID: m.callID, from: m.from, start: m.at, end: m.at, open: true}
			byCall[m.callID] = o
			order = append(order, m.callID)
			continue
		}
		if !o.open {
			continue
		}
		o.end = m.at
		switch {
		case m.sent && m.status == 200 && m.cseqMeth == "INVITE":
			o.answered = true
		case !m.sent && m.method == "ACK":
			o.acked = true
		case m.sent && m.status >= 300 && m.cseqMeth == "INVITE",
			m.method == "CANCEL", m.method == "BYE":
			o.open = false
		}
	}
	out := make([]offer, 0, len(order))
	for _, id := range order {
		out = append(out, *byCall[id])
	}
	return out
}

// overlaps returns a line for every pair of one agent's offers that
// overlap in time: a double offer. An open offer counts as lasting to the
// end of time.
func overlaps(os []offer) []string {
	s := append([]offer(nil), os...)
	sort.Slice(s, func(i, j int) bool { return s[i].start.Before(s[j].start) })
	var out []string
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if !s[i].open && !s[j].start.Before(s[i].end) {
				break // sorted by start: the later ones start later still
			}
			{
				out = append(out, fmt.Sprintf("agent %s: offer %s (from %s, %s → %s, open %v) overlaps offer %s (from %s, starts %s)",
					s[i].agent, s[i].callID, s[i].from, s[i].start.Format("15:04:05.000"), s[i].end.Format("15:04:05.000"), s[i].open,
					s[j].callID, s[j].from, s[j].start.Format("15:04:05.000")))
			}
		}
	}
	return out
}
