package acd

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// memberApp connects a member to the goroutine of its callcenter app.
type memberApp struct {
	found chan *offer              // the agent who answered and won
	exit  chan config.CancelReason // decided by the loop (timeouts)
}

// joinInfo is what the app needs from the queue after joining.
type joinInfo struct {
	m                 *Member
	moh               string
	announce          string
	announceFrequency int64
}

// join runs in the loop: the member enters (or resumes in) the queue
// (§10.1 steps 3-8).
func (a *ACD) join(ch *call.Channel, qname string) *joinInfo {
	q := a.lookupQueue(qname)
	if q == nil {
		return nil
	}
	now := a.now()
	app := &memberApp{found: make(chan *offer, 1), exit: make(chan config.CancelReason, 1)}
	var answered int64
	if t := ch.AnsweredAt(); !t.IsZero() {
		answered = t.Unix()
	}
	base := int64(call.Atoi(ch.Var("cc_base_score")))
	if strings.EqualFold(q.TimeBaseScore, config.TimeBaseScoreSystem) && answered > 0 {
		base += now - answered
	}
	cidNum := ch.Var("caller_id_number")
	var m *Member
	if q.AbandonedResumeAllowed {
		for _, old := range a.members {
			if old.Queue == q.Name && old.CIDNumber == cidNum && old.State == config.MemberAbandoned && old.app == nil &&
				(m == nil || old.AbandonedEpoch > m.AbandonedEpoch) {
				m = old
			}
		}
		if m != nil && m.AbandonedEpoch == 0 {
			m = nil
		}
	}
	resumed := m != nil
	if resumed {
		m.State = config.MemberWaiting
		m.SessionUUID = ch.UUID()
		m.RejoinedEpoch = now
		m.InstanceID = a.instanceID
		m.ServingAgent, m.ServingSystem = "", ""
		m.AbandonedEpoch = 0
	} else {
		a.memberSeq++
		m = &Member{MemberRow: store.MemberRow{Queue: q.Name, InstanceID: a.instanceID, UUID: uuid.NewString(),
			SessionUUID: ch.UUID(), CIDNumber: cidNum, CIDName: ch.Var("caller_id_name"), SystemEpoch: answered,
			JoinedEpoch: now, BaseScore: base}, State: config.MemberWaiting, seq: a.memberSeq}
	}
	if ringStrategy(q.Strategy) {
		m.ServingAgent = string(q.Strategy)
	}
	m.ch, m.app, m.t0 = ch, app, now
	m.exiting, m.pendingTimeout = false, false
	m.offers = map[string]*offer{}
	ch.SetVar("cc_side", "member")
	ch.SetVar("cc_member_uuid", m.UUID)
	ch.SetVar("cc_agent_found", "")
	ch.SetVar("cc_agent_bridged", "")
	ch.SetVar("cc_queue_joined_epoch", itoa(now))
	ch.SetVar("cc_queue", q.Name)
	action := "member-queue-start"
	if resumed {
		action = "member-queue-resume"
	}
	a.fire(ch, "CC-Queue", q.Name, "CC-Action", action, "CC-Member-UUID", m.UUID,
		"CC-Member-Session-UUID", m.SessionUUID, "CC-Member-CID-Name", m.CIDName,
		"CC-Member-CID-Number", m.CIDNumber)
	a.members[m.UUID] = m
	a.saveMember(m)
	m.origPos = a.position(m, now)
	a.statOffered(m)
	a.qlog(now, ch.UUID(), q.Name, "", "ENTERQUEUE", "", cidNum, itoa(m.origPos))
	a.fireMembersCount(q.Name)
	a.firePresence(q.Name)
	if q.MaxWaitTime > 0 {
		a.wakeAt(now + q.MaxWaitTime)
	}
	if q.MaxWaitTimeWithNoAgent > 0 {
		a.wakeAt(now + q.MaxWaitTimeWithNoAgent)
		a.wakeAt(now + q.MaxWaitTimeWithNoAgent + q.MaxWaitTimeWithNoAgentReach)
	}
	a.dirty = true
	moh := ch.Var("cc_moh_override")
	if moh == "" {
		moh = expandVars(q.MOHSound, ch.Var)
	}
	return &joinInfo{m: m, moh: moh, announce: q.AnnounceSound, announceFrequency: q.AnnounceFrequency}
}

