package acd

import (
	"context"
	"strings"

	"ccpbx/call"
	"ccpbx/config"
)

type offerState int

const (
	offerRinging   offerState = iota // originate in flight
	offerHandedOff                   // agent answered and won; the app is about to bridge
	offerBridged                     // caller and agent are bridged
	offerDone
)

// offer is one member × one agent attempt, from launch to the end of the
// bridged call.
type offer struct {
	m             *Member
	q             *Queue
	ag            *Agent
	state         offerState
	ctx           context.Context
	cancelFn      context.CancelCauseFunc
	stopTimer     func() bool
	called        int64
	answered      int64
	statusAtOffer config.AgentStatus
	sessionUUID   string
	standby       bool
	// failedAnnounce is the member's cc_bridge_failed_outbound_announce,
	// played to an agent who answers after the caller left.
	failedAnnounce string
	leg            *call.Channel
	breakCh        chan struct{}

	// Accounting of the bridged call for statistics and queue_log.
	bridgedAt, endedAt, talk int64
	broken                   bool // ended by callcenter_break
	sideKnown, agentFirst    bool // which side ended the bridge (bridgeSide)
	completed                bool // COMPLETECALLER/COMPLETEAGENT written
	// orphan: the agent's claim went to another node while this one was
	// fenced; the end of this call must not touch the agent.
	orphan bool
}

func (o *offer) cancel(c call.Cause) {
	if o.state == offerRinging {
		o.cancelFn(c)
	}
}

// cancelAgentOffers cancels the agent's ringing offers, as a status change
// away from Available does (§7.3).
func (a *ACD) cancelAgentOffers(ag *Agent) {
	for _, m := range a.members {
		if o, ok := m.offers[ag.Name]; ok && o.ag == ag {
			o.cancel(call.OriginatorCancel)
		}
	}
}

// startOffer fires agent-offering and places the call to the agent in its
// own goroutine; the result comes back to the loop.
func (a *ACD) startOffer(m *Member, q *Queue, ag *Agent, now int64) {
	ctx, cancel := context.WithCancelCause(context.Background())
	o := &offer{m: m, q: q, ag: ag, ctx: ctx, cancelFn: cancel, called: now, statusAtOffer: ag.Status,
		sessionUUID: m.SessionUUID, breakCh: make(chan struct{})}
	o.standby = strings.EqualFold(ag.Type, string(config.AgentTypeUUIDStandby))
	if m.ch != nil {
		o.failedAnnounce = m.ch.Var("cc_bridge_failed_outbound_announce")
	}
	if o.standby {
		o.called = 0
	}
	if m.offers == nil {
		m.offers = map[string]*offer{}
	}
	m.offers[ag.Name] = o
	a.statRung(o)
	a.fire(nil, "CC-Queue", q.Name, "CC-Action", "agent-offering", "CC-Agent", ag.Name,
		"CC-Agent-Type", ag.Type, "CC-Agent-System", a.system, "CC-Member-UUID", m.UUID,
		"CC-Member-Session-UUID", m.SessionUUID, "CC-Member-CID-Name", m.CIDName,
		"CC-Member-CID-Number", m.CIDNumber)

	if o.standby {
		leg, ok := a.core.Channel(ag.UUID)
		if !ok || ag.UUID == "" {
			// The standby channel is gone: the agent cannot take calls.
			// FreeSWITCH counts this as a no-answer (and may turn a Logged
			// Out agent into On Break, §16.2-5); ccpbx only logs it out.
			a.logStatus(ag, ag.Status, config.StatusLoggedOut)
			ag.Status = config.StatusLoggedOut
			a.rowsChanged()
			ag.UUID = ""
			ag.LastStatusChange = now
			a.saveAgent(ag)
			a.fireStatus(ag)
			a.offerFailed(o, call.UserNotRegistered, false)
			return
		}
		for k, v := range a.legVars(m, q, ag) {
			if k != "cc_member_pre_answer_uuid" {
				leg.SetVar(k, v)
			}
		}
		a.offerAnswered(o, leg)
		return
	}

	vars := a.legVars(m, q, ag)
	var get func(string) string = func(string) string { return "" }
	if m.ch != nil {
		get = m.ch.Var
	}
	dial := expandVars(ag.Contact, get)
	caller := m.ch
	o.stopTimer = a.clock.AfterFunc(a.origTO, func() { cancel(call.NoAnswer) })
	a.goOffer(func() {
		leg, err := a.sw.Originate(ctx, dial, call.OriginateOptions{Caller: caller, Vars: vars})
		if err == nil && leg != nil {
			if ann := get("cc_outbound_announce"); ann != "" {
				if md := leg.Media(); md != nil {
					for _, f := range strings.Split(strings.TrimPrefix(ann, "ARRAY::"), "::") {
						if err := md.Play(leg.Context(), f); err != nil {
							break
						}
					}
				}
			}
		}
		a.post(func() {
			if o.stopTimer != nil {
				o.stopTimer()
			}
			if err != nil || leg == nil {
				cause, ok := call.AsCause(err)
				if !ok {
					cause = call.NormalTemporaryFailure
				}
				a.offerFailed(o, cause, true)
				return
			}
			a.offerAnswered(o, leg)
		})
	})
}

