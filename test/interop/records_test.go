package interop

// Issue 12 with real phones: the records a call center runs on (CDRs in
// SQLite and Master.csv, CHANNEL_HANGUP_COMPLETE, the queue's recordings,
// queue statistics) for the calls steps 3–7 placed, and a restart on the
// same data_dir that keeps the statistics, the counters and the agents'
// status. The SIP timeline the records are judged on is the callcenter
// events' arrival times at the test.

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// timeSlack is how far a CDR's whole seconds may be from the event
// timeline: one second of rounding epochs, plus the events' way through
// `ccpbx cli -events` to the test on a loaded machine.
const timeSlack = 1.5

// queueCall is one caller's way through the queue, as the events tell it.
type queueCall struct {
	number                 string
	joined, bridged, ended time.Time // member-queue-start, bridge-agent-start, member-queue-end
	offered, bridgeEnd     time.Time // agent-offering (of the answering agent), bridge-agent-end
	agent                  string    // the agent who answered
	abandoned              bool      // left while waiting (member-queue-end Cancel)
	answered, hasEnd       bool
}

// queueCalls reads the calls of the queue from the callcenter events.
func queueCalls(evs []event) []*queueCall {
	var calls []*queueCall
	by := map[string]*queueCall{}
	lastOffer := map[string]time.Time{} // member|agent → offering time
	for _, ev := range evs {
		num := ev.get("CC-Member-CID-Number")
		switch ev.get("CC-Action") {
		case "member-queue-start":
			c := &queueCall{number: num, joined: ev.At}
			by[num] = c
			calls = append(calls, c)
		case "agent-offering":
			lastOffer[num+"|"+ev.get("CC-Agent")] = ev.At
		case "bridge-agent-start":
			if c := by[num]; c != nil {
				c.answered, c.bridged, c.agent = true, ev.At, ev.get("CC-Agent")
				c.offered = lastOffer[num+"|"+c.agent]
			}
		case "bridge-agent-end":
			if c := by[num]; c != nil {
				c.bridgeEnd = ev.At
			}
		case "member-queue-end":
			if c := by[num]; c != nil {
				c.hasEnd, c.ended = true, ev.At
				c.abandoned = !c.answered && ev.get("CC-Cause") == "Cancel"
			}
		}
	}
	return calls
}

// expectedStats are the queue statistics the calls should give. A wait
// within timeSlack of a threshold may land on either side: lo and hi bound
// the counts.
type expectedStats struct {
	offered, answered, abandoned int
	withinSL                     [2]int // lo, hi
	shortAbandoned               [2]int
}

func expectStats(calls []*queueCall, slThreshold, shortThreshold int64) expectedStats {
	var x expectedStats
	count := func(wait time.Duration, threshold int64, n *[2]int) {
		d := wait.Seconds() - float64(threshold)
		switch {
		case d < -timeSlack:
			n[0]++
			n[1]++
		case d <= timeSlack:
			n[1]++
		}
	}
	for _, c := range calls {
		x.offered++
		switch {
		case c.answered:
			x.answered++
			count(c.bridged.Sub(c.joined), slThreshold, &x.withinSL)
		case c.abandoned:
			x.abandoned++
			count(c.ended.Sub(c.joined), shortThreshold, &x.shortAbandoned)
		}
	}
	return x
}

// queueStats is `callcenter_config queue stats 3000@default today json`.
type queueStats struct {
	Offered          int64    `json:"offered"`
	Answered         int64    `json:"answered"`
	AnsweredWithinSL int64    `json:"answered_within_sl"`
	Abandoned        int64    `json:"abandoned"`
	ShortAbandoned   int64    `json:"short_abandoned"`
	ServiceLevel     *float64 `json:"service_level"`
	SLThreshold      int64    `json:"service_level_threshold"`
	ShortThreshold   int64    `json:"short_abandon_threshold"`
}

func (e *env) queueStats(t *testing.T, step string) (queueStats, string) {
	t.Helper()
	out := e.pbx.mustCLI(t, step, "callcenter_config queue stats 3000@default today json")
	var s queueStats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%s: `callcenter_config queue stats 3000@default today json`: %v\n%s", step, err, out)
	}
	return s, out
}

// checkStats compares the statistics with the calls the events show.
func checkStats(t *testing.T, step string, s queueStats, calls []*queueCall) {
	t.Helper()
	x := expectStats(calls, s.SLThreshold, s.ShortThreshold)
	in := func(v int64, r [2]int) bool { return v >= int64(r[0]) && v <= int64(r[1]) }
	if s.Offered != int64(x.offered) || s.Answered != int64(x.answered) || s.Abandoned != int64(x.abandoned) ||
		!in(s.AnsweredWithinSL, x.withinSL) || !in(s.ShortAbandoned, x.shortAbandoned) {
		t.Errorf("%s: queue stats offered/answered/abandoned/answered_within_sl/short_abandoned = %d/%d/%d/%d/%d; the calls placed give %d/%d/%d/%d..%d/%d..%d (thresholds %d s, %d s)",
			step, s.Offered, s.Answered, s.Abandoned, s.AnsweredWithinSL, s.ShortAbandoned,
			x.offered, x.answered, x.abandoned, x.withinSL[0], x.withinSL[1], x.shortAbandoned[0], x.shortAbandoned[1], s.SLThreshold, s.ShortThreshold)
	}
	den := s.Answered + s.Abandoned - s.ShortAbandoned
	want := math.Round(float64(s.AnsweredWithinSL)*1000/float64(den)) / 10
	if s.ServiceLevel == nil || math.Abs(*s.ServiceLevel-want) > 0.05 {
		t.Errorf("%s: service_level = %v, want %.1f (%d answered within %d s of %d calls, short abandons left out)",
			step, s.ServiceLevel, want, s.AnsweredWithinSL, s.SLThreshold, den)
	}
}

