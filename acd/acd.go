// Package acd owns the call-center semantics of mod_callcenter: queues
// (from the configuration), agents, tiers and members (persisted in store),
// the agent-selection strategies, the dispatcher, the `callcenter` and
// `callcenter_track` dialplan applications, the `callcenter_config` and
// `callcenter_break` API commands and the `callcenter::info` events, plus
// what FreeSWITCH leaves to other tools: queue statistics in 15-minute
// intervals (`callcenter_config queue stats`, stats.go) and Asterisk
// queue_log lines (queuelog.go), both fed by the loop from the member and
// offer lifecycle.
//
// One goroutine (the loop) owns all ACD state: joins, abandons, offer
// results, API commands and timers reach it as messages, and dispatch runs
// after each message that could change an outcome instead of on a 100 ms
// poll. A caller that waits for its message (do) is released only after
// that dispatch, so what it reads next is settled. Time comes from an
// injected Clock, so tests run in virtual time.
//
// On a cluster node (Options.Cluster, cluster.go) the loop still owns the
// callers of its own node; agents and tiers are shared in the database, an
// agent is offered only after this node wins its claim there, and other
// nodes' writes are mirrored into the loop from notices.
//
// mod_callcenter's words (strategies, agent statuses and states, tier and
// member states, cancel reasons) are config's types, shared with the
// configuration file; acd converts them to store's plain columns in
// model.go.
//
// acd talks to calls only through package call (channels, originate,
// bridge, events); it must not import sip, media, api or dialplan.
package acd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// Clock is the ACD's time source. AfterFunc runs f once after d (in its own
// goroutine or the caller's of Advance, for fake clocks) and returns a stop
// function.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Switch is what the ACD needs from the switch core to reach agents;
// *call.Core satisfies it, tests substitute a scripted one.
type Switch interface {
	Originate(ctx context.Context, dial string, o call.OriginateOptions) (*call.Channel, error)
	Bridge(a, b *call.Channel) error
}

// Options tune an ACD; zero values mean production defaults.
type Options struct {
	Clock Clock
	Log   *slog.Logger
	// Switch replaces core for originate and bridge (tests).
	Switch Switch
	// Seed makes the random strategy reproducible (0 = random seed).
	Seed uint64
	// QueueLog receives the Asterisk-format queue_log lines; nil writes
	// none.
	QueueLog QueueLog
	// Location decides where a statistics day starts (`queue stats
	// <queue> today`); nil = time.Local.
	Location *time.Location
	// Cluster makes this ACD one node of a cluster (cluster.go); nil on a
	// single box.
	Cluster Cluster
}

// ACD is the call-center module.
type ACD struct {
	cfg        config.Callcenter
	core       *call.Core
	sw         Switch
	st         Store
	clock      Clock
	log        *slog.Logger
	instanceID string
	origTO     time.Duration
	// cl is the cluster (nil: single box); system is this node's id in
	// serving_system and CC-Agent-System (single_box without a cluster).
	cl     Cluster
	system string
	// resumeAny: some queue allows abandoned-resume, so other nodes'
	// Abandoned members are worth mirroring (read by Notice, off the loop).
	resumeAny atomic.Bool
	// known holds the names lookupQueue finds (loaded queues and those in
	// the configuration, loaded on demand), published by the loop whenever
	// either changes, so the callcenter app checks its queue without a
	// round trip through the loop (issue 15: each trip is a wake-up on the
	// dispatch path under load).
	known atomic.Pointer[map[string]struct{}]

	inbox   chan message
	quit    chan struct{}
	done    chan struct{}
	started bool
	closeMu sync.Once
	persist *persister
	bufs    dispatchBufs   // dispatch's, reused between passes
	cands   candCache      // dispatch's candidate rows (dispatch.go)
	wg      sync.WaitGroup // offer, watcher and track goroutines
	// launches are the offers' goroutines a loop message started, run
	// once the message is done (launchOffers); inLoop: the loop is
	// running a message.
	launches []func()
	inLoop   bool

	// Loop-owned state.
	queues     map[string]*Queue
	queueOrder []string
	agents     map[string]*Agent
	agentSeq   int64
	tiers      []*Tier
	tierSeq    int64
	members    map[string]*Member
	memberSeq  int64
	legs       map[string]*offer // answered agent leg UUID → offer
	offerSeq   int64
	dirty      bool
	closing    bool        // Close began: launch nothing more
	fenced     bool        // cluster: this node's lease is gone, offer nothing
	mir        mirrorState // cluster: mirror reads in flight (mirror.go)
	wakes      map[int64]bool
	rnd        *rand.Rand

	// Statistics (stats.go): today's rows by interval, queue and agent,
	// the day they belong to, and queue list's counters by queue.
	stats    map[statKey]*store.StatsRow
	statsDay int64
	counters map[string]store.QueueCounters
	loc      *time.Location
	qlogger  QueueLog
}