// legVars are the variables of §10.2 step 4 for the agent leg.
func (a *ACD) legVars(m *Member, q *Queue, ag *Agent) map[string]string {
	get := func(string) string { return "" }
	if m.ch != nil {
		get = m.ch.Var
	}
	v := map[string]string{
		"cc_queue":                   q.Name,
		"cc_queue_joined_epoch":      itoa(m.JoinedEpoch),
		"cc_member_uuid":             m.UUID,
		"cc_member_session_uuid":     m.SessionUUID,
		"cc_member_pre_answer_uuid":  m.UUID,
		"cc_agent":                   ag.Name,
		"cc_agent_type":              ag.Type,
		"cc_side":                    "agent",
		"loopback_bowout":            "false",
		"loopback_bowout_on_execute": "false",
		"ignore_early_media":         "true",
	}
	name := get("effective_caller_id_name")
	if name == "" {
		name = m.CIDName
	}
	if p := get("cc_outbound_cid_name_prefix"); p != "" {
		name = p + name
	}
	num := get("effective_caller_id_number")
	if num == "" {
		num = m.CIDNumber
	}
	if name != "" {
		v["origination_caller_id_name"] = name
	}
	if num != "" {
		v["origination_caller_id_number"] = num
	}
	if ex := get("cc_export_vars"); ex != "" {
		v["cc_export_vars"] = ex
		for _, n := range strings.Split(ex, ",") {
			n = strings.TrimSpace(n)
			n = strings.TrimPrefix(strings.TrimPrefix(n, "nolocal:"), "_nolocal_")
			if n == "" {
				continue
			}
			if val := get(n); val != "" {
				v[n] = val
			}
		}
	}
	return v
}

