package api

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"ccpbx/call"
	"ccpbx/config"
)

// Metrics is ccpbx's Prometheus registry. Everything it exports is either a
// counter updated where the thing happens (bus events, the hooks below) or
// read at scrape time from a snapshot that is cheap to take: the ACD's view
// (one loop message, a copy of its rows), the registrar's bindings, atomic
// counts. No scrape walks the channels or holds a global lock.
//
// Hooks for the packages that see SIP and RTP traffic (cmd/ccpbx hands
// *Metrics to them; their own small interfaces match these methods):
//
//	SIPRequest(profile, method string, inbound bool)
//	SIPResponse(profile, method string, code int, inbound bool)
//	AuthFailure(listener string)   // a wrong digest / password ("sip", "event_socket")
//	Ban(listener string)           // an address banned for failing
//	SetBannedSource(listener string, n func() int)
//	SetRTPSource(func() RTPStats)  // media's own atomic packet counters
type Metrics struct {
	reg *prometheus.Registry
	sl  int64 // service-level target, seconds

	offered, answered, abandoned *prometheus.CounterVec
	cancelled                    *prometheus.CounterVec
	wait                         *prometheus.HistogramVec
	sipReq, sipResp              *prometheus.CounterVec
	authFail, bans               *prometheus.CounterVec

	mu       sync.Mutex
	outcomes map[string]*QueueOutcome
	banned   map[string]func() int
	rtp      func() RTPStats

	channels, calls atomic.Int64

	cc   Callcenter
	regs Registrations
	esl  *EventSocket
	bus  *call.Bus
}

// QueueOutcome counts a queue's calls since start, from callcenter::info
// events: offered (member-queue-start), answered (bridge-agent-start),
// abandoned (the caller hung up while waiting: Cancel, BREAK_OUT) and
// answered within the service-level target.
type QueueOutcome struct {
	Offered, Answered, Abandoned, WithinTarget int64
}

// ServiceLevel is the share of calls answered within the target, of those
// answered or abandoned; ok is false before any such call.
func (o QueueOutcome) ServiceLevel() (ratio float64, ok bool) {
	n := o.Answered + o.Abandoned
	if n == 0 {
		return 0, false
	}
	return float64(o.WithinTarget) / float64(n), true
}

// RTPStats are media's packet counters since start.
type RTPStats struct {
	PacketsIn, PacketsOut uint64
	Late, Lost            uint64
	LatchRejected         uint64
}

// waitBuckets are queue wait times in seconds: a call center cares about
// seconds up to a few minutes.
var waitBuckets = []float64{5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}

// MetricsOptions are the read models the collectors read at scrape time;
// any may be nil.
type MetricsOptions struct {
	Callcenter         Callcenter
	Registrations      Registrations
	EventSocket        *EventSocket
	ServiceLevelTarget int // seconds; 0 = config.DefaultHTTPServiceLevelSeconds
}

