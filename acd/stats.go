package acd

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"ccpbx/config"
	"ccpbx/store"
)

// Queue statistics (issue 12 item 3). The loop feeds them from the
// member and offer lifecycle it already runs: join (offered), the bridge
// (answered, wait, service level), leave (abandoned, short abandons), a
// failed ring (no answer) and the end of the bridge (talk and wrap-up,
// i.e. handle time). Each change is one delta: added to today's rows held
// in memory, so `queue stats` never reads the database from the loop, and
// written through the persister to store's queue_stats, where rows add up
// across restarts.
//
// A call is counted in the 15-minute interval in which it entered the
// queue (this run of the callcenter app), whatever the interval its
// answer, abandon or hangup falls in, so an interval's offered calls are
// its answered plus abandoned plus those still waiting. Agent rows of an
// interval use the same rule.

// StatsInterval is the length of a statistics interval; intervals start
// at :00, :15, :30 and :45.
const StatsInterval = 15 * 60

func intervalStart(t int64) int64 {
	return t - ((t%StatsInterval)+StatsInterval)%StatsInterval
}

type statKey struct {
	start        int64
	queue, agent string
}

// midnight is the start of t's local day.
func (a *ACD) midnight(t int64) int64 {
	y, m, d := time.Unix(t, 0).In(a.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, a.loc).Unix()
}

// loadStats reads today's rows and the queue counters (Start, before the
// loop runs).
func (a *ACD) loadStats(ctx context.Context) error {
	a.stats = map[statKey]*store.StatsRow{}
	a.counters = map[string]store.QueueCounters{}
	a.statsDay = a.midnight(a.now())
	if a.st == nil {
		return nil
	}
	rows, err := a.st.QueueStats(ctx, a.statsDay)
	if err != nil {
		return err
	}
	for i := range rows {
		r := rows[i]
		a.stats[statKey{r.IntervalStart, r.Queue, r.Agent}] = &r
	}
	a.counters, err = a.st.LoadQueueCounters(ctx)
	return err
}

// addStats applies one delta to memory and the store.
func (a *ACD) addStats(d store.StatsRow) {
	if day := a.midnight(a.now()); day != a.statsDay {
		// A new day: yesterday's rows stay in the store only.
		for k := range a.stats {
			if k.start < day {
				delete(a.stats, k)
			}
		}
		a.statsDay = day
	}
	k := statKey{d.IntervalStart, d.Queue, d.Agent}
	r := a.stats[k]
	if r == nil {
		r = &store.StatsRow{IntervalStart: d.IntervalStart, Queue: d.Queue, Agent: d.Agent}
		a.stats[k] = r
	}
	mergeStats(r, &d)
	a.persist.addStats(d)
}

func mergeStats(r, d *store.StatsRow) {
	r.Offered += d.Offered
	r.Answered += d.Answered
	r.AnsweredWithinSL += d.AnsweredWithinSL
	r.Abandoned += d.Abandoned
	r.ShortAbandoned += d.ShortAbandoned
	r.NoAnswer += d.NoAnswer
	r.WaitAnswered += d.WaitAnswered
	r.WaitAbandoned += d.WaitAbandoned
	r.WaitMax = max(r.WaitMax, d.WaitMax)
	r.Handled += d.Handled
	r.TalkTime += d.TalkTime
	r.WrapUpTime += d.WrapUpTime
}

// saveCounters persists queue list's counters of q.
func (a *ACD) saveCounters(q *Queue) {
	c := store.QueueCounters{CallsAnswered: q.CallsAnswered, CallsAbandoned: q.CallsAbandoned}
	a.counters[q.Name] = c
	a.persist.addCounters(q.Name, c)
}

// --- the lifecycle hooks (all in the loop)

func (a *ACD) statOffered(m *Member) {
	a.addStats(store.StatsRow{IntervalStart: intervalStart(m.t0), Queue: m.Queue, Offered: 1})
}

func (a *ACD) statRung(o *offer) {
	a.addStats(store.StatsRow{IntervalStart: intervalStart(o.m.t0), Queue: o.q.Name, Agent: o.ag.Name, Offered: 1})
}

func (a *ACD) statNoAnswer(o *offer) {
	iv := intervalStart(o.m.t0)
	a.addStats(store.StatsRow{IntervalStart: iv, Queue: o.q.Name, NoAnswer: 1})
	a.addStats(store.StatsRow{IntervalStart: iv, Queue: o.q.Name, Agent: o.ag.Name, NoAnswer: 1})
}

func (a *ACD) statAnswered(o *offer, wait int64) {
	iv := intervalStart(o.m.t0)
	d := store.StatsRow{IntervalStart: iv, Queue: o.q.Name, Answered: 1, WaitAnswered: wait, WaitMax: wait}
	if wait <= o.q.ServiceLevelThreshold {
		d.AnsweredWithinSL = 1
	}
	a.addStats(d)
	a.addStats(store.StatsRow{IntervalStart: iv, Queue: o.q.Name, Agent: o.ag.Name, Answered: 1})
}

