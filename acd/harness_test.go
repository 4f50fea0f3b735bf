package acd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
)

// TestMain fails the package if any test leaves a goroutine running: every
// harness closes its ACD and hangs its callers up when its test ends.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// fakeClock is virtual time: timers fire only in Advance, in time order,
// and after each one the ACD loop is synced so the next timer sees its
// effects.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	sync   func()
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock(epoch int64) *fakeClock { return &fakeClock{now: time.Unix(epoch, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves time forward by d, firing due timers in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var next *fakeTimer
		for i, t := range c.timers {
			if t.stopped {
				continue
			}
			if !t.at.After(target) {
				next = t
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
			}
			break
		}
		if next == nil {
			// drop stopped timers at the front
			kept := c.timers[:0]
			for _, t := range c.timers {
				if !t.stopped {
					kept = append(kept, t)
				}
			}
			c.timers = kept
			c.now = target
			c.mu.Unlock()
			if c.sync != nil {
				c.sync()
			}
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
		if c.sync != nil {
			c.sync()
		}
	}
}

// dialReq is one Originate the ACD made; the test answers or fails it.
type dialReq struct {
	ctx   context.Context
	dial  string
	opts  call.OriginateOptions
	reply chan dialResult
	h     *harness
}

type dialResult struct {
	ch  *call.Channel
	err error
}

// answer creates the agent's channel, answered, carrying the originate
// variables as the real endpoints do.
func (r *dialReq) answer() *call.Channel {
	ch := r.leg()
	r.reply <- dialResult{ch: ch}
	return ch
}

// leg creates the answered agent channel without handing it over yet.
func (r *dialReq) leg() *call.Channel {
	name := strings.TrimPrefix(r.dial[strings.LastIndex(r.dial, "]")+1:], "user/")
	ch := r.h.core.NewChannel(call.ChannelSpec{Name: "sofia/internal/" + name + "@127.0.0.1", Direction: call.Outbound, Vars: r.opts.Vars})
	ch.MarkAnswered()
	return ch
}

func (r *dialReq) fail(c call.Cause) { r.reply <- dialResult{err: c} }

// fakeSwitch scripts originates and bridges like call.Core does.
type fakeSwitch struct {
	h    *harness
	reqs chan *dialReq
}

func (s *fakeSwitch) Originate(ctx context.Context, dial string, o call.OriginateOptions) (*call.Channel, error) {
	r := &dialReq{ctx: ctx, dial: dial, opts: o, reply: make(chan dialResult, 1), h: s.h}
	s.reqs <- r
	select {
	case res := <-r.reply:
		return res.ch, res.err
	case <-ctx.Done():
		select {
		case res := <-r.reply: // an answer that crossed the cancel
			return res.ch, res.err
		default:
		}
		if c, ok := call.AsCause(context.Cause(ctx)); ok {
			return nil, c
		}
		return nil, call.OriginatorCancel
	}
}

func (s *fakeSwitch) Bridge(a, b *call.Channel) error {
	select {
	case <-a.Done():
		b.Hangup(a.Cause())
	case <-b.Done():
	}
	return nil
}

type harness struct {
	t      testing.TB
	core   *call.Core
	clock  *fakeClock
	sw     *fakeSwitch
	acd    *ACD
	st     Store
	events <-chan *call.Event
	stopEv func()
	record *recorder
	// pending holds originates taken by dialFor for other agents.
	pending []*dialReq
}

// dialFor returns the originate to agent, keeping others for later:
// concurrent offers reach the switch in any order.
func (h *harness) dialFor(agent string) *dialReq {
	h.t.Helper()
	for i, r := range h.pending {
		if dialed(r) == agent {
			h.pending = append(h.pending[:i], h.pending[i+1:]...)
			return r
		}
	}
	for {
		select {
		case r := <-h.sw.reqs:
			if dialed(r) == agent {
				return r
			}
			h.pending = append(h.pending, r)
		case <-time.After(10 * time.Second):
			h.t.Fatalf("no originate to %s", agent)
			return nil
		}
	}
}

// recorder keeps every event the harness consumed, as CC-* header lines.
type recorder struct{ evs []*call.Event }

func (r *recorder) lines() []string {
	var out []string
	for _, e := range r.evs {
		var parts []string
		for _, hd := range e.Headers {
			if strings.HasPrefix(hd.Name, "CC-") {
				parts = append(parts, hd.Name+"="+hd.Value)
			}
		}
		out = append(out, strings.Join(parts, "\t"))
	}
	return out
}

// baseEpoch is the observed FreeSWITCH run's startup second.
const baseEpoch = 1795664652

// observedConfig is the setup of freeswitch-observed/README.md.
func observedConfig() config.Callcenter {
	twenty, sixty := 20, 60
	f := false
	return config.Callcenter{
		Settings: config.CallcenterSettings{InstanceID: "single_box"},
		Queues: []config.Queue{{
			Name: "3000@default", Strategy: "round-robin", MOHSound: "/usr/share/sounds/moh.wav",
			TimeBaseScore: "system", MaxWaitTimeWithNoAgentTimeReached: &twenty, TierRuleWaitSecond: 300,
			TierRuleWaitMultiplyLevel: true, TierRuleNoAgentNoWait: &f, DiscardAbandonedAfter: &sixty,
		}},
		Agents: []config.Agent{
			{Name: "1001", Type: "callback", Contact: "[call_timeout=60]user/1001", Status: "Logged Out", MaxNoAnswer: 3, WrapUpTime: 10, RejectDelayTime: 30, BusyDelayTime: 60, NoAnswerDelayTime: 10},
			{Name: "1002", Type: "callback", Contact: "[call_timeout=60]user/1002", Status: "Logged Out", MaxNoAnswer: 3, WrapUpTime: 10, RejectDelayTime: 30, BusyDelayTime: 60, NoAnswerDelayTime: 10},
		},
		Tiers: []config.Tier{{Agent: "1001", Queue: "3000@default", Level: 1, Position: 1}, {Agent: "1002", Queue: "3000@default", Level: 1, Position: 1}},
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHarness starts an ACD on cfg in virtual time at epoch. st may be nil;
// mods adjust the ACD's options (queue_log, statistics day).
func newHarness(t testing.TB, cfg config.Callcenter, st Store, epoch int64, mods ...func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(epoch), st: st}
	h.core = call.NewCore("vm", quietLog())
	h.core.Clock = h.clock.Now
	h.sw = &fakeSwitch{h: h, reqs: make(chan *dialReq, 64)}
	h.events, h.stopEv = h.core.Bus.Subscribe(100000, func(e *call.Event) bool { return e.Subclass == Subclass })
	opts := Options{Clock: h.clock, Log: quietLog(), Switch: h.sw, Seed: 1}
	for _, mod := range mods {
		mod(&opts)
	}
	a, err := New(cfg, h.core, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.acd = a
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.clock.sync = a.settle
	a.settle()
	t.Cleanup(func() {
		// Callers a test left waiting hang up, so their apps end.
		for _, ch := range h.core.Channels() {
			ch.Hangup(call.NormalClearing)
		}
		a.Close()
		h.stopEv()
	})
	return h
}

// settle waits until the loop has handled everything queued so far and
// the dispatch that caused.
func (a *ACD) settle() { a.do(func() {}) }

// command runs one callcenter_config line as the API does.
func (a *ACD) command(line string) string { return a.apiConfig(context.Background(), line, nil) }

func (h *harness) api(cmd string) string {
	h.t.Helper()
	return h.acd.command(cmd)
}

func (h *harness) mustOK(cmd string) {
	h.t.Helper()
	if got := h.api(cmd); got != okReply {
		h.t.Fatalf("%s: got %q", cmd, got)
	}
}

func (h *harness) advance(sec int64) { h.clock.Advance(time.Duration(sec) * time.Second) }

// caller is a member channel running the callcenter app.
type caller struct {
	ch   *call.Channel
	done chan error
}

func (h *harness) call(num, queue string, vars map[string]string) *caller {
	h.t.Helper()
	v := map[string]string{"caller_id_number": num, "caller_id_name": queue}
	for k, x := range vars {
		v[k] = x
	}
	ch := h.core.NewChannel(call.ChannelSpec{Name: "sofia/blueivr/" + num + "@127.0.0.1", Direction: call.Inbound, Vars: v})
	c := &caller{ch: ch, done: make(chan error, 1)}
	go func() { c.done <- h.core.Execute(ch.Context(), ch, "callcenter", queue) }()
	h.waitAction("member-queue-start", "member-queue-resume")
	h.acd.settle()
	return c
}

// wait blocks until the app returned (a deadlock guard, not a timing
// assertion).
func (c *caller) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("callcenter app did not return")
	}
}

func (h *harness) nextDial() *dialReq {
	h.t.Helper()
	if len(h.pending) > 0 {
		r := h.pending[0]
		h.pending = h.pending[1:]
		return r
	}
	select {
	case r := <-h.sw.reqs:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("no originate")
	}
	return nil
}

func (h *harness) noDial() {
	h.t.Helper()
	h.acd.settle()
	select {
	case r := <-h.sw.reqs:
		h.t.Fatalf("unexpected originate %s", r.dial)
	default:
	}
}

func (h *harness) nextEvent() *call.Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		if h.record != nil {
			h.record.evs = append(h.record.evs, e)
		}
		return e
	case <-time.After(10 * time.Second):
		h.t.Fatal("no event")
	}
	return nil
}