// NewMetrics builds the registry and starts counting core's events.
func NewMetrics(core *call.Core, o MetricsOptions) *Metrics {
	sl := int64(o.ServiceLevelTarget)
	if sl <= 0 {
		sl = config.DefaultHTTPServiceLevelSeconds
	}
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		sl:       sl,
		outcomes: map[string]*QueueOutcome{},
		banned:   map[string]func() int{},
		cc:       o.Callcenter,
		regs:     o.Registrations,
		esl:      o.EventSocket,
		bus:      &core.Bus,
	}
	q := []string{"queue"}
	m.offered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_queue_calls_offered_total",
		Help: "Callers that joined the queue (member-queue-start)."}, q)
	m.answered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_queue_calls_answered_total",
		Help: "Queue calls bridged to an agent (bridge-agent-start)."}, q)
	m.abandoned = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_queue_calls_abandoned_total",
		Help: "Callers who hung up while waiting (member-queue-end Cancel BREAK_OUT)."}, q)
	m.cancelled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_queue_calls_cancelled_total",
		Help: "Callers who left the queue unanswered, by cancel reason (BREAK_OUT, TIMEOUT, NO_AGENT_TIMEOUT, EXIT_WITH_KEY)."},
		[]string{"queue", "reason"})
	m.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ccpbx_queue_wait_seconds",
		Help:    "Time callers waited in the queue, until answered or until they hung up.",
		Buckets: waitBuckets}, []string{"queue", "outcome"})
	m.sipReq = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_sip_requests_total",
		Help: "SIP requests by profile, method and direction (in = received)."}, []string{"profile", "method", "direction"})
	m.sipResp = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_sip_responses_total",
		Help: "SIP responses by profile, request method, status code and direction (in = received)."},
		[]string{"profile", "method", "code", "direction"})
	m.authFail = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_auth_failures_total",
		Help: "Failed authentications by listener (sip, event_socket: the sources of ban list)."}, []string{"listener"})
	m.bans = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ccpbx_auth_bans_total",
		Help: "Addresses banned for repeated authentication failures, by listener."}, []string{"listener"})
	m.reg.MustRegister(m.offered, m.answered, m.abandoned, m.cancelled, m.wait, m.sipReq, m.sipResp, m.authFail, m.bans,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		(*snapshotCollector)(m))
	// Observe, not Subscribe: counters must not lose events, and this
	// handler only bumps counters under a short lock, so it never blocks.
	// Bare: it reads the event name and the CC-* headers only, so the ACD
	// need not add the member's channel headers for it.
	core.Bus.ObserveBare(call.Kinds("CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
		"CUSTOM callcenter::info"), func(e *call.Event) bool {
		switch e.Name {
		case "CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE":
			return true
		}
		return e.Subclass == "callcenter::info"
	}, m.observe)
	return m
}

// Registry is what /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Outcome returns a copy of a queue's call counts.
func (m *Metrics) Outcome(queue string) QueueOutcome {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.outcomes[queue]; o != nil {
		return *o
	}
	return QueueOutcome{}
}

func (m *Metrics) outcome(queue string) *QueueOutcome {
	o := m.outcomes[queue]
	if o == nil {
		o = &QueueOutcome{}
		m.outcomes[queue] = o
	}
	return o
}

func epochHeader(e *call.Event, name string) (int64, bool) {
	n, err := strconv.ParseInt(e.Get(name), 10, 64)
	return n, err == nil && n > 0
}

// waited is the seconds between two epoch headers, never negative.
func waited(e *call.Event, from, to string) (float64, bool) {
	a, ok1 := epochHeader(e, from)
	b, ok2 := epochHeader(e, to)
	if !ok1 || !ok2 {
		return 0, false
	}
	return float64(max(b-a, 0)), true
}

func (m *Metrics) observe(e *call.Event) {
	switch e.Name {
	case "CHANNEL_CREATE":
		m.channels.Add(1)
		return
	case "CHANNEL_HANGUP":
		m.channels.Add(-1)
		return
	case "CHANNEL_BRIDGE":
		m.calls.Add(1)
		return
	case "CHANNEL_UNBRIDGE":
		m.calls.Add(-1)
		return
	}
	queue := e.Get("CC-Queue")
	if queue == "" {
		return
	}
	switch e.Get("CC-Action") {
	case "member-queue-start":
		m.offered.WithLabelValues(queue).Inc()
		m.mu.Lock()
		m.outcome(queue).Offered++
		m.mu.Unlock()
	case "bridge-agent-start":
		m.answered.WithLabelValues(queue).Inc()
		w, ok := waited(e, "CC-Member-Joined-Time", "CC-Agent-Answered-Time")
		if ok {
			m.wait.WithLabelValues(queue, "answered").Observe(w)
		}
		m.mu.Lock()
		o := m.outcome(queue)
		o.Answered++
		if ok && int64(w) <= m.sl {
			o.WithinTarget++
		}
		m.mu.Unlock()
	case "member-queue-end":
		if e.Get("CC-Cause") != "Cancel" {
			return
		}
		reason := e.Get("CC-Cancel-Reason")
		m.cancelled.WithLabelValues(queue, reason).Inc()
		if reason != "BREAK_OUT" {
			return
		}
		m.abandoned.WithLabelValues(queue).Inc()
		if w, ok := waited(e, "CC-Member-Joined-Time", "CC-Member-Leaving-Time"); ok {
			m.wait.WithLabelValues(queue, "abandoned").Observe(w)
		}
		m.mu.Lock()
		m.outcome(queue).Abandoned++
		m.mu.Unlock()
	}
}

