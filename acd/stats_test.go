package acd

import (
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/store/storetest"
)

// statsT0 is an interval start (03:45:00 UTC); statsT0+900 starts the
// 04:00 interval.
const statsT0 = 1795664700

// qlogLines collects queue_log lines as package queuelog would write them.
type qlogLines struct {
	mu sync.Mutex
	l  []string
}

func (q *qlogLines) Append(s string) {
	q.mu.Lock()
	q.l = append(q.l, s)
	q.mu.Unlock()
}

func (q *qlogLines) lines() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.l...)
}

// statsHarness is an ACD at statsT0 (UTC days) on q1 with agent "a",
// Available, 10 s of wrap-up.
func statsHarness(t *testing.T, st Store, epoch int64) (*harness, *qlogLines) {
	t.Helper()
	ql := &qlogLines{}
	h := newHarness(t, queueCfg(config.StrategyLongestIdleAgent, nil), st, epoch, func(o *Options) {
		o.QueueLog = ql
		o.Location = time.UTC
	})
	return h, ql
}

func (h *harness) stats(period string) *statsReport {
	h.t.Helper()
	out := h.api("queue stats " + q1 + " " + period + " json")
	var r statsReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		h.t.Fatalf("queue stats json: %v\n%s", err, out)
	}
	return &r
}

// hangup ends a caller and waits until its app has left the queue.
func (c *caller) hangup(t *testing.T, h *harness) {
	t.Helper()
	c.ch.Hangup(call.NormalClearing)
	c.wait(t)
	h.acd.settle()
}

func fptr(v float64) *float64 { return &v }

// runStatsDay places five calls across two intervals:
//
//	03:45:00 c1: a does not answer, is rung again and answers at +4 s (within
//	         the 20 s service level); a hangs up after 30 s talk (+10 s wrap-up)
//	03:46:40 c2 hangs up after 3 s waiting (a short abandon: ≤ 5 s)
//	03:48:20 c3 hangs up after 12 s waiting
//	03:59:59 c4 waits 26 s (a is On Break until 04:00:24), talks 10 s, hangs up
//	04:00:00 c5 (the next interval) hangs up after 30 s waiting
func runStatsDay(t *testing.T, h *harness) {
	h.agents("a")
	h.mustOK("agent set wrap_up_time a 10")
	c1 := h.call("5550001", q1, nil)
	h.nextDial().fail(call.NoAnswer)
	h.waitAction("bridge-agent-fail")
	h.advance(1)
	r := h.nextDial()
	h.advance(3)
	leg := h.bridged(r)
	h.advance(30)
	leg.Hangup(call.NormalClearing)
	c1.wait(t)
	waitHandled(t, h, 1)
	h.acd.settle()
	h.mustOK("agent set status a 'On Break'")

	h.advance(66)
	c2 := h.call("5550002", q1, nil)
	h.advance(3)
	c2.hangup(t, h)
	h.advance(97)
	c3 := h.call("5550003", q1, nil)
	h.advance(12)
	c3.hangup(t, h)
	h.advance(899 - 212)
	c4 := h.call("5550004", q1, nil)
	h.advance(1)
	c5 := h.call("5550005", q1, nil)
	h.advance(20)

	live := h.stats("today").Live
	eq(t, "live waiting", live.Waiting, 2)
	eq(t, "live longest wait", live.LongestWait, 21)
	eq(t, "live agents", live.AgentsByStatus, map[string]int{"On Break": 1})

	h.advance(4)
	h.mustOK("agent set status a Available")
	r = h.nextDial()
	h.advance(1)
	h.bridged(r)
	h.advance(5)
	c5.hangup(t, h)
	h.advance(5)
	c4.hangup(t, h)
	waitHandled(t, h, 2)
}

// waitHandled waits until the ACD has counted n ended bridges. A bridge's
// end is reported by its agent leg's goroutine, which can come after the
// caller's hangup has returned; virtual time must not move before it, or
// the talk time and queue_log timestamps would include the advance.
func waitHandled(t *testing.T, h *harness, n int64) {
	t.Helper()
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return h.stats("today").Handled == n }, "%d bridge ends counted", n)
}

