package acd

import (
	"ccpbx/config"
	"ccpbx/store"
)

// QueueInfo is a queue's configuration and counters as `queue list` shows
// them.
type QueueInfo struct {
	Name, Strategy                      string
	CallsAnswered, CallsAbandoned       int64
	Waiting, Trying, Answered, Abandons int // members by state
}

// Snapshot is a consistent copy of the ACD state for read models
// (wallboards, metrics); changing it changes nothing.
type Snapshot struct {
	Queues  []QueueInfo
	Agents  []store.AgentRow
	Tiers   []store.TierRow
	Members []store.MemberRow
}

// Snapshot copies the current state, in listing order.
func (a *ACD) Snapshot() Snapshot {
	var s Snapshot
	a.do(func() {
		for _, ag := range a.sortedAgents() {
			s.Agents = append(s.Agents, ag.row())
		}
		for _, t := range a.tiers {
			s.Tiers = append(s.Tiers, t.row())
		}
		counts := map[string]*QueueInfo{}
		for _, name := range a.queueOrder {
			q := a.queues[name]
			s.Queues = append(s.Queues, QueueInfo{Name: q.Name, Strategy: string(q.Strategy), CallsAnswered: q.CallsAnswered, CallsAbandoned: q.CallsAbandoned})
		}
		for i := range s.Queues {
			counts[s.Queues[i].Name] = &s.Queues[i]
		}
		for _, m := range a.sortedMembers(func(*Member) bool { return true }) {
			s.Members = append(s.Members, m.row())
			qi := counts[m.Queue]
			if qi == nil {
				continue
			}
			switch m.State {
			case config.MemberWaiting:
				qi.Waiting++
			case config.MemberTrying:
				qi.Trying++
			case config.MemberAnswered:
				qi.Answered++
			case config.MemberAbandoned:
				qi.Abandons++
			}
		}
	})
	return s
}