func (a *ACD) statAbandoned(m *Member, q *Queue, wait int64) {
	d := store.StatsRow{IntervalStart: intervalStart(m.t0), Queue: m.Queue, Abandoned: 1, WaitAbandoned: wait, WaitMax: wait}
	if q != nil && wait <= q.ShortAbandonThreshold {
		d.ShortAbandoned = 1
	}
	a.addStats(d)
}

func (a *ACD) statHandled(o *offer, talk, wrap int64) {
	iv := intervalStart(o.m.t0)
	a.addStats(store.StatsRow{IntervalStart: iv, Queue: o.q.Name, Handled: 1, TalkTime: talk, WrapUpTime: wrap})
	a.addStats(store.StatsRow{IntervalStart: iv, Queue: o.q.Name, Agent: o.ag.Name, Handled: 1, TalkTime: talk, WrapUpTime: wrap})
}

// --- `callcenter_config queue stats <queue> [today|interval] [json]`

const errStatsUsage = "-ERR Usage: callcenter_config queue stats <queue> [today|interval] [json]\n"

// statsPeriod names the rows a listing sums.
type statsPeriod struct {
	name     string
	from, to int64 // interval starts in [from, to)
}

func (a *ACD) queueStats(x []string) string {
	period, asJSON := "today", false
	for _, w := range x[1:] {
		switch strings.ToLower(w) {
		case "today", "interval":
			period = strings.ToLower(w)
		case "json":
			asJSON = true
		default:
			return errStatsUsage
		}
	}
	q := a.lookupQueue(x[0])
	if q == nil {
		return errQueueNotFound
	}
	now := a.now()
	p := statsPeriod{name: period, from: a.midnight(now), to: intervalStart(now) + StatsInterval}
	if period == "interval" {
		p.from = intervalStart(now)
	}
	rep := a.statsReport(q, p, now)
	if asJSON {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return "-ERR " + err.Error() + "\n"
		}
		return string(b) + "\n"
	}
	return rep.table()
}

// statsFigures are the counts and derived figures of one row of a report.
// Derived figures are nil when nothing was there to derive them from.
type statsFigures struct {
	Offered          int64    `json:"offered"`
	Answered         int64    `json:"answered"`
	AnsweredWithinSL int64    `json:"answered_within_sl"`
	Abandoned        int64    `json:"abandoned"`
	ShortAbandoned   int64    `json:"short_abandoned"`
	NoAnswer         int64    `json:"no_answer"`
	Handled          int64    `json:"handled"`
	TalkTime         int64    `json:"talk_time"`
	WrapUpTime       int64    `json:"wrap_up_time"`
	MaxWait          int64    `json:"max_wait"`
	ServiceLevel     *float64 `json:"service_level"`
	ASA              *float64 `json:"asa"`
	AvgWait          *float64 `json:"avg_wait"`
	AHT              *float64 `json:"aht"`
}

func ratio(num, den int64, scale float64) *float64 {
	if den <= 0 {
		return nil
	}
	v := math.Round(float64(num)*scale/float64(den)*10) / 10
	return &v
}

func agentRow(name string, ag *Agent, r *store.StatsRow) statsAgent {
	sa := statsAgent{Agent: name, Offered: r.Offered, Answered: r.Answered, NoAnswer: r.NoAnswer,
		Handled: r.Handled, TalkTime: r.TalkTime, WrapUpTime: r.WrapUpTime,
		AHT: ratio(r.TalkTime+r.WrapUpTime, r.Handled, 1)}
	if ag != nil {
		sa.Status, sa.State = ag.Status.String(), ag.State.String()
	}
	return sa
}

func figures(r *store.StatsRow) statsFigures {
	f := statsFigures{Offered: r.Offered, Answered: r.Answered, AnsweredWithinSL: r.AnsweredWithinSL,
		Abandoned: r.Abandoned, ShortAbandoned: r.ShortAbandoned, NoAnswer: r.NoAnswer, Handled: r.Handled,
		TalkTime: r.TalkTime, WrapUpTime: r.WrapUpTime, MaxWait: r.WaitMax}
	// Service level: answered within the threshold out of the calls that
	// ended (answered or abandoned), short abandons left out.
	f.ServiceLevel = ratio(r.AnsweredWithinSL, r.Answered+r.Abandoned-r.ShortAbandoned, 100)
	f.ASA = ratio(r.WaitAnswered, r.Answered, 1)
	f.AvgWait = ratio(r.WaitAnswered+r.WaitAbandoned, r.Answered+r.Abandoned, 1)
	f.AHT = ratio(r.TalkTime+r.WrapUpTime, r.Handled, 1)
	return f
}

// statsAgent is an agent's row: offers rung at the agent, those it
// answered and missed, and its handle time. Waits and abandons belong to
// the queue.
type statsAgent struct {
	Agent      string   `json:"agent"`
	Status     string   `json:"status"`
	State      string   `json:"state"`
	Offered    int64    `json:"offered"`
	Answered   int64    `json:"answered"`
	NoAnswer   int64    `json:"no_answer"`
	Handled    int64    `json:"handled"`
	TalkTime   int64    `json:"talk_time"`
	WrapUpTime int64    `json:"wrap_up_time"`
	AHT        *float64 `json:"aht"`
}