func checkStatsDay(t *testing.T, h *harness) {
	t.Helper()
	rep := h.stats("today")
	want := statsFigures{Offered: 5, Answered: 2, AnsweredWithinSL: 1, Abandoned: 3, ShortAbandoned: 1, NoAnswer: 1,
		Handled: 2, TalkTime: 40, WrapUpTime: 20, MaxWait: 30,
		// 1 of the 4 calls that were not short abandons; (4+26)/2;
		// (4+26+3+12+30)/5; (40+20)/2.
		ServiceLevel: fptr(25), ASA: fptr(15), AvgWait: fptr(15), AHT: fptr(30)}
	eqJSON(t, "today", rep.statsFigures, want)
	eq(t, "today from", rep.From, statsT0-statsT0%86400)
	eq(t, "thresholds", []int64{rep.ServiceLevelThreshold, rep.ShortAbandonThreshold}, []int64{20, 5})
	eq(t, "intervals", len(rep.Intervals), 2)
	eq(t, "interval starts", []int64{rep.Intervals[0].Start, rep.Intervals[1].Start}, []int64{statsT0, statsT0 + 900})
	eqJSON(t, "03:45", rep.Intervals[0].statsFigures, statsFigures{Offered: 4, Answered: 2, AnsweredWithinSL: 1,
		Abandoned: 2, ShortAbandoned: 1, NoAnswer: 1, Handled: 2, TalkTime: 40, WrapUpTime: 20, MaxWait: 26,
		ServiceLevel: fptr(33.3), ASA: fptr(15), AvgWait: fptr(11.3), AHT: fptr(30)})
	eqJSON(t, "04:00", rep.Intervals[1].statsFigures, statsFigures{Offered: 1, Abandoned: 1, MaxWait: 30,
		ServiceLevel: fptr(0), AvgWait: fptr(30)})
	eq(t, "agents", len(rep.Agents), 1)
	eqJSON(t, "agent a", rep.Agents[0], statsAgent{Agent: "a", Status: "Available", State: "Waiting",
		Offered: 3, Answered: 2, NoAnswer: 1, Handled: 2, TalkTime: 40, WrapUpTime: 20, AHT: fptr(30)})
	eq(t, "live after", rep.Live.Waiting, 0)

	cur := h.stats("interval")
	eq(t, "interval period", []int64{cur.From, cur.To}, []int64{statsT0 + 900, statsT0 + 1800})
	eqJSON(t, "interval", cur.statsFigures, rep.Intervals[1].statsFigures)
}

func eqJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// TestQueueStatistics: offered, answered within the service level,
// abandoned and short abandons, no answers, ASA, waits and handle time,
// counted in the interval each call entered, with the day rolling into a
// new interval at 04:00; and the listing form.
func TestQueueStatistics(t *testing.T) {
	h, _ := statsHarness(t, nil, statsT0)
	runStatsDay(t, h)
	checkStatsDay(t, h)
	eq(t, "table", h.api("queue stats "+q1),
		"queue|agent|status|state|offered|answered|answered_within_sl|abandoned|short_abandoned|no_answer|service_level|asa|avg_wait|max_wait|handled|talk_time|aht|waiting|longest_wait\n"+
			"q1@default||||5|2|1|3|1|1|25.0|15.0|15.0|30|2|40|30.0|0|0\n"+
			"q1@default|a|Available|Waiting|3|2||||1|||||2|40|30.0||\n+OK\n")
	eq(t, "unknown queue", h.api("queue stats nope@default"), errQueueNotFound)
	eq(t, "bad period", h.api("queue stats "+q1+" yesterday"), errStatsUsage)
	eq(t, "no queue", h.api("queue stats"), errInvalid)
}