// offerFailed applies the outcome table of §7.5. counted is false for
// failures the agent is not to blame for beyond the cause itself.
func (a *ACD) offerFailed(o *offer, cause call.Cause, counted bool) {
	if o.state == offerDone {
		return
	}
	o.state = offerDone
	now := a.now()
	m, q, ag := o.m, o.q, o.ag
	if m.offers[ag.Name] == o {
		delete(m.offers, ag.Name)
	}
	live := a.agents[ag.Name] == ag && !o.orphan
	tierState := config.TierReady
	var delay int64
	noAnswer := false
	switch cause {
	case call.LoseRace, call.OriginatorCancel:
	case call.UserBusy, call.Cause("NORMAL_CIRCUIT_CONGESTION"):
		delay = ag.BusyDelayTime
	case call.CallRejected:
		delay = ag.RejectDelayTime
	case call.UserNotRegistered:
		delay = 5
	default:
		if counted {
			delay = ag.NoAnswerDelayTime
			noAnswer = true
			tierState = config.TierNoAnswer
		}
	}
	if counted && cause != call.LoseRace && cause != call.OriginatorCancel {
		a.statNoAnswer(o)
		a.qlog(now, o.sessionUUID, q.Name, ag.Name, "RINGNOANSWER", itoa(max(now-o.called, 0)*1000))
	}
	if live && noAnswer {
		ag.NoAnswerCount++
		a.saveAgent(ag)
		if ag.MaxNoAnswer > 0 && ag.NoAnswerCount >= ag.MaxNoAnswer {
			a.fire(nil, "CC-Agent", ag.Name, "CC-Action", "agent-max-no-answer",
				"CC-Agent-No-Answer-Count", itoa(ag.MaxNoAnswer), "CC-Agent-No-Answer-Status", q.AgentNoAnswerStatus.String(),
				"CC-Member-UUID", m.UUID, "CC-Member-Session-UUID", o.sessionUUID)
			a.agentSet("status", ag.Name, q.AgentNoAnswerStatus.String())
		}
	}
	if live && delay > 0 {
		ag.ReadyTime = now + delay
		a.saveAgent(ag)
		a.wakeAt(ag.ReadyTime)
	} else if live && counted && cause != call.LoseRace && cause != call.OriginatorCancel {
		ag.retryAt = now + 1
		a.wakeAt(ag.retryAt)
	}
	a.fire(nil, "CC-Queue", q.Name, "CC-Action", "bridge-agent-fail", "CC-Hangup-Cause", string(cause),
		"CC-Agent", ag.Name, "CC-Agent-System", a.system, "CC-Agent-Called-Time", itoa(o.called),
		"CC-Agent-Aborted-Time", itoa(now), "CC-Member-UUID", m.UUID, "CC-Member-Session-UUID", o.sessionUUID,
		"CC-Member-CID-Name", m.CIDName, "CC-Member-CID-Number", m.CIDNumber,
		"CC-Member-Joined-Time", itoa(m.JoinedEpoch))
	if live {
		a.releaseTiers(ag, q.Name, tierState)
		a.setState(ag, config.StateWaiting)
	}
	if a.cl != nil && !o.orphan {
		a.releaseClaim(ag)
	}
	if a.members[m.UUID] == m && !ringStrategy(config.Strategy(m.ServingAgent)) && m.State == config.MemberTrying && m.ServingAgent == ag.Name {
		m.State = config.MemberWaiting
		m.ServingAgent, m.ServingSystem = "", ""
		a.saveMember(m)
	}
	if m.pendingTimeout && len(m.offers) == 0 {
		a.kick(m, config.ReasonTimeout)
	}
	a.dirty = true
}

// offerAnswered handles an agent leg that answered: the race of ring-all
// (§10.3, §14.4), then the hand-off to the caller's app.
func (a *ACD) offerAnswered(o *offer, leg *call.Channel) {
	if o.state != offerRinging {
		return
	}
	m, q, ag := o.m, o.q, o.ag
	callerGone := a.members[m.UUID] != m || m.app == nil || m.exiting || m.State == config.MemberAbandoned ||
		(m.ch != nil && !m.ch.Ready())
	lost := m.State == config.MemberAnswered || (!ringStrategy(config.Strategy(m.ServingAgent)) && m.ServingAgent != ag.Name)
	if callerGone || lost {
		// FreeSWITCH leaves an answered race loser (and an agent who
		// answers after the caller left) on a dead leg; ccpbx hangs it up.
		cause := call.LoseRace
		if callerGone {
			cause = call.OriginatorCancel
		}
		if !o.standby {
			if md := leg.Media(); callerGone && o.failedAnnounce != "" && md != nil {
				file := o.failedAnnounce
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					if err := md.Play(leg.Context(), file); err != nil {
						leg.Log().Debug("cc_bridge_failed_outbound_announce", "err", err)
					}
					leg.Hangup(cause)
				}()
			} else {
				leg.Hangup(cause)
			}
		}
		a.offerFailed(o, cause, false)
		return
	}
	if ringStrategy(config.Strategy(m.ServingAgent)) {
		m.ServingAgent = ag.Name
		m.ServingSystem = a.system
		a.saveMember(m)
		for _, other := range m.offers {
			if other != o {
				other.cancel(call.LoseRace)
			}
		}
	}
	o.state = offerHandedOff
	o.leg = leg
	o.answered = a.now()
	a.legs[leg.UUID()] = o
	leg.SetVar("cc_member_pre_answer_uuid", "")
	a.fire(leg, "CC-Queue", q.Name, "CC-Action", "bridge-agent-start", "CC-Agent", ag.Name,
		"CC-Agent-System", a.system, "CC-Agent-UUID", leg.UUID(), "CC-Agent-Called-Time", itoa(o.called),
		"CC-Agent-Answered-Time", itoa(o.answered), "CC-Member-Joined-Time", itoa(m.JoinedEpoch),
		"CC-Member-UUID", m.UUID, "CC-Member-Session-UUID", m.SessionUUID, "CC-Member-CID-Name", m.CIDName,
		"CC-Member-CID-Number", m.CIDNumber)
	if m.ch != nil {
		if q.RecordTemplate != "" {
			m.ch.SetVar("cc_record_filename", expandVars(q.RecordTemplate, m.ch.Var))
		}
		m.ch.SetVar("cc_agent_found", "true")
		m.ch.SetVar("cc_agent_uuid", leg.UUID())
	}
	select {
	case m.app.found <- o:
	default:
		// Cannot happen (one winner per member); keep the agent free.
		leg.Hangup(call.NormalTemporaryFailure)
		a.offerFailed(o, call.NormalTemporaryFailure, false)
	}
}