// leave runs in the loop when the app ends without a bridge (§10.1 step 13).
func (a *ACD) leave(m *Member, reason config.CancelReason) {
	if a.members[m.UUID] != m || m.app == nil {
		return
	}
	now := a.now()
	q := a.lookupQueue(m.Queue)
	ch := m.ch
	session := m.SessionUUID
	pos := a.position(m, now)
	m.State = config.MemberAbandoned
	m.SessionUUID = ""
	m.AbandonedEpoch = now
	m.exiting = true
	a.saveMember(m)
	for _, o := range m.offers {
		switch o.state {
		case offerRinging:
			o.cancel(call.OriginatorCancel)
		case offerHandedOff:
			delete(a.legs, o.leg.UUID())
			o.leg.Hangup(call.OriginatorCancel)
			a.offerFailed(o, call.OriginatorCancel, false)
		}
	}
	a.fire(ch, "CC-Queue", m.Queue, "CC-Action", "member-queue-end", "CC-Member-Leaving-Time", itoa(now),
		"CC-Member-Joined-Time", itoa(m.t0), "CC-Cause", config.CauseCancel.String(), "CC-Cancel-Reason", reason.String(),
		"CC-Member-UUID", m.UUID, "CC-Member-Session-UUID", session, "CC-Member-CID-Name", m.CIDName,
		"CC-Member-CID-Number", m.CIDNumber)
	if ch != nil {
		ch.SetVar("cc_queue_canceled_epoch", itoa(now))
		ch.SetVar("cc_cause", "cancel")
		ch.SetVar("cc_cancel_reason", reason.String())
		ch.SetVar("cc_agent_found", "")
	}
	if q != nil {
		q.CallsAbandoned++
		a.saveCounters(q)
		a.wakeAt(now + q.DiscardAbandonedAfter + 1)
	}
	wait := now - m.t0
	a.statAbandoned(m, q, wait)
	switch reason {
	case config.ReasonTimeout, config.ReasonNoAgentTimeout:
		a.qlog(now, session, m.Queue, "", "EXITWITHTIMEOUT", itoa(pos), itoa(m.origPos), itoa(wait))
	case config.ReasonExitWithKey:
		key := ""
		if ch != nil {
			key = ch.Var("cc_exit_key")
		}
		a.qlog(now, session, m.Queue, "", "EXITWITHKEY", key, itoa(pos), itoa(m.origPos), itoa(wait))
	default:
		a.qlog(now, session, m.Queue, "", "ABANDON", itoa(pos), itoa(m.origPos), itoa(wait))
	}
	a.fireMembersCount(m.Queue)
	a.firePresence(m.Queue)
	m.app = nil
	m.ch = nil
	a.dirty = true
}

// appCallcenter is the `callcenter <queue>` dialplan application (§10).
//
// A waiting caller's goroutine is parked here for the whole wait, under the
// dialplan's and often a Lua script's frames. The runtime halves a parked
// goroutine's stack only while under a quarter of it is in use, so every
// byte of the frames parked here is kept per waiting caller, rounded up to
// a power of two: the work (joining, music, digits, the bridge) is done in
// ccWait's methods, which return before the goroutine parks, and the
// frames left on the stack during the wait are this one and park's.
func (a *ACD) appCallcenter(ctx context.Context, ch *call.Channel, data string) error {
	w := a.ccStart(ctx, ch, data)
	if w == nil {
		return nil
	}
	defer w.close()
	for {
		if done, err := w.handle(w.park()); done {
			return err
		}
	}
}

// ccWait is a caller's state in the callcenter app between join and leave.
type ccWait struct {
	a       *ACD
	ctx     context.Context
	ch      *call.Channel
	ji      *joinInfo
	h       *hold
	digits  chan rune
	annTick chan struct{}
	stopAnn func() bool
	remove  func() // the digit handler's

	// What park received.
	reason config.CancelReason
	digit  rune
	offer  *offer
}

// What ended a park.
const (
	ccHangup  = iota // the channel went or the app was interrupted
	ccStopped        // the ACD stopped
	ccExit           // the loop decided the caller leaves (timeouts)
	ccDigit
	ccAnnounce
	ccFound
)