// TestQueueStatisticsThresholds: both thresholds are per queue.
func TestQueueStatisticsThresholds(t *testing.T) {
	sl, short := 30, 2
	h := newHarness(t, queueCfg(config.StrategyLongestIdleAgent, func(q *config.Queue) {
		q.ServiceLevelThreshold, q.ShortAbandonThreshold = &sl, &short
	}), nil, statsT0, func(o *Options) { o.Location = time.UTC })
	h.agents("a")
	h.mustOK("agent set status a 'On Break'")
	c1 := h.call("5550001", q1, nil)
	h.advance(3) // not short with 2 s
	c1.hangup(t, h)
	c2 := h.call("5550002", q1, nil)
	h.advance(26)
	h.mustOK("agent set status a Available")
	h.bridged(h.nextDial()) // within 30 s
	f := h.stats("today").statsFigures
	eq(t, "short, within", []int64{f.ShortAbandoned, f.AnsweredWithinSL}, []int64{0, 1})
	c2.hangup(t, h)
}

// TestStatisticsSurviveRestart (issue 12 item 4): statistics, queue list's
// counters and an agent's status are what they were after the ACD is
// closed and started again on the same database.
func TestStatisticsSurviveRestart(t *testing.T) {
	storetest.Each(t, testStatisticsSurviveRestart)
}

func testStatisticsSurviveRestart(t *testing.T, b storetest.Backend) {
	st := b.Open(t)
	h, _ := statsHarness(t, st, statsT0)
	runStatsDay(t, h)
	checkStatsDay(t, h)
	ql := h.api("queue list")
	h.acd.Close()
	st.Close()

	st = b.Open(t)
	defer st.Close()
	h2, _ := statsHarness(t, st, statsT0+935)
	checkStatsDay(t, h2)
	eq(t, "queue list counters", h2.api("queue list"), ql)
	eq(t, "counters", strings.Contains(ql, "|2|3|"), true)
	// One more call after the restart adds to the same day.
	c := h2.call("5550006", q1, nil)
	h2.advance(11) // a's wrap-up from 04:00:35
	h2.bridged(h2.nextDial())
	c.hangup(t, h2)
	f := h2.stats("today").statsFigures
	eq(t, "after restart", []int64{f.Offered, f.Answered, f.AnsweredWithinSL}, []int64{6, 3, 2})
}

// TestQueueLogGolden: one call answered (after a ring the agent did not
// take) and completed by the agent, one abandoned, the agent's login,
// break and logoff, as Asterisk queue_log lines.
func TestQueueLogGolden(t *testing.T) {
	h, ql := statsHarness(t, nil, statsT0)
	h.agents("a")
	c1 := h.call("5550001", q1, nil)
	h.nextDial().fail(call.NoAnswer)
	h.waitAction("bridge-agent-fail")
	h.advance(1)
	r := h.nextDial()
	h.advance(3)
	leg := h.bridged(r)
	h.advance(30)
	leg.Hangup(call.NormalClearing)
	c1.wait(t)
	waitHandled(t, h, 1)
	h.acd.settle()
	h.mustOK("agent set status a 'On Break'")
	h.advance(10)
	c2 := h.call("5550002", q1, nil)
	h.advance(7)
	c2.hangup(t, h)
	h.mustOK("agent set status a Available")
	h.advance(60)
	h.mustOK("agent set status a 'Logged Out'")

	got := strings.Join(ql.lines(), "\n") + "\n"
	got = strings.NewReplacer(c1.ch.UUID(), "CALLER1", c2.ch.UUID(), "CALLER2", leg.UUID(), "AGENTLEG1").Replace(got)
	const file = "testdata/queue_log.golden"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eq(t, "queue_log", got, golden(t, "queue_log.golden"))
}

// TestIntervalStart: intervals start at :00, :15, :30 and :45.
func TestIntervalStart(t *testing.T) {
	hour := int64(statsT0 - 45*60) // 03:00:00 UTC
	for _, c := range []struct{ at, want int64 }{
		{0, 0}, {14*60 + 59, 0}, {15 * 60, 15 * 60}, {29*60 + 59, 15 * 60}, {30 * 60, 30 * 60},
		{44*60 + 59, 30 * 60}, {45 * 60, 45 * 60}, {59*60 + 59, 45 * 60}, {60 * 60, 60 * 60},
	} {
		if got := intervalStart(hour + c.at); got != hour+c.want {
			t.Errorf("intervalStart(+%d s) = +%d, want +%d", c.at, got-hour, c.want)
		}
	}
	if got := intervalStart(-1); got != -StatsInterval {
		t.Errorf("intervalStart(-1) = %d", got)
	}
}