// waitAction skips events until one with one of the actions arrives.
func (h *harness) waitAction(actions ...string) *call.Event {
	h.t.Helper()
	for {
		e := h.nextEvent()
		for _, a := range actions {
			if e.Get("CC-Action") == a {
				return e
			}
		}
	}
}

// drain returns the events already published, as "action agent value".
func (h *harness) drain() []string {
	h.acd.settle()
	var out []string
	for {
		select {
		case e := <-h.events:
			if h.record != nil {
				h.record.evs = append(h.record.evs, e)
			}
			out = append(out, summary(e))
		default:
			return out
		}
	}
}

func summary(e *call.Event) string {
	s := e.Get("CC-Action")
	if a := e.Get("CC-Agent"); a != "" {
		s += " " + a
	}
	for _, k := range []string{"CC-Agent-State", "CC-Agent-Status", "CC-Count", "CC-Cause", "CC-Cancel-Reason", "CC-Hangup-Cause"} {
		if v := e.Get(k); v != "" {
			s += " " + v
		}
	}
	return s
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func (h *harness) get(key, agent string) string { return h.api("agent get " + key + " " + agent) }

func (h *harness) tierState(q, agent string) string {
	var s string
	h.acd.do(func() {
		if t := h.acd.findTier(q, agent); t != nil {
			s = t.State.String()
		}
	})
	return s
}

func (h *harness) agent(name string) Agent {
	var out Agent
	h.acd.do(func() {
		if ag := h.acd.agents[name]; ag != nil {
			out = *ag
		}
	})
	return out
}

// bridged answers r and waits until the caller's app has taken the agent
// (agent-state-change "In a queue call").
func (h *harness) bridged(r *dialReq) *call.Channel {
	h.t.Helper()
	leg := r.answer()
	agent := dialed(r)
	for {
		e := h.waitAction("agent-state-change")
		if e.Get("CC-Agent") == agent && e.Get("CC-Agent-State") == config.StateInAQueueCall.String() {
			break
		}
	}
	h.acd.settle()
	return leg
}

// until waits for an event whose summary is s, looking first at what the
// recorder already holds.
func (h *harness) until(s string) {
	h.t.Helper()
	if h.record != nil {
		for _, e := range h.record.evs {
			if summary(e) == s {
				return
			}
		}
	}
	for summary(h.nextEvent()) != s {
	}
}

const q1 = "q1@default"

func queueCfg(strategy config.Strategy, mod func(*config.Queue)) config.Callcenter {
	q := config.Queue{Name: q1, Strategy: strategy}
	if mod != nil {
		mod(&q)
	}
	return config.Callcenter{Queues: []config.Queue{q}}
}

// agents adds callback agents "name:level:position" tiered to q1, Available.
func (h *harness) agents(specs ...string) {
	h.t.Helper()
	for _, s := range specs {
		p := strings.Split(s, ":")
		lvl, pos := "1", "1"
		if len(p) > 1 {
			lvl = p[1]
		}
		if len(p) > 2 {
			pos = p[2]
		}
		h.mustOK("agent add " + p[0] + " Callback")
		h.mustOK("agent set contact " + p[0] + " user/" + p[0])
		h.mustOK("tier add " + q1 + " " + p[0] + " " + lvl + " " + pos)
		h.mustOK("agent set status " + p[0] + " Available")
	}
	h.drain()
}

func dialed(r *dialReq) string {
	return strings.TrimPrefix(r.dial[strings.LastIndex(r.dial, "]")+1:], "user/")
}

// fakeMedia records what the app plays and lets tests send DTMF.
type fakeMedia struct {
	mu     sync.Mutex
	music  []string
	played []string
	// digits holds every listener, as a real media leg does: the channel
	// itself listens (DTMF events) from its creation, the app once it runs.
	digits map[*func(rune)]struct{}
	// armed is set once the channel exists; ready is closed by the first
	// listener after that, i.e. the app's.
	armed bool
	ready chan struct{}
}

func newFakeMedia() *fakeMedia {
	return &fakeMedia{ready: make(chan struct{}), digits: make(map[*func(rune)]struct{})}
}

// arm makes the next OnDigit the one press waits for.
func (m *fakeMedia) arm() {
	m.mu.Lock()
	m.armed = true
	m.mu.Unlock()
}

func (m *fakeMedia) Play(ctx context.Context, path string) error {
	m.mu.Lock()
	m.played = append(m.played, path)
	m.mu.Unlock()
	return nil
}

func (m *fakeMedia) Music(path string) (func(), error) {
	m.mu.Lock()
	m.music = append(m.music, path)
	m.mu.Unlock()
	return func() {}, nil
}

func (m *fakeMedia) OnDigit(fn func(rune)) func() {
	m.mu.Lock()
	key := &fn
	m.digits[key] = struct{}{}
	if m.armed {
		select {
		case <-m.ready:
		default:
			close(m.ready)
		}
	}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.digits, key)
		m.mu.Unlock()
	}
}

