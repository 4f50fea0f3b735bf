package acd

import (
	"strings"

	"ccpbx/config"
)

// QueueLog receives Asterisk queue_log lines (no trailing newline) in the
// order the loop writes them. Append is called from the loop and must not
// block; package queuelog writes them to <data_dir>/queue_log.
type QueueLog interface {
	Append(line string)
}

// The queue_log format is Asterisk app_queue's, which QueueMetrics-style
// reporting tools read:
//
//	epoch|callid|queue|agent|event|data1|data2|...
//
// callid is the caller's channel UUID (the uuid of its CDR), "NONE" for
// agent events; queue is the queue name, "NONE" for agent-wide events;
// agent is the agent's name, "NONE" when no agent is involved. The events
// and their data, as Asterisk defines them:
//
//	QUEUESTART                        the ACD started
//	ENTERQUEUE      url|callerid|position
//	CONNECT         holdtime|agent leg uuid|ringtime
//	COMPLETECALLER  holdtime|calltime|origposition   the caller hung up
//	COMPLETEAGENT   holdtime|calltime|origposition   the agent hung up
//	ABANDON         position|origposition|waittime   the caller hung up waiting
//	EXITWITHTIMEOUT position|origposition|waittime   max-wait-time (or no agent)
//	EXITWITHKEY     key|position|origposition|waittime
//	RINGNOANSWER    ringtime in milliseconds         an offer the agent did not take
//	AGENTLOGIN      channel (the contact)
//	AGENTLOGOFF     channel|logintime
//	PAUSE, UNPAUSE  reason                           On Break and back
//
// Times are whole seconds; positions count from 1 among the callers
// waiting in that queue.

var qlogCleaner = strings.NewReplacer("|", " ", "\n", " ", "\r", " ")

func (a *ACD) qlog(t int64, callid, queue, agent, event string, data ...string) {
	if a.qlogger == nil {
		return
	}
	var b strings.Builder
	b.WriteString(itoa(t))
	for _, f := range []string{callid, queue, agent, event} {
		if f == "" {
			f = "NONE"
		}
		b.WriteByte('|')
		b.WriteString(qlogCleaner.Replace(f))
	}
	for _, d := range data {
		b.WriteByte('|')
		b.WriteString(qlogCleaner.Replace(d))
	}
	a.qlogger.Append(b.String())
}

// position is m's place among the callers waiting in its queue (1 =
// next), by dispatch order.
func (a *ACD) position(m *Member, now int64) int64 {
	p := int64(1)
	ms := m.score(now)
	for _, o := range a.members {
		if o == m || o.Queue != m.Queue || o.app == nil || (o.State != config.MemberWaiting && o.State != config.MemberTrying) {
			continue
		}
		if s := o.score(now); s > ms || (s == ms && o.seq < m.seq) {
			p++
		}
	}
	return p
}

// logStatus writes the agent events of a status change: logging in or
// out, and going on break (PAUSE) or back (UNPAUSE).
func (a *ACD) logStatus(ag *Agent, from, to config.AgentStatus) {
	canon := func(s config.AgentStatus) config.AgentStatus {
		if c, ok := config.ParseAgentStatus(string(s)); ok {
			return c
		}
		return s
	}
	from, to = canon(from), canon(to)
	if from == to {
		return
	}
	now := a.now()
	in := func(s config.AgentStatus) bool { return s != config.StatusLoggedOut && s != "" }
	paused := func(s config.AgentStatus) bool { return s == config.StatusOnBreak }
	switch {
	case !in(from) && in(to):
		ag.loginAt = now
		a.qlog(now, "", "", ag.Name, "AGENTLOGIN", ag.Contact)
		if paused(to) {
			a.qlog(now, "", "", ag.Name, "PAUSE", "")
		}
	case in(from) && !in(to):
		logged := ""
		if ag.loginAt > 0 {
			logged = itoa(now - ag.loginAt)
		}
		ag.loginAt = 0
		a.qlog(now, "", "", ag.Name, "AGENTLOGOFF", ag.Contact, logged)
	case !paused(from) && paused(to):
		a.qlog(now, "", "", ag.Name, "PAUSE", "")
	case paused(from) && !paused(to):
		a.qlog(now, "", "", ag.Name, "UNPAUSE", "")
	}
}