// ccStart checks the queue, answers and joins; nil means the app returns
// at once.
//
//go:noinline
func (a *ACD) ccStart(ctx context.Context, ch *call.Channel, data string) *ccWait {
	fields := strings.Fields(data)
	if len(fields) == 0 {
		ch.Log().Warn("callcenter: no queue name given", "app", "callcenter")
		return nil
	}
	qname := fields[0]
	// Checked without the loop (knownQueue): a round trip through it
	// here would delay every queue call's dispatch by two wake-ups and a
	// wait behind whatever the loop has queued.
	if a.stopped() {
		return nil
	}
	if !a.knownQueue(qname) {
		ch.Log().Warn("callcenter: queue not found", "app", "callcenter", "queue", qname)
		return nil
	}
	if err := ch.Answer(); err != nil {
		ch.Log().Info("callcenter: answer failed", "app", "callcenter", "err", err)
		return nil
	}
	var ji *joinInfo
	if !a.do(func() { ji = a.join(ch, qname) }) || ji == nil {
		return nil
	}
	w := &ccWait{a: a, ctx: ctx, ch: ch, ji: ji, h: &hold{a: a, ch: ch, moh: ji.moh},
		digits: make(chan rune, 16), annTick: make(chan struct{}, 1)}
	w.h.startMusic()
	if md := ch.Media(); md != nil {
		digits := w.digits
		w.remove = md.OnDigit(func(d rune) {
			select {
			case digits <- d:
			default:
			}
		})
	}
	w.armAnn()
	return w
}

func (w *ccWait) armAnn() {
	if w.ji.announce == "" || w.ji.announceFrequency <= 0 {
		return
	}
	tick := w.annTick
	w.stopAnn = w.a.clock.AfterFunc(time.Duration(w.ji.announceFrequency)*time.Second, func() {
		select {
		case tick <- struct{}{}:
		default:
		}
	})
}

// close undoes what ccStart set up (in the order the app's defers did).
func (w *ccWait) close() {
	if w.stopAnn != nil {
		w.stopAnn()
	}
	if w.remove != nil {
		w.remove()
	}
	w.h.stop()
}

// park waits for the next thing that concerns the waiting caller.
//
//go:noinline
func (w *ccWait) park() int {
	select {
	case <-w.ch.Done():
		return ccHangup
	case <-w.ctx.Done():
		return ccHangup
	case <-w.a.done:
		return ccStopped
	case w.reason = <-w.ji.m.app.exit:
		return ccExit
	case w.digit = <-w.digits:
		return ccDigit
	case <-w.annTick:
		return ccAnnounce
	case w.offer = <-w.ji.m.app.found:
		return ccFound
	}
}

// handle acts on what park received; done means the app returns err.
//
//go:noinline
func (w *ccWait) handle(ev int) (done bool, err error) {
	a, ch, m, h := w.a, w.ch, w.ji.m, w.h
	leave := func(reason config.CancelReason) (bool, error) {
		h.stop()
		a.do(func() { a.leave(m, reason) })
		return true, nil
	}
	switch ev {
	case ccHangup:
		// Hung up, or interrupted from outside (uuid_transfer): the
		// caller leaves.
		return leave(config.ReasonBreakOut)
	case ccStopped:
		// The ACD stopped (shutdown): let the dialplan go on.
		return true, nil
	case ccExit:
		return leave(w.reason)
	case ccDigit:
		if keys := ch.Var("cc_exit_keys"); keys != "" && strings.ContainsRune(keys, w.digit) {
			ch.SetVar("cc_exit_key", string(w.digit))
			return leave(config.ReasonExitWithKey)
		}
	case ccAnnounce:
		w.armAnn()
		h.announce(w.ji.announce)
	case ccFound:
		o := w.offer
		w.offer = nil
		h.stop()
		var ok bool
		a.do(func() { ok = a.startBridge(o) })
		if !ok {
			h.startMusic()
			return false, nil
		}
		w.bridge(o)
		return true, nil
	}
	return false, nil
}