// cdrRow is one record of `cdr list N json`.
type cdrRow struct {
	ID        int64             `json:"id"`
	Variables map[string]string `json:"variables"`
}

func (c cdrRow) num(k string) float64 {
	v, _ := strconv.ParseFloat(c.Variables[k], 64)
	return v
}

// ---------------------------------------------------------------- step 8b

// stepRecords checks what steps 3–7 left behind.
func (e *env) stepRecords(t *testing.T) {
	const step = "step 8b (CDRs, recording, statistics)"
	calls := queueCalls(e.ev.since(0))
	if len(calls) == 0 {
		t.Fatalf("%s: no queue calls in the events", step)
	}

	// SQLite: every queue call has its caller's leg, every answered one its
	// agent's leg, with duration and billsec on the event timeline.
	out := e.pbx.mustCLI(t, step, "cdr list 1000 json")
	var list struct {
		Count int      `json:"count"`
		CDRs  []cdrRow `json:"cdrs"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%s: `cdr list 1000 json`: %v\n%s", step, err, out)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= timeSlack }
	var checked []cdrRow
	for _, c := range calls {
		if !c.hasEnd {
			t.Errorf("%s: call %s has no member-queue-end", step, c.number)
			continue
		}
		var member, agent []cdrRow
		for _, r := range list.CDRs {
			v := r.Variables
			if v["cc_queue"] != "3000@default" || v["caller_id_number"] != c.number {
				continue
			}
			switch {
			case v["cc_side"] == "member":
				member = append(member, r)
			case v["cc_side"] == "agent" && c.answered && v["cc_agent"] == c.agent && r.num("answer_uepoch") > 0:
				// the leg that answered (a half-second call bills 0 s); offers
				// that failed were never answered
				agent = append(agent, r)
			}
		}
		if len(member) != 1 {
			t.Errorf("%s: call %s: %d caller-leg CDRs (cc_side=member), want 1", step, c.number, len(member))
		} else {
			r := member[0]
			talk := c.ended.Sub(c.joined).Seconds() // the queue answers the caller as it joins
			if !near(r.num("duration"), talk) || !near(r.num("billsec"), talk) {
				t.Errorf("%s: call %s: caller leg duration/billsec %s/%s, the events say %.1f s (±%.1f)",
					step, c.number, r.Variables["duration"], r.Variables["billsec"], talk, timeSlack)
			}
			checked = append(checked, r)
		}
		if !c.answered {
			continue
		}
		if len(agent) != 1 {
			t.Errorf("%s: call %s: %d answered agent-leg CDRs for %s, want 1", step, c.number, len(agent), c.agent)
			continue
		}
		r := agent[0]
		if dur, bill := c.bridgeEnd.Sub(c.offered).Seconds(), c.bridgeEnd.Sub(c.bridged).Seconds(); !near(r.num("duration"), dur) || !near(r.num("billsec"), bill) {
			t.Errorf("%s: call %s: agent %s's leg duration/billsec %s/%s, the events say %.1f/%.1f s (±%.1f)",
				step, c.number, c.agent, r.Variables["duration"], r.Variables["billsec"], dur, bill, timeSlack)
		}
		checked = append(checked, r)
	}

	// Master.csv holds the same legs (mod_cdr_csv's default template: uuid
	// is column 11, duration and billsec 8 and 9).
	csvPath := filepath.Join(e.dataDir, "cdr-csv", "Master.csv")
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatalf("%s: %s: %v", step, csvPath, err)
	}
	if len(rows) != list.Count {
		t.Errorf("%s: %s has %d lines, the database %d CDRs", step, csvPath, len(rows), list.Count)
	}
	byUUID := map[string][]string{}
	for _, row := range rows {
		if len(row) != 15 {
			t.Errorf("%s: %s: a line with %d fields, mod_cdr_csv's default template has 15: %q", step, csvPath, len(row), row)
			continue
		}
		byUUID[row[10]] = row
	}
	for _, r := range checked {
		v := r.Variables
		row, ok := byUUID[v["uuid"]]
		if !ok {
			t.Errorf("%s: CDR %s (%s, cc_side=%s) has no line in %s", step, v["uuid"], v["caller_id_number"], v["cc_side"], csvPath)
			continue
		}
		if row[1] != v["caller_id_number"] || row[7] != v["duration"] || row[8] != v["billsec"] || row[9] != v["hangup_cause"] {
			t.Errorf("%s: CSV line %q differs from the database's CDR (caller %s, duration %s, billsec %s, cause %s)",
				step, row, v["caller_id_number"], v["duration"], v["billsec"], v["hangup_cause"])
		}
	}

	// CHANNEL_HANGUP_COMPLETE for each of those legs, with the CDR's figures.
	for _, r := range checked {
		v := r.Variables
		_, ev, err := e.hangups.waitFor(0, 5*time.Second, "CHANNEL_HANGUP_COMPLETE "+v["uuid"], func(ev event) bool {
			return ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" && ev.get("Unique-ID") == v["uuid"]
		})
		if err != nil {
			t.Errorf("%s: %v", step, err)
			continue
		}
		if ev.get("variable_duration") != v["duration"] || ev.get("variable_billsec") != v["billsec"] ||
			ev.get("Hangup-Cause") != v["hangup_cause"] || ev.get("variable_start_epoch") != v["start_epoch"] ||
			ev.get("variable_answer_epoch") != v["answer_epoch"] || ev.get("variable_end_epoch") != v["end_epoch"] {
			t.Errorf("%s: CHANNEL_HANGUP_COMPLETE of %s: duration %q billsec %q Hangup-Cause %q epochs %q/%q/%q; the CDR says %s %s %s %s/%s/%s",
				step, v["uuid"], ev.get("variable_duration"), ev.get("variable_billsec"), ev.get("Hangup-Cause"),
				ev.get("variable_start_epoch"), ev.get("variable_answer_epoch"), ev.get("variable_end_epoch"),
				v["duration"], v["billsec"], v["hangup_cause"], v["start_epoch"], v["answer_epoch"], v["end_epoch"])
		}
	}

	// Step 3's call (tones both ways for two seconds and more): the caller's
	// 450 Hz on the left, the agent's 1250 Hz on the right.
	first := calls[0]
	wav := filepath.Join(e.dataDir, "recordings", first.number+".wav")
	var chans [][]int16
	pbxtest.WaitFor(t, 5*time.Second, func() bool {
		chans, err = testphone.ReadWAV(wav)
		return err == nil
	}, "the recording %s to be complete", wav)
	if len(chans) != 2 {
		t.Fatalf("%s: %s has %d channels, want 2 (record_stereo: caller left, agent right)", step, wav, len(chans))
	}
	left, right := analyse(chans[0]), analyse(chans[1])
	t.Logf("%s: recording %s: left %s; right %s", step, filepath.Base(wav), left, right)
	if left.CallerTone < 50 || left.AgentTone > left.CallerTone/10 {
		t.Errorf("%s: the recording's left channel is not the caller's %v Hz tone (want >= 1 s of it, little of the agent's): %s", step, callerTone, left)
	}
	if right.AgentTone < 50 || right.CallerTone > right.AgentTone/10 {
		t.Errorf("%s: the recording's right channel is not agent %s's %v Hz tone (want >= 1 s of it, little of the caller's): %s", step, first.agent, agentTone, right)
	}

	s, raw := e.queueStats(t, step)
	t.Logf("%s: queue stats: %s", step, strings.Join(strings.Fields(raw), " "))
	checkStats(t, step, s, calls)
}

// ---------------------------------------------------------------- step 10

// stepRestart starts ccpbx again on step 9's data_dir: the statistics and
// counters of every call so far (step 9's included) and the agents'
// stored status (no status in their config entries) are still there.
func (e *env) stepRestart(t *testing.T) {
	const step = "step 10 (restart on the same data_dir)"
	art := filepath.Join(e.art, "restart")
	if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := startPBX(t, e.pbx.bin, e.pbx.cfg, e.root, art, e.ports)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	e.pbx = p
	// Step 7 logged 1001 out; step 9 set 1002 Available.
	for agent, want := range map[string]string{"1001": "Logged Out", "1002": "Available"} {
		if got := strings.TrimSpace(p.mustCLI(t, step, "callcenter_config agent get status "+agent)); got != want {
			t.Errorf("%s: agent %s's status after the restart = %q, want %q as stored before it", step, agent, got, want)
		}
	}
	calls := queueCalls(e.ev.since(0))
	answered, abandoned := 0, 0
	for _, c := range calls {
		if c.answered {
			answered++
		} else if c.abandoned {
			abandoned++
		}
	}
	if got, want := strings.Join(replyLines(p.mustCLI(t, step, "callcenter_config queue list")), "\n"), queueList(answered, abandoned); got != want {
		t.Errorf("%s: `callcenter_config queue list` after the restart (counters of %d answered, %d abandoned calls)\n  got:\n%s\n  want:\n%s",
			step, answered, abandoned, got, want)
	}
	s, raw := e.queueStats(t, step)
	t.Logf("%s: queue stats: %s", step, strings.Join(strings.Fields(raw), " "))
	checkStats(t, step, s, calls)
	if answered != e.answered+1 {
		t.Errorf("%s: the events show %d answered calls, the steps placed %d (step 9's included)", step, answered, e.answered+1)
	}
}