// sipMethods bounds the method label: a method name comes from the
// network, and a label per invented method would grow the registry.
var sipMethods = map[string]bool{"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "REGISTER": true,
	"OPTIONS": true, "INFO": true, "UPDATE": true, "PRACK": true, "SUBSCRIBE": true, "NOTIFY": true,
	"REFER": true, "MESSAGE": true, "PUBLISH": true}

func methodLabel(m string) string {
	m = strings.ToUpper(m)
	if sipMethods[m] {
		return m
	}
	return "OTHER"
}

func direction(inbound bool) string {
	if inbound {
		return "in"
	}
	return "out"
}

// SIPRequest counts one SIP request received (inbound) or sent.
func (m *Metrics) SIPRequest(profile, method string, inbound bool) {
	m.sipReq.WithLabelValues(profile, methodLabel(method), direction(inbound)).Inc()
}

// SIPResponse counts one SIP response received (inbound) or sent, by the
// method of its request.
func (m *Metrics) SIPResponse(profile, method string, code int, inbound bool) {
	c := "other"
	if code >= 100 && code <= 699 {
		c = strconv.Itoa(code)
	}
	m.sipResp.WithLabelValues(profile, methodLabel(method), c, direction(inbound)).Inc()
}

// AuthFailure counts a failed authentication on a listener.
func (m *Metrics) AuthFailure(listener string) { m.authFail.WithLabelValues(listener).Inc() }

// Ban counts an address banned on a listener.
func (m *Metrics) Ban(listener string) { m.bans.WithLabelValues(listener).Inc() }

// SetBannedSource makes ccpbx_banned_addresses{listener} report n().
func (m *Metrics) SetBannedSource(listener string, n func() int) {
	m.mu.Lock()
	m.banned[listener] = n
	m.mu.Unlock()
}

// SetEventSocket makes ccpbx_event_socket_clients report s's clients (for
// an event socket built after the Metrics, which sip needs early).
func (m *Metrics) SetEventSocket(s *EventSocket) {
	m.mu.Lock()
	m.esl = s
	m.mu.Unlock()
}

// SetRTPSource makes the ccpbx_rtp_* counters report fn(); until it is
// called they are not exported at all (rather than as zeros that would read
// as "no traffic").
func (m *Metrics) SetRTPSource(fn func() RTPStats) {
	m.mu.Lock()
	m.rtp = fn
	m.mu.Unlock()
}

// snapshotCollector exports what is read at scrape time.
type snapshotCollector Metrics