// New builds an ACD from the callcenter configuration. st may be nil (no
// persistence, for tests).
func New(cfg config.Callcenter, core *call.Core, st Store, opts Options) (*ACD, error) {
	if core == nil {
		return nil, errors.New("acd: nil core")
	}
	a := &ACD{
		cfg:        cfg,
		core:       core,
		sw:         opts.Switch,
		st:         st,
		clock:      opts.Clock,
		log:        opts.Log,
		instanceID: cfg.Settings.InstanceID,
		inbox:      make(chan message, 1024),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		queues:     map[string]*Queue{},
		agents:     map[string]*Agent{},
		members:    map[string]*Member{},
		legs:       map[string]*offer{},
		wakes:      map[int64]bool{},
		loc:        opts.Location,
		qlogger:    opts.QueueLog,
		cl:         opts.Cluster,
		system:     nodeOf(opts.Cluster),
	}
	if a.loc == nil {
		a.loc = time.Local
	}
	if a.sw == nil {
		a.sw = core
	}
	if a.clock == nil {
		a.clock = realClock{}
	}
	if a.log == nil {
		a.log = core.Log
	}
	a.log = a.log.With("module", "acd")
	if a.instanceID == "" {
		a.instanceID = singleBox
	}
	if a.cl != nil {
		a.instanceID = a.system
	}
	a.origTO = 60 * time.Second
	if cfg.Settings.AgentOriginateTimeout > 0 {
		a.origTO = time.Duration(cfg.Settings.AgentOriginateTimeout) * time.Second
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	a.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for _, qc := range cfg.Queues {
		if qc.Name == "" {
			return nil, errors.New("acd: queue without a name")
		}
	}
	a.persist = newPersister(st, a.log)
	a.resumeAny.Store(anyResume(cfg))
	a.publishKnown()
	return a, nil
}

// Start loads the database (with mod_callcenter's restart reset), applies
// the configured queues, agents and tiers, registers the apps and APIs and
// starts the loop.
func (a *ACD) Start(ctx context.Context) error {
	if a.started {
		return errors.New("acd: already started")
	}
	a.started = true
	if err := a.load(ctx); err != nil {
		return fmt.Errorf("acd: load: %w", err)
	}
	if err := a.loadStats(ctx); err != nil {
		return fmt.Errorf("acd: load statistics: %w", err)
	}
	a.qlog(a.now(), "", "", "", "QUEUESTART", "")
	for _, qc := range a.cfg.Queues {
		a.addQueue(newQueue(qc, a.log))
	}
	if a.seedOnly() {
		a.seedConfig()
	} else {
		a.applyConfigAgents("")
		a.applyConfigTiers("", "")
	}
	go a.persist.run()
	go a.loop()
	a.core.RegisterApp("callcenter", a.appCallcenter)
	a.core.RegisterApp("callcenter_track", a.appTrack)
	a.core.RegisterAPI("callcenter_config", "Config of callcenter", a.apiConfig)
	a.core.RegisterAPI("callcenter_break", "callcenter_break agent <uuid>", a.apiBreak)
	probes, stopProbes := a.core.Bus.SubscribeKinds(64, call.Kinds("PRESENCE_PROBE"),
		func(e *call.Event) bool { return e.Name == "PRESENCE_PROBE" })
	go func() {
		for {
			select {
			case e := <-probes:
				a.post(func() { a.presenceProbe(e) })
			case <-a.quit:
				stopProbes()
				return
			}
		}
	}()
	if _, taken := a.core.APINames()["json"]; !taken {
		a.core.RegisterAPI("json", "JSON API", a.apiJSON)
	}
	a.post(a.tick)
	return nil
}

// Close stops the loop, cancels offers in flight and flushes persistence.
func (a *ACD) Close() {
	a.closeMu.Do(func() {
		if !a.started {
			return
		}
		a.do(func() {
			a.closing = true
			for _, m := range a.members {
				for _, o := range m.offers {
					o.cancel(call.OriginatorCancel)
					if a.cl != nil && o.state == offerRinging {
						// The result would reach a stopped loop: free the
						// shared agent and its claim now.
						a.offerFailed(o, call.OriginatorCancel, false)
					}
				}
			}
		})
		close(a.quit)
		<-a.done
		a.wg.Wait()
		// Claims won while the loop was stopping are given back.
		for {
			select {
			case m := <-a.inbox:
				if m.unclaim != nil {
					m.unclaim()
				}
				continue
			default:
			}
			break
		}
		a.persist.close()
	})
}

// message is one unit of work for the loop. done, when set, is closed
// after f and the dispatch f asked for (a.dirty) have both run: that is the
// point a caller of do may observe.
type message struct {
	f    func()
	done chan struct{}
	// unclaim, on a cluster claim's result, gives the claim back when the
	// loop stopped before running f (Close).
	unclaim func()
}

func (a *ACD) loop() {
	defer close(a.done)
	for {
		select {
		case m := <-a.inbox:
			a.inLoop = true
			m.f()
			// Dispatch before the next message and before releasing the
			// sender, so a caller of do sees the dispatch its message
			// caused.
			if a.dirty {
				a.dirty = false
				a.dispatch()
			}
			a.inLoop = false
			// The rows this message changed go to the writer now that
			// the offers it started are on their way.
			a.persist.kick()
			if m.done != nil {
				close(m.done)
			}
			// The offers' goroutines start last: the goroutine started
			// last is the one this P runs as soon as the loop waits
			// again, while waking the writer or the sender of m would
			// have put it behind them (issue 15: the agent's INVITE
			// waited behind the persister and the member's app).
			a.launchOffers()
		case <-a.quit:
			return
		}
	}
}

// goOffer runs f in a goroutine of its own, counted in wg: in the loop
// after the current message (launchOffers), elsewhere at once.
func (a *ACD) goOffer(f func()) {
	a.wg.Add(1)
	g := func() {
		defer a.wg.Done()
		f()
	}
	if a.inLoop {
		a.launches = append(a.launches, g)
		return
	}
	go g()
}

// launchOffers starts the goroutines goOffer deferred.
func (a *ACD) launchOffers() {
	for i, g := range a.launches {
		a.launches[i] = nil
		go g()
	}
	a.launches = a.launches[:0]
}

// post queues f for the loop without waiting. After Close it is dropped.
func (a *ACD) post(f func()) {
	select {
	case a.inbox <- message{f: f}:
	case <-a.quit:
	}
}

// do runs f in the loop and waits for it and for the dispatch it triggers.
// It must not be called from the loop itself.
func (a *ACD) do(f func()) bool {
	m := message{f: f, done: make(chan struct{})}
	select {
	case a.inbox <- m:
	case <-a.quit:
		return false
	}
	select {
	case <-m.done:
		return true
	case <-a.done:
		return false
	}
}

// stopped reports whether Close has stopped the loop (do would refuse).
func (a *ACD) stopped() bool {
	select {
	case <-a.quit:
		return true
	default:
		return false
	}
}

func (a *ACD) now() int64 { return a.clock.Now().Unix() }

// wakeAt makes the loop run a dispatch and the member checks at epoch t.
func (a *ACD) wakeAt(t int64) {
	if a.wakes[t] {
		return
	}
	a.wakes[t] = true
	d := time.Unix(t, 0).Sub(a.clock.Now())
	if d < 0 {
		d = 0
	}
	a.clock.AfterFunc(d, func() {
		a.post(func() {
			delete(a.wakes, t)
			a.tick()
		})
	})
}

// tick runs the time-driven checks: a dispatch pass (which refreshes the
// no-agent bookkeeping), member exits and the abandoned-row cleanup.
func (a *ACD) tick() {
	a.dispatch()
	a.checkMembers()
	a.discardAbandoned()
}

func (a *ACD) addQueue(q *Queue) {
	if _, ok := a.queues[q.Name]; !ok {
		a.queueOrder = append(a.queueOrder, q.Name)
	}
	// The counters outlive a reload and a restart (issue 12 item 4).
	if c, ok := a.counters[q.Name]; ok {
		q.CallsAnswered, q.CallsAbandoned = c.CallsAnswered, c.CallsAbandoned
	}
	a.queues[q.Name] = q
	a.publishKnown()
}

func (a *ACD) removeQueue(name string) {
	if _, ok := a.queues[name]; !ok {
		return
	}
	delete(a.queues, name)
	for i, n := range a.queueOrder {
		if n == name {
			a.queueOrder = append(a.queueOrder[:i], a.queueOrder[i+1:]...)
			break
		}
	}
	a.publishKnown()
}

// publishKnown rebuilds known from the loaded queues and the
// configuration; it runs where they change (in the loop, or before it
// starts).
func (a *ACD) publishKnown() {
	m := make(map[string]struct{}, len(a.queues)+len(a.cfg.Queues))
	for name := range a.queues {
		m[name] = struct{}{}
	}
	for _, q := range a.cfg.Queues {
		m[q.Name] = struct{}{}
	}
	a.known.Store(&m)
}

// knownQueue reports whether lookupQueue would find name, from any
// goroutine. A queue unloaded just after it answered is caught by join,
// which looks it up again in the loop.
func (a *ACD) knownQueue(name string) bool {
	m := a.known.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[name]
	return ok
}

// queueConfig finds a queue in the configuration.
func (a *ACD) queueConfig(name string) (config.Queue, bool) {
	for _, q := range a.cfg.Queues {
		if q.Name == name {
			return q, true
		}
	}
	return config.Queue{}, false
}

// lookupQueue returns a loaded queue, loading it from the configuration on
// demand as mod_callcenter does (§3.4).
func (a *ACD) lookupQueue(name string) *Queue {
	if q, ok := a.queues[name]; ok {
		return q
	}
	qc, ok := a.queueConfig(name)
	if !ok {
		return nil
	}
	q := newQueue(qc, a.log)
	a.addQueue(q)
	return q
}