// startBridge runs when the caller's app takes the answered agent: the
// accounting of a successful bridge (§10.4). It reports false when the
// agent is already gone, and the caller keeps waiting.
func (a *ACD) startBridge(o *offer) bool {
	if o.state != offerHandedOff {
		return false
	}
	m, q, ag := o.m, o.q, o.ag
	if !o.leg.Ready() {
		delete(a.legs, o.leg.UUID())
		a.offerFailed(o, call.NormalClearing, false)
		if a.members[m.UUID] == m {
			m.State = config.MemberWaiting
			if ringStrategy(q.Strategy) {
				// FreeSWITCH leaves the agent's name in serving_agent and
				// strands a ring-all member (§16.2-1); give the strategy
				// back so other agents are rung.
				m.ServingAgent = string(q.Strategy)
				m.ServingSystem = ""
			} else {
				m.ServingAgent, m.ServingSystem = "", ""
			}
			a.saveMember(m)
		}
		return false
	}
	now := a.now()
	a.fireMembersCount(q.Name)
	a.firePresence(q.Name)
	m.State = config.MemberAnswered
	m.BridgeEpoch = now
	a.saveMember(m)
	if m.ch != nil {
		m.ch.SetVar("cc_agent_bridged", "true")
		m.ch.SetVar("cc_agent", ag.Name)
		m.ch.SetVar("cc_queue_answered_epoch", itoa(now))
		if file := m.ch.Var("cc_record_filename"); q.RecordTemplate != "" && file != "" {
			// record-template: record the caller's session (both
			// directions) until hangup, as mod_callcenter does; off the
			// dispatcher, which must not wait on a disk.
			ch := m.ch
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				ch.StartRecording(file) // a failure is logged and fired by call
			}()
		}
	}
	o.leg.SetVar("cc_agent_bridged", "true")
	if a.agents[ag.Name] == ag {
		ag.UUID, ag.UUIDNull = o.leg.UUID(), false
		ag.LastBridgeStart = now
		ag.CallsAnswered++
		ag.NoAnswerCount = 0
		for _, t := range a.tiers {
			if t.Agent == ag.Name && t.Queue == q.Name {
				t.State = config.TierActiveInbound
				a.saveTier(t)
			}
		}
		a.setState(ag, config.StateInAQueueCall)
	}
	q.CallsAnswered++
	a.saveCounters(q)
	o.bridgedAt = now
	wait := now - m.t0
	a.statAnswered(o, wait)
	ring := int64(0)
	if o.called > 0 {
		ring = o.answered - o.called
	}
	a.qlog(now, o.sessionUUID, q.Name, ag.Name, "CONNECT", itoa(wait), o.leg.UUID(), itoa(ring))
	o.state = offerBridged
	leg := o.leg
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		select {
		case <-leg.Done():
		case <-o.breakCh:
		case <-a.quit:
			return
		}
		a.post(func() { a.bridgeEnded(o) })
	}()
	return true
}