// bridge connects the caller to the agent who answered, for as long as the
// bridge lasts.
func (w *ccWait) bridge(o *offer) {
	a, ch, ctx := w.a, w.ch, w.ctx
	ch.SetVar("cc_cause", "answered")
	ch.SetVar("cc_agent_found", "")
	if err := a.sw.Bridge(ch, o.leg); err != nil {
		ch.Log().Warn("callcenter: bridge failed", "app", "callcenter", "err", err)
		o.leg.Hangup(call.NormalTemporaryFailure)
	}
	// The bridge ends when either side goes: a caller still up
	// means the agent hung up (queue_log COMPLETEAGENT).
	agentFirst := ch.Ready()
	a.post(func() { a.bridgeSide(o, agentFirst) })
	if v := ch.Var("transfer_after_bridge"); v != "" && ch.Ready() {
		// "dest[:XML[:context]]" as FreeSWITCH writes it; the dialplan's
		// transfer takes effect once this app returns.
		if err := a.core.Execute(ctx, ch, "transfer", strings.ReplaceAll(v, ":", " ")); err != nil {
			ch.Log().Warn("callcenter: transfer_after_bridge failed", "app", "callcenter", "to", v, "err", err)
		}
		return
	}
	call.HangupAfterBridge(ch, o.leg)
}

// hold plays the queue's music to the waiting caller and the periodic
// announcement over it. Media may be absent (tests, signalling-only
// channels); the caller then waits in silence.
type hold struct {
	a         *ACD
	ch        *call.Channel
	moh       string
	mu        sync.Mutex
	stopMusic func()
	stopAnn   context.CancelFunc
}

func (h *hold) startMusic() {
	md := h.ch.Media()
	if md == nil || h.moh == "" {
		return
	}
	stop, err := md.Music(h.moh)
	if err != nil {
		// Every caller of the queue waits in silence: a configuration error.
		h.ch.Log().Error("callcenter: music on hold failed, waiting in silence", "moh", h.moh, "err", err)
		return
	}
	h.mu.Lock()
	h.stopMusic = stop
	h.mu.Unlock()
}

func (h *hold) stop() {
	h.mu.Lock()
	stop, ann := h.stopMusic, h.stopAnn
	h.stopMusic, h.stopAnn = nil, nil
	h.mu.Unlock()
	if ann != nil {
		ann()
	}
	if stop != nil {
		stop()
	}
}

// announce plays file over the music in the background, then resumes the
// music; a found agent or a hangup cuts it short (no dead air, #1148).
func (h *hold) announce(file string) {
	md := h.ch.Media()
	if md == nil {
		return
	}
	h.stop()
	ctx, cancel := context.WithCancel(h.ch.Context())
	h.mu.Lock()
	h.stopAnn = cancel
	h.mu.Unlock()
	go func() {
		err := md.Play(ctx, file)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			h.ch.Log().Warn("callcenter: announcement failed", "file", file, "err", err)
		}
		h.mu.Lock()
		still := h.stopAnn != nil
		h.stopAnn = nil
		h.mu.Unlock()
		cancel()
		if still {
			h.startMusic()
		}
	}()
}

// appTrack is `callcenter_track <agent>` (§11.1): while the channel is up
// the agent counts an external call and is skipped by queues that skip
// such agents.
func (a *ACD) appTrack(ctx context.Context, ch *call.Channel, data string) error {
	name := strings.TrimSpace(data)
	var ok bool
	a.do(func() {
		ag := a.agents[name]
		if ag == nil {
			return
		}
		a.fire(nil, "CC-Agent", name, "CC-Action", "agent-status-get", "CC-Agent-Status", ag.Status.String())
		ag.ExternalCallsCount++
		a.saveAgent(ag)
		ok = true
	})
	if !ok {
		ch.Log().Warn("callcenter_track: agent not found", "agent", name)
		return nil
	}
	ch.SetVar("cc_tracked_agent", name)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		select {
		case <-ch.Done():
		case <-a.quit:
			return
		}
		// The decrement names the agent this call tracked, not the
		// channel's last tracked agent as in FreeSWITCH.
		a.post(func() {
			if ag := a.agents[name]; ag != nil && ag.ExternalCallsCount > 0 {
				ag.ExternalCallsCount--
				a.saveAgent(ag)
				a.dirty = true
			}
		})
	}()
	return nil
}

// apiBreak is `callcenter_break agent <uuid>` (§11.2): the agent is
// accounted as finished while the call itself continues.
func (a *ACD) apiBreak(_ context.Context, args string, _ *call.Channel) string {
	f := strings.Fields(args)
	if len(f) < 2 {
		return errBreakUsage
	}
	id := f[1]
	if _, ok := a.core.Channel(id); !ok {
		return "-ERR Session not found for uuid " + id + "\n"
	}
	a.do(func() {
		if o := a.legs[id]; o != nil {
			o.broken = true
			a.bridgeEnded(o)
		}
	})
	return ""
}
