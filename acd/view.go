package acd

import (
	"errors"
	"time"
)

// View is a copy of the ACD's state for read models that poll it (the
// metrics collector, the HTTP wallboard and REST API). It is built in the
// loop, so it is one consistent moment, and it shares nothing with the
// loop's own structures: readers may keep and sort it freely.
//
// Statuses and states carry FreeSWITCH's spellings ("Available", "In a
// queue call"), as listings do.
type View struct {
	Time    time.Time
	Queues  []QueueView
	Agents  []AgentView
	Tiers   []TierView
	Members []MemberView
	// Offers counts agent offers in flight or bridged, over all members;
	// AgentLegs the answered agent legs the ACD still follows. A finished
	// call leaves neither.
	Offers, AgentLegs int
}

// QueueView is one loaded queue.
type QueueView struct {
	Name     string
	Strategy string
	// CallsAnswered and CallsAbandoned are `queue list`'s in-memory counters
	// (reset when the queue is reloaded).
	CallsAnswered, CallsAbandoned int64
}

// AgentView is one agent; epochs are Unix seconds, 0 when never.
type AgentView struct {
	Name, Type, Contact, Status, State string
	LastStatusChange                   int64
	LastBridgeStart, LastBridgeEnd     int64
	LastOffered                        int64
	CallsAnswered, TalkTime            int64
	NoAnswerCount                      int64
}

// TierView links an agent to a queue.
type TierView struct {
	Queue, Agent, State string
	Level, Position     int64
}

// MemberView is a caller in (or recently in) a queue.
type MemberView struct {
	Queue, UUID, SessionUUID string
	CIDNumber, CIDName       string
	State                    string // Waiting, Trying, Answered, Abandoned
	JoinedEpoch              int64
	BridgeEpoch              int64
	AbandonedEpoch           int64
	ServingAgent             string
}

// ErrNotRunning is returned by View before Start and after Close.
var ErrNotRunning = errors.New("callcenter is not running")

// View returns a copy of the current queues, agents, tiers and members, in
// listing order (queues as configured, agents and tiers in insertion
// order, members by join order). It costs one loop message and a copy of
// the ACD's rows: no store access, no channel walk.
func (a *ACD) View() (View, error) {
	var v View
	if !a.started || !a.do(func() { v = a.view() }) {
		return View{}, ErrNotRunning
	}
	return v, nil
}

func (a *ACD) view() View {
	v := View{
		Time:    a.clock.Now(),
		Queues:  make([]QueueView, 0, len(a.queueOrder)),
		Agents:  make([]AgentView, 0, len(a.agents)),
		Tiers:   make([]TierView, 0, len(a.tiers)),
		Members: make([]MemberView, 0, len(a.members)),
	}
	for _, name := range a.queueOrder {
		q := a.queues[name]
		v.Queues = append(v.Queues, QueueView{Name: q.Name, Strategy: string(q.Strategy),
			CallsAnswered: q.CallsAnswered, CallsAbandoned: q.CallsAbandoned})
	}
	for _, ag := range a.sortedAgents() {
		v.Agents = append(v.Agents, AgentView{
			Name: ag.Name, Type: ag.Type, Contact: ag.Contact,
			Status: string(ag.Status), State: string(ag.State),
			LastStatusChange: ag.LastStatusChange,
			LastBridgeStart:  ag.LastBridgeStart, LastBridgeEnd: ag.LastBridgeEnd,
			LastOffered:   ag.LastOffered,
			CallsAnswered: ag.CallsAnswered, TalkTime: ag.TalkTime,
			NoAnswerCount: ag.NoAnswerCount,
		})
	}
	for _, t := range a.tiers {
		v.Tiers = append(v.Tiers, TierView{Queue: t.Queue, Agent: t.Agent, State: string(t.State),
			Level: t.Level, Position: t.Position})
	}
	for _, m := range a.sortedMembers(func(*Member) bool { return true }) {
		v.Members = append(v.Members, MemberView{
			Queue: m.Queue, UUID: m.UUID, SessionUUID: m.SessionUUID,
			CIDNumber: m.CIDNumber, CIDName: m.CIDName, State: string(m.State),
			JoinedEpoch: m.JoinedEpoch, BridgeEpoch: m.BridgeEpoch, AbandonedEpoch: m.AbandonedEpoch,
			ServingAgent: m.ServingAgent,
		})
	}
	for _, m := range a.members {
		v.Offers += len(m.offers)
	}
	v.AgentLegs = len(a.legs)
	return v
}