// bridgeEnded accounts the end of a bridged call: the agent hung up, the
// caller hung up (the bridge then hangs up the agent) or callcenter_break.
func (a *ACD) bridgeEnded(o *offer) {
	if o.state != offerBridged {
		return
	}
	o.state = offerDone
	now := a.now()
	m, q, ag := o.m, o.q, o.ag
	delete(a.legs, o.leg.UUID())
	if m.offers[ag.Name] == o {
		delete(m.offers, ag.Name)
	}
	cause := "SUCCESS"
	if o.standby {
		cause = "NONE"
	}
	a.fire(o.leg, "CC-Queue", q.Name, "CC-Action", "bridge-agent-end", "CC-Hangup-Cause", cause,
		"CC-Agent", ag.Name, "CC-Agent-System", a.system, "CC-Agent-UUID", o.leg.UUID(),
		"CC-Agent-Bridged", "true", "CC-Agent-Called-Time", itoa(o.called),
		"CC-Agent-Answered-Time", itoa(o.answered), "CC-Member-Joined-Time", itoa(m.JoinedEpoch),
		"CC-Bridge-Terminated-Time", itoa(now), "CC-Member-UUID", m.UUID,
		"CC-Member-Session-UUID", m.SessionUUID, "CC-Member-CID-Name", m.CIDName,
		"CC-Member-CID-Number", m.CIDNumber)
	if m.ch != nil {
		m.ch.SetVar("cc_queue_terminated_epoch", itoa(now))
	}
	live := a.agents[ag.Name] == ag && !o.orphan
	o.endedAt, o.talk = now, now-o.bridgedAt
	var wrap int64
	if live {
		wrap = ag.WrapUpTime
	}
	a.statHandled(o, o.talk, wrap)
	if o.broken || o.sideKnown {
		a.complete(o)
	}
	if live {
		ag.LastBridgeEnd = now
		ag.TalkTime += now - ag.LastBridgeStart
		if !o.standby {
			ag.UUID = ""
		}
		a.saveAgent(ag)
	}
	if a.members[m.UUID] == m {
		a.dropMember(m)
	}
	a.fire(m.ch, "CC-Queue", q.Name, "CC-Action", "member-queue-end", "CC-Hangup-Cause", cause,
		"CC-Cause", "Terminated", "CC-Agent", ag.Name, "CC-Agent-System", a.system,
		"CC-Agent-UUID", o.leg.UUID(), "CC-Agent-Called-Time", itoa(o.called),
		"CC-Agent-Answered-Time", itoa(o.answered), "CC-Member-Leaving-Time", itoa(now),
		"CC-Member-Joined-Time", itoa(m.JoinedEpoch), "CC-Member-UUID", m.UUID,
		"CC-Member-Session-UUID", m.SessionUUID, "CC-Member-CID-Name", m.CIDName,
		"CC-Member-CID-Number", m.CIDNumber)
	if live {
		a.releaseTiers(ag, q.Name, config.TierReady)
		if o.statusAtOffer == config.StatusAvailableOnDemand {
			a.setState(ag, config.StateIdle)
		} else {
			a.setState(ag, config.StateWaiting)
		}
		if ag.WrapUpTime > 0 {
			a.wakeAt(ag.LastBridgeEnd + ag.WrapUpTime + 1)
		}
	}
	if a.cl != nil && !o.orphan {
		a.releaseClaim(ag)
	}
	a.dirty = true
}

// bridgeSide learns from the caller's app which side ended the bridge; the
// COMPLETE line waits for it (or bridgeEnded waits for this).
func (a *ACD) bridgeSide(o *offer, agentFirst bool) {
	if o.sideKnown {
		return
	}
	o.sideKnown, o.agentFirst = true, agentFirst
	if o.state == offerDone {
		a.complete(o)
	}
}

// complete writes COMPLETECALLER or COMPLETEAGENT for a finished bridge,
// once. A callcenter_break counts as the agent's end.
func (a *ACD) complete(o *offer) {
	if o.completed || o.bridgedAt == 0 {
		return
	}
	o.completed = true
	ev := "COMPLETECALLER"
	if o.broken || o.agentFirst {
		ev = "COMPLETEAGENT"
	}
	a.qlog(o.endedAt, o.sessionUUID, o.q.Name, o.ag.Name, ev, itoa(o.bridgedAt-o.m.t0), itoa(o.talk), itoa(o.m.origPos))
}