// press delivers d to every listener once the app listens.
func (m *fakeMedia) press(d rune) {
	<-m.ready
	m.mu.Lock()
	fns := make([]func(rune), 0, len(m.digits))
	for f := range m.digits {
		fns = append(fns, *f)
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(d)
	}
}

func (m *fakeMedia) SendDigits(string) error { return nil }

func (m *fakeMedia) Bridge(call.Media) (func(), error) {
	return func() {}, nil
}

func (m *fakeMedia) Codec() string { return "PCMU" }

func (m *fakeMedia) musicPlayed() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.music...)
}

func (h *harness) callWithMedia(num string, vars map[string]string) (*caller, *fakeMedia) {
	h.t.Helper()
	md := newFakeMedia()
	v := map[string]string{"caller_id_number": num, "caller_id_name": q1}
	for k, x := range vars {
		v[k] = x
	}
	ch := h.core.NewChannel(call.ChannelSpec{Name: "sofia/blueivr/" + num, Direction: call.Inbound, Vars: v, Media: md})
	md.arm()
	c := &caller{ch: ch, done: make(chan error, 1)}
	go func() { c.done <- h.core.Execute(ch.Context(), ch, "callcenter", q1) }()
	h.waitAction("member-queue-start")
	h.acd.settle()
	return c, md
}