var (
	descWaiting = prometheus.NewDesc("ccpbx_queue_members_waiting",
		"Callers waiting in the queue (Waiting or Trying).", []string{"queue"}, nil)
	descLongest = prometheus.NewDesc("ccpbx_queue_longest_wait_seconds",
		"How long the queue's longest-waiting caller has waited (0 when none waits).", []string{"queue"}, nil)
	descSL = prometheus.NewDesc("ccpbx_queue_service_level_ratio",
		"Share of answered or abandoned queue calls that were answered within the service-level target.",
		[]string{"queue"}, nil)
	descSLTarget = prometheus.NewDesc("ccpbx_queue_service_level_target_seconds",
		"The service-level answer-time target ([http] service_level_seconds).", nil, nil)
	descAgentStatus = prometheus.NewDesc("ccpbx_agent_status",
		"1 for the agent's current status, 0 for the others.", []string{"agent", "status"}, nil)
	descAgentState = prometheus.NewDesc("ccpbx_agent_state",
		"1 for the agent's current state, 0 for the others.", []string{"agent", "state"}, nil)
	descRegs = prometheus.NewDesc("ccpbx_registrations",
		"Registered contacts by SIP profile.", []string{"profile"}, nil)
	descChannels = prometheus.NewDesc("ccpbx_channels", "Live channels (call legs).", nil, nil)
	descCalls    = prometheus.NewDesc("ccpbx_calls", "Bridged calls (pairs of legs).", nil, nil)
	descESL      = prometheus.NewDesc("ccpbx_event_socket_clients", "Connected event-socket clients.", nil, nil)
	descDropped  = prometheus.NewDesc("ccpbx_event_bus_dropped_total",
		"Events lost to slow subscribers (event-socket clients, the wallboard feed).", nil, nil)
	descBanned = prometheus.NewDesc("ccpbx_banned_addresses",
		"Addresses banned now, by listener.", []string{"listener"}, nil)
	descRTPIn    = prometheus.NewDesc("ccpbx_rtp_packets_received_total", "RTP packets received.", nil, nil)
	descRTPOut   = prometheus.NewDesc("ccpbx_rtp_packets_sent_total", "RTP packets sent.", nil, nil)
	descRTPLate  = prometheus.NewDesc("ccpbx_rtp_packets_late_total", "RTP packets received out of order or too late.", nil, nil)
	descRTPLost  = prometheus.NewDesc("ccpbx_rtp_packets_lost_total", "RTP packets missing by sequence number.", nil, nil)
	descRTPLatch = prometheus.NewDesc("ccpbx_rtp_latch_rejected_total", "RTP packets refused from a source other than the latched one.", nil, nil)
)

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWaiting, descLongest, descSL, descSLTarget, descAgentStatus, descAgentState,
		descRegs, descChannels, descCalls, descESL, descDropped, descBanned,
		descRTPIn, descRTPOut, descRTPLate, descRTPLost, descRTPLatch} {
		ch <- d
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	ch <- gauge(descChannels, float64(max(m.channels.Load(), 0)))
	ch <- gauge(descCalls, float64(max(m.calls.Load(), 0)))
	ch <- counter(descDropped, m.bus.Dropped())
	ch <- gauge(descSLTarget, float64(m.sl))
	if m.cc != nil {
		if v, err := m.cc.CallcenterView(); err == nil {
			m.collectCallcenter(ch, v)
		}
	}
	if m.regs != nil {
		by := map[string]int{}
		for _, b := range m.regs.Bindings() {
			p := b.Profile
			if p == "" {
				p = "internal"
			}
			by[p]++
		}
		for p, n := range by {
			ch <- gauge(descRegs, float64(n), p)
		}
	}
	m.mu.Lock()
	rtp, esl := m.rtp, m.esl
	banned := make(map[string]func() int, len(m.banned))
	for k, v := range m.banned {
		banned[k] = v
	}
	m.mu.Unlock()
	if esl != nil {
		ch <- gauge(descESL, float64(esl.Clients()))
	}
	for l, n := range banned {
		ch <- gauge(descBanned, float64(n()), l)
	}
	if rtp != nil {
		s := rtp()
		ch <- counter(descRTPIn, s.PacketsIn)
		ch <- counter(descRTPOut, s.PacketsOut)
		ch <- counter(descRTPLate, s.Late)
		ch <- counter(descRTPLost, s.Lost)
		ch <- counter(descRTPLatch, s.LatchRejected)
	}
}

func (m *Metrics) collectCallcenter(ch chan<- prometheus.Metric, v CallcenterView) {
	now := v.Time.Unix()
	for _, q := range v.Queues {
		n, longest := 0, int64(0)
		for _, mb := range v.Members {
			if mb.Queue == q.Name && mb.waiting() {
				n++
				longest = max(longest, now-mb.JoinedEpoch)
			}
		}
		ch <- gauge(descWaiting, float64(n), q.Name)
		ch <- gauge(descLongest, float64(longest), q.Name)
		if r, ok := m.Outcome(q.Name).ServiceLevel(); ok {
			ch <- gauge(descSL, r, q.Name)
		}
	}
	for _, a := range v.Agents {
		for _, s := range config.Statuses {
			ch <- gauge(descAgentStatus, b2f(string(s) == a.Status), a.Name, string(s))
		}
		for _, s := range config.AgentStates {
			ch <- gauge(descAgentState, b2f(string(s) == a.State), a.Name, string(s))
		}
	}
}