type statsInterval struct {
	Start int64 `json:"start"`
	statsFigures
}

type statsLive struct {
	Waiting        int            `json:"waiting"`
	LongestWait    int64          `json:"longest_wait"`
	AgentsByStatus map[string]int `json:"agents_by_status"`
	AgentsByState  map[string]int `json:"agents_by_state"`
}

type statsReport struct {
	Queue                 string `json:"queue"`
	Period                string `json:"period"`
	From                  int64  `json:"from"`
	To                    int64  `json:"to"`
	ServiceLevelThreshold int64  `json:"service_level_threshold"`
	ShortAbandonThreshold int64  `json:"short_abandon_threshold"`
	statsFigures
	Live      statsLive       `json:"live"`
	Agents    []statsAgent    `json:"agents"`
	Intervals []statsInterval `json:"intervals"`
}

func (a *ACD) statsReport(q *Queue, p statsPeriod, now int64) *statsReport {
	rep := &statsReport{Queue: q.Name, Period: p.name, From: p.from, To: p.to,
		ServiceLevelThreshold: q.ServiceLevelThreshold, ShortAbandonThreshold: q.ShortAbandonThreshold,
		Live:   statsLive{AgentsByStatus: map[string]int{}, AgentsByState: map[string]int{}},
		Agents: []statsAgent{}, Intervals: []statsInterval{}}
	total := store.StatsRow{}
	perAgent := map[string]*store.StatsRow{}
	perInterval := map[int64]*store.StatsRow{}
	for k, r := range a.stats {
		if k.queue != q.Name || k.start < p.from || k.start >= p.to {
			continue
		}
		if k.agent != "" {
			if perAgent[k.agent] == nil {
				perAgent[k.agent] = &store.StatsRow{}
			}
			mergeStats(perAgent[k.agent], r)
			continue
		}
		mergeStats(&total, r)
		if perInterval[k.start] == nil {
			perInterval[k.start] = &store.StatsRow{}
		}
		mergeStats(perInterval[k.start], r)
	}
	rep.statsFigures = figures(&total)
	for _, m := range a.members {
		if m.Queue != q.Name || m.app == nil || (m.State != config.MemberWaiting && m.State != config.MemberTrying) {
			continue
		}
		rep.Live.Waiting++
		rep.Live.LongestWait = max(rep.Live.LongestWait, now-m.t0)
	}
	// Agents tiered to the queue, in agent order, then any others with
	// figures in the period (a tier since deleted).
	seen := map[string]bool{}
	for _, ag := range a.sortedAgents() {
		if a.findTier(q.Name, ag.Name) == nil {
			continue
		}
		seen[ag.Name] = true
		rep.Live.AgentsByStatus[ag.Status.String()]++
		rep.Live.AgentsByState[ag.State.String()]++
		r := perAgent[ag.Name]
		if r == nil {
			r = &store.StatsRow{}
		}
		rep.Agents = append(rep.Agents, agentRow(ag.Name, ag, r))
	}
	var others []string
	for name := range perAgent {
		if !seen[name] {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		rep.Agents = append(rep.Agents, agentRow(name, a.agents[name], perAgent[name]))
	}
	starts := make([]int64, 0, len(perInterval))
	for s := range perInterval {
		starts = append(starts, s)
	}
	slices.Sort(starts)
	for _, s := range starts {
		rep.Intervals = append(rep.Intervals, statsInterval{Start: s, statsFigures: figures(perInterval[s])})
	}
	return rep
}

var statsColumns = []string{"queue", "agent", "status", "state", "offered", "answered", "answered_within_sl",
	"abandoned", "short_abandoned", "no_answer", "service_level", "asa", "avg_wait", "max_wait", "handled",
	"talk_time", "aht", "waiting", "longest_wait"}

func fmtRatio(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

// table is the listing form: the queue's row (agent empty, with the live
// waiting figures) and then one row per agent (with its live status and
// state; queue-only columns empty), in callcenter_config's style.
func (r *statsReport) table() string {
	f := r.statsFigures
	rows := [][]string{{r.Queue, "", "", "", itoa(f.Offered), itoa(f.Answered), itoa(f.AnsweredWithinSL),
		itoa(f.Abandoned), itoa(f.ShortAbandoned), itoa(f.NoAnswer), fmtRatio(f.ServiceLevel), fmtRatio(f.ASA),
		fmtRatio(f.AvgWait), itoa(f.MaxWait), itoa(f.Handled), itoa(f.TalkTime), fmtRatio(f.AHT),
		itoa(int64(r.Live.Waiting)), itoa(r.Live.LongestWait)}}
	for _, g := range r.Agents {
		rows = append(rows, []string{r.Queue, g.Agent, g.Status, g.State, itoa(g.Offered), itoa(g.Answered), "",
			"", "", itoa(g.NoAnswer), "", "", "", "", itoa(g.Handled), itoa(g.TalkTime), fmtRatio(g.AHT), "", ""})
	}
	return listing(statsColumns, rows)
}
