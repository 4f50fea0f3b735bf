package acd

import (
	"strings"

	"ccpbx/call"
	"ccpbx/config"
)

// Subclass is the CUSTOM event subclass of every ACD event.
const Subclass = "callcenter::info"

// fire publishes a callcenter::info event. When ch is not nil its channel
// headers come first, as FreeSWITCH adds a session's data before the CC-*
// headers (freeswitch-observed §7). kv are header name/value pairs in
// emission order; empty values are left out, as FreeSWITCH omits NULLs.
//
// The channel headers are only added when a subscriber that wants the
// event wants it full (an ESL client, which must get what FreeSWITCH
// sends); bare subscribers (metrics, wallboard) read only the CC-*
// headers, and with only those the dozens of channel headers are not
// built. With both, the one full event goes to all of them.
func (a *ACD) fire(ch *call.Channel, kv ...string) {
	want, full := a.core.Wanted("CUSTOM", Subclass)
	if !want {
		return
	}
	e := call.NewEvent("CUSTOM", Subclass, len(kv)/2)
	e.Time = a.clock.Now()
	if ch != nil && full {
		ch.AppendHeaders(e)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		e.Add(kv[i], kv[i+1])
	}
	a.core.Fire(e)
}

func (a *ACD) fireStatus(ag *Agent) {
	a.fire(nil, "CC-Agent", ag.Name, "CC-Action", "agent-status-change", "CC-Agent-Status", ag.Status.String())
}

func (a *ACD) fireState(ag *Agent) {
	a.fire(nil, "CC-Agent", ag.Name, "CC-Action", "agent-state-change", "CC-Agent-State", ag.State.String())
}

// setState changes an agent's state with its event and write-through.
func (a *ACD) setState(ag *Agent, state config.AgentState) {
	ag.State = state
	a.saveAgent(ag)
	a.fireState(ag)
}

// fireMembersCount reports the members of q that are Waiting or Trying.
func (a *ACD) fireMembersCount(queue string) {
	n := 0
	for _, m := range a.members {
		if m.Queue == queue && (m.State == config.MemberWaiting || m.State == config.MemberTrying) {
			n++
		}
	}
	sel := "Single-Queue"
	if len(queue) > 0 && queue[0] == '*' {
		sel = "All-Queues"
	}
	a.fire(nil, "CC-Queue", queue, "CC-Action", "members-count", "CC-Count", itoa(int64(n)), "CC-Selection", sel)
}

// firePresence reports the queue's BLF state as PRESENCE_IN (§13.3):
// "Active (N waiting)" counts members in Waiting only, as FreeSWITCH does.
func (a *ACD) firePresence(queue string) {
	if !a.core.Wants("PRESENCE_IN", "") {
		return
	}
	n := 0
	for _, m := range a.members {
		if m.Queue == queue && m.State == config.MemberWaiting {
			n++
		}
	}
	status, cs, ans := "Idle", "CS_HANGUP", "terminated"
	if n > 0 {
		status, cs, ans = "Active ("+itoa(int64(n))+" waiting)", "CS_ROUTING", "confirmed"
	}
	e := &call.Event{Name: "PRESENCE_IN", Time: a.clock.Now()}
	e.Add("proto", "callcenter")
	e.Add("login", queue)
	e.Add("from", queue)
	e.Add("force-status", status)
	e.Add("rpid", "unknown")
	e.Add("event_type", "presence")
	e.Add("alt_event_type", "dialog")
	e.Add("event_count", "0")
	e.Add("unique-id", queue)
	e.Add("channel-state", cs)
	e.Add("answer-state", ans)
	e.Add("presence-call-direction", "inbound")
	a.core.Fire(e)
}

// presenceProbe answers a PRESENCE_PROBE for "callcenter+<queue>@…".
func (a *ACD) presenceProbe(e *call.Event) {
	to := e.Get("to")
	if len(to) < len("callcenter+") || !strings.EqualFold(to[:len("callcenter+")], "callcenter+") || !strings.Contains(to, "@") {
		return
	}
	queue := to[len("callcenter+"):]
	if a.lookupQueue(queue) == nil {
		return
	}
	a.firePresence(queue)
}
