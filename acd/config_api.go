package acd

import (
	"context"
	"sort"
	"strings"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/store"
)

// Exact replies of mod_callcenter's callcenter_config (§12).
const (
	okReply              = "+OK\n"
	errInvalid           = "-ERR Invalid!\n"
	errAgentExists       = "-ERR Agent already exist!\n"
	errAgentTypeInvalid  = "-ERR Agent type invalid!\n"
	errAgentNotFound     = "-ERR Agent not found!\n"
	errInvalidStatus     = "-ERR Invalid Agent Status!\n"
	errInvalidState      = "-ERR Invalid Agent State!\n"
	errInvalidType       = "-ERR Invalid Agent Type!\n"
	errInvalidAgentKey   = "-ERR Invalid Agent Update KEY!\n"
	errQueueNotFound     = "-ERR Queue not found!\n"
	errTierExists        = "-ERR Tier already exist!\n"
	errTierNotFound      = "-ERR Tier not found!\n"
	errInvalidTierState  = "-ERR Invalid Tier State!\n"
	errInvalidTierKey    = "-ERR Invalid Tier Update KEY!\n"
	errUnknown           = "-ERR Unknown Error!\n"
	errInvalidQueueLoad  = "-ERR Invalid Queue not found!\n"
	errBreakUsage        = "-ERR Usage: callcenter_break agent <uuid>\n"
	configAPIUsageHeader = "-USAGE: \n"
)

// configAPISyntax is printed (after -USAGE) for an empty command.
const configAPISyntax = "callcenter_config <target> <args>,\n" +
	"\tcallcenter_config agent add [name] [type] | \n" +
	"\tcallcenter_config agent del [name] | \n" +
	"\tcallcenter_config agent reload [name] | \n" +
	"\tcallcenter_config agent set status [agent_name] [status] | \n" +
	"\tcallcenter_config agent set state [agent_name] [state] | \n" +
	"\tcallcenter_config agent set contact [agent_name] [contact] | \n" +
	"\tcallcenter_config agent set ready_time [agent_name] [wait till epoch] | \n" +
	"\tcallcenter_config agent set reject_delay_time [agent_name] [wait second] | \n" +
	"\tcallcenter_config agent set busy_delay_time [agent_name] [wait second] | \n" +
	"\tcallcenter_config agent set no_answer_delay_time [agent_name] [wait second] | \n" +
	"\tcallcenter_config agent get status [agent_name] | \n" +
	"\tcallcenter_config agent get state [agent_name] | \n" +
	"\tcallcenter_config agent get uuid [agent_name] | \n" +
	"\tcallcenter_config agent list [[agent_name]] | \n" +
	"\tcallcenter_config tier add [queue_name] [agent_name] [[level]] [[position]] | \n" +
	"\tcallcenter_config tier set state [queue_name] [agent_name] [state] | \n" +
	"\tcallcenter_config tier set level [queue_name] [agent_name] [level] | \n" +
	"\tcallcenter_config tier set position [queue_name] [agent_name] [position] | \n" +
	"\tcallcenter_config tier del [queue_name] [agent_name] | \n" +
	"\tcallcenter_config tier reload [queue_name] [[agent_name]] | \n" +
	"\tcallcenter_config tier list | \n" +
	"\tcallcenter_config queue load [queue_name] | \n" +
	"\tcallcenter_config queue unload [queue_name] | \n" +
	"\tcallcenter_config queue reload [queue_name] | \n" +
	"\tcallcenter_config queue list | \n" +
	"\tcallcenter_config queue list agents [queue_name] [status] [state] | \n" +
	"\tcallcenter_config queue list members [queue_name] | \n" +
	"\tcallcenter_config queue list tiers [queue_name] | \n" +
	"\tcallcenter_config queue count | \n" +
	"\tcallcenter_config queue count agents [queue_name] [status] [state] | \n" +
	"\tcallcenter_config queue count members [queue_name] | \n" +
	"\tcallcenter_config queue count tiers [queue_name]"

// tokenize splits an API line the way FreeSWITCH's separate_string does for
// callcenter_config: on spaces, into at most max tokens (the last keeps the
// rest of the line), single quotes grouping words and backslash escaping
// the next character. A leading "^^c" makes c the delimiter.
func tokenize(s string, max int) []string {
	delim := byte(' ')
	if len(s) >= 3 && s[0] == '^' && s[1] == '^' {
		delim = s[2]
		s = s[3:]
	}
	var out []string
	i := 0
	for i < len(s) && len(out) < max {
		for i < len(s) && s[i] == delim {
			i++
		}
		if i >= len(s) {
			break
		}
		last := len(out) == max-1
		var b strings.Builder
		inq := false
		for i < len(s) {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				b.WriteByte(s[i+1])
				i += 2
				continue
			}
			if c == '\'' {
				inq = !inq
				i++
				continue
			}
			if c == delim && !inq && !last {
				break
			}
			b.WriteByte(c)
			i++
		}
		tok := b.String()
		if last {
			tok = strings.TrimRight(tok, string(delim))
		}
		out = append(out, tok)
	}
	return out
}

// atoi parses like C's atoi: optional spaces and sign, leading digits,
// anything else ignored, 0 when there are no digits.
func atoi(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\r")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	var n int64
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > (1<<62)/10 {
			break
		}
		n = n*10 + int64(s[i]-'0')
	}
	if neg {
		return -n
	}
	return n
}

func (a *ACD) apiConfig(_ context.Context, args string, _ *call.Channel) string {
	var out string
	if !a.do(func() { out = a.configCommand(args) }) {
		return "-ERR callcenter is not running\n"
	}
	return out
}

// Config runs one callcenter_config command line and returns its reply.
func (a *ACD) Config(args string) string { return a.apiConfig(context.Background(), args, nil) }

func listing(cols []string, rows [][]string) string {
	if len(rows) == 0 {
		return okReply
	}
	var b strings.Builder
	b.WriteString(strings.Join(cols, "|"))
	b.WriteByte('\n')
	for _, r := range rows {
		b.WriteString(strings.Join(r, "|"))
		b.WriteByte('\n')
	}
	b.WriteString(okReply)
	return b.String()
}

// configCommand runs in the loop.
func (a *ACD) configCommand(args string) string {
	if strings.TrimSpace(args) == "" {
		return configAPIUsageHeader + configAPISyntax + "\n"
	}
	argv := tokenize(args, 8)
	if len(argv) < 2 {
		return errInvalid
	}
	arg := func(i int) string {
		if i < len(argv) {
			return argv[i]
		}
		return ""
	}
	n := len(argv) - 2
	section, action := strings.ToLower(argv[0]), strings.ToLower(argv[1])
	switch section {
	case "agent":
		switch action {
		case "add":
			if n < 2 {
				return errInvalid
			}
			return a.agentAdd(argv[2], argv[3])
		case "del":
			if n < 1 {
				return errInvalid
			}
			a.agentDel(argv[2])
			return okReply
		case "reload":
			if n < 1 {
				return errInvalid
			}
			a.applyConfigAgents(argv[2])
			a.dirty = true
			return okReply
		case "set":
			if n < 3 {
				return errInvalid
			}
			return a.agentSet(argv[2], argv[3], argv[4])
		case "get":
			if n < 2 {
				return errInvalid
			}
			return a.agentGet(argv[2], argv[3])
		case "list":
			switch n {
			case 0:
				return listing(agentColumns, a.agentRows(func(*Agent) bool { return true }))
			case 1:
				return listing(agentColumns, a.agentRows(func(ag *Agent) bool { return ag.Name == argv[2] }))
			}
			return errInvalid
		}
	case "tier":
		switch action {
		case "add":
			if n < 2 {
				return errInvalid
			}
			level, pos := int64(1), int64(1)
			if n >= 3 {
				level = atoi(argv[4])
			}
			if n >= 4 {
				pos = atoi(argv[5])
			}
			return a.tierAdd(argv[2], argv[3], level, pos)
		case "set":
			if n < 4 {
				return errInvalid
			}
			return a.tierSet(argv[2], argv[3], argv[4], argv[5])
		case "del":
			if n < 2 {
				return errInvalid
			}
			a.tierDel(argv[2], argv[3])
			return okReply
		case "reload":
			if n < 1 {
				return errInvalid
			}
			if a.applyConfigTiers(argv[2], arg(3)) == 0 {
				return errUnknown
			}
			a.dirty = true
			return okReply
		case "list":
			return listing(tierColumns, a.tierRows(func(*Tier) bool { return true }, true))
		}
	case "queue":
		switch action {
		case "load":
			if n < 1 {
				return errInvalid
			}
			return a.queueLoad(argv[2])
		case "unload":
			if n < 1 {
				return errInvalid
			}
			a.removeQueue(argv[2])
			return okReply
		case "reload":
			if n < 1 {
				return errInvalid
			}
			a.removeQueue(argv[2])
			return a.queueLoad(argv[2])
		case "list":
			if n == 0 {
				var b strings.Builder
				b.WriteString(strings.Join(queueColumns, "|"))
				b.WriteByte('\n')
				for _, name := range a.queueOrder {
					b.WriteString(strings.Join(a.queues[name].fields(), "|"))
					b.WriteByte('\n')
				}
				b.WriteString(okReply)
				return b.String()
			}
			switch strings.ToLower(argv[2]) {
			case "agents":
				return listing(agentColumns, a.agentRows(a.queueAgentFilter(arg(3), arg(4), arg(5))))
			case "members":
				return listing(memberColumns, a.memberRows(arg(3)))
			case "tiers":
				q := arg(3)
				return listing(tierColumns, a.tierRows(func(t *Tier) bool { return t.Queue == q }, false))
			}
			return errInvalid
		case "count":
			if n == 0 {
				return itoa(int64(len(a.queues))) + "\n"
			}
			q := arg(3)
			switch strings.ToLower(argv[2]) {
			case "agents":
				return itoa(int64(len(a.agentRows(a.queueAgentFilter(q, arg(4), arg(5)))))) + "\n"
			case "members":
				c := 0
				for _, m := range a.members {
					if m.Queue == q {
						c++
					}
				}
				return itoa(int64(c)) + "\n"
			case "tiers":
				return itoa(int64(len(a.tierRows(func(t *Tier) bool { return t.Queue == q }, false)))) + "\n"
			}
			return errInvalid
		}
	}
	// FreeSWITCH answers an unknown section or action with nothing.
	return ""
}

func (a *ACD) queueLoad(name string) string {
	qc, ok := a.queueConfig(name)
	if !ok {
		return errInvalidQueueLoad
	}
	a.addQueue(newQueue(qc, a.log))
	a.applyConfigAgents("")
	a.applyConfigTiers("", "")
	a.dirty = true
	return okReply
}

// queueAgentFilter selects agents tiered to queue q, optionally with an
// exact status and state (FreeSWITCH compares them in SQL).
func (a *ACD) queueAgentFilter(q, status, state string) func(*Agent) bool {
	return func(ag *Agent) bool {
		if a.findTier(q, ag.Name) == nil {
			return false
		}
		if status != "" && string(ag.Status) != status {
			return false
		}
		if state != "" && string(ag.State) != state {
			return false
		}
		return true
	}
}

func (a *ACD) sortedAgents() []*Agent {
	out := make([]*Agent, 0, len(a.agents))
	for _, ag := range a.agents {
		out = append(out, ag)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (a *ACD) agentRows(keep func(*Agent) bool) [][]string {
	var rows [][]string
	for _, ag := range a.sortedAgents() {
		if keep(ag) {
			rows = append(rows, ag.fields())
		}
	}
	return rows
}

// tierRows lists tiers in insertion order, or by level then position
// (ties in insertion order) for `tier list`.
func (a *ACD) tierRows(keep func(*Tier) bool, byLevel bool) [][]string {
	ts := make([]*Tier, 0, len(a.tiers))
	for _, t := range a.tiers {
		if keep(t) {
			ts = append(ts, t)
		}
	}
	if byLevel {
		sort.SliceStable(ts, func(i, j int) bool {
			if ts[i].Level != ts[j].Level {
				return ts[i].Level < ts[j].Level
			}
			return ts[i].Position < ts[j].Position
		})
	}
	rows := make([][]string, 0, len(ts))
	for _, t := range ts {
		rows = append(rows, t.fields())
	}
	return rows
}

// memberRows lists the members of q (or all, ordered by queue) by score,
// highest first; equal scores keep insertion order.
func (a *ACD) memberRows(q string) [][]string {
	now := a.now()
	ms := a.sortedMembers(func(m *Member) bool { return q == "" || m.Queue == q })
	sort.SliceStable(ms, func(i, j int) bool {
		if q == "" && ms[i].Queue != ms[j].Queue {
			return ms[i].Queue < ms[j].Queue
		}
		return ms[i].score(now) > ms[j].score(now)
	})
	rows := make([][]string, 0, len(ms))
	for _, m := range ms {
		rows = append(rows, m.fields(now))
	}
	return rows
}

func (a *ACD) sortedMembers(keep func(*Member) bool) []*Member {
	out := make([]*Member, 0, len(a.members))
	for _, m := range a.members {
		if keep(m) {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// --- agents

func (a *ACD) agentAdd(name, typ string) string {
	if _, ok := a.agents[name]; ok {
		return errAgentExists
	}
	if _, ok := config.ParseAgentType(typ); !ok {
		return errAgentTypeInvalid
	}
	a.agentSeq++
	ag := &Agent{AgentRow: store.AgentRow{Name: name, InstanceID: singleBox, Type: typ, UUIDNull: true, ContactNull: true},
		Status: config.StatusLoggedOut, State: config.StateWaiting, seq: a.agentSeq}
	a.agents[name] = ag
	a.saveAgent(ag)
	a.fire(nil, "CC-Agent", name, "CC-Agent-Type", typ, "CC-Action", "agent-add")
	return okReply
}

func (a *ACD) agentDel(name string) {
	ag := a.agents[name]
	delete(a.agents, name)
	kept := a.tiers[:0]
	for _, t := range a.tiers {
		if t.Agent != name {
			kept = append(kept, t)
		}
	}
	for i := len(kept); i < len(a.tiers); i++ {
		a.tiers[i] = nil
	}
	a.tiers = kept
	if ag != nil {
		a.cancelAgentOffers(ag)
	}
	a.persist.add(func(ctx context.Context, s *storeT) error { return s.DeleteAgent(ctx, name) })
}

// agentSet implements `agent set <key> <name> <value>` (§12.2, §7.3).
func (a *ACD) agentSet(key, name, value string) string {
	ag, ok := a.agents[name]
	if !ok {
		return errAgentNotFound
	}
	now := a.now()
	switch strings.ToLower(key) {
	case "status":
		s, ok := config.ParseAgentStatus(value)
		if !ok {
			return errInvalidStatus
		}
		if s == config.StatusAvailable {
			if ag.Status != config.StatusAvailable {
				ag.Status = s
				ag.LastStatusChange = now
				ag.TalkTime, ag.CallsAnswered, ag.NoAnswerCount = 0, 0, 0
			}
		} else {
			ag.Status = s
			ag.LastStatusChange = now
			// Leaving Available cancels the agent's ringing offer (§7.3).
			// FreeSWITCH also cancels it for On Demand, which still takes
			// calls, so the same agent is re-offered at once and its phone
			// sees INVITE/CANCEL in a loop (PR #800); ccpbx lets it ring.
			if s != config.StatusAvailableOnDemand {
				a.cancelAgentOffers(ag)
			}
		}
		a.saveAgent(ag)
		a.fireStatus(ag)
		a.dirty = true
	case "state":
		s, ok := config.ParseAgentState(value)
		if !ok {
			return errInvalidState
		}
		ag.State = s
		if s == config.StateReceiving {
			ag.LastOffered = now
		}
		a.saveAgent(ag)
		a.fireState(ag)
		a.dirty = true
	case "state_if_waiting":
		s, ok := config.ParseAgentState(value)
		if !ok {
			return errInvalidState
		}
		if ag.State != config.StateWaiting || (ag.Status != config.StatusAvailable && ag.Status != config.StatusAvailableOnDemand) {
			return errAgentNotFound
		}
		ag.State = s
		if s == config.StateReceiving {
			ag.LastOffered = now
		}
		a.saveAgent(ag)
		a.fireState(ag)
		a.dirty = true
	case "uuid":
		ag.UUID, ag.UUIDNull = value, false
		a.saveAgent(ag)
	case "contact":
		ag.Contact, ag.ContactNull = value, false
		a.saveAgent(ag)
		a.fire(nil, "CC-Agent", ag.Name, "CC-Action", "agent-contact-change", "CC-Agent-Contact", value)
	case "type":
		if _, ok := config.ParseAgentType(value); !ok {
			return errInvalidType
		}
		ag.Type = value
		a.saveAgent(ag)
	case "max_no_answer":
		ag.MaxNoAnswer = atoi(value)
		a.saveAgent(ag)
	case "wrap_up_time":
		ag.WrapUpTime = atoi(value)
		a.saveAgent(ag)
		a.dirty = true
	case "ready_time":
		ag.ReadyTime = atoi(value)
		a.saveAgent(ag)
		a.dirty = true
		if ag.ReadyTime > now {
			a.wakeAt(ag.ReadyTime)
		}
	case "reject_delay_time":
		ag.RejectDelayTime = atoi(value)
		a.saveAgent(ag)
	case "busy_delay_time":
		ag.BusyDelayTime = atoi(value)
		a.saveAgent(ag)
	case "no_answer_delay_time":
		ag.NoAnswerDelayTime = atoi(value)
		a.saveAgent(ag)
	default:
		return errInvalidAgentKey
	}
	return okReply
}

// agentGet implements `agent get <key> <name>`: the bare value, no newline.
func (a *ACD) agentGet(key, name string) string {
	ag, ok := a.agents[name]
	if !ok {
		return errAgentNotFound
	}
	var v, hdr string
	switch strings.ToLower(key) {
	case "status":
		v = ag.Status.String()
	case "state":
		v = ag.State.String()
	case "uuid":
		v = ag.UUID
	default:
		return errInvalidAgentKey
	}
	// The key is echoed as typed, with its first letter raised, as
	// FreeSWITCH builds the action and header names from it.
	if strings.EqualFold(key, "uuid") && key == strings.ToLower(key) {
		hdr = "CC-Agent-UUID"
	} else {
		hdr = "CC-Agent-" + strings.ToUpper(key[:1]) + key[1:]
	}
	a.fire(nil, "CC-Agent", name, "CC-Action", "agent-"+key+"-get", hdr, v)
	if len(v) > 63 {
		v = v[:63]
	}
	return v
}

// --- tiers

func (a *ACD) findTier(queue, agent string) *Tier {
	for _, t := range a.tiers {
		if t.Queue == queue && t.Agent == agent {
			return t
		}
	}
	return nil
}

func (a *ACD) addTier(queue, agent string, level, pos int64) *Tier {
	a.tierSeq++
	t := &Tier{TierRow: store.TierRow{Queue: queue, Agent: agent, Level: level, Position: pos}, State: config.TierReady, seq: a.tierSeq}
	a.tiers = append(a.tiers, t)
	a.saveTier(t)
	a.dirty = true
	return t
}

func (a *ACD) tierAdd(queue, agent string, level, pos int64) string {
	if a.lookupQueue(queue) == nil {
		return errQueueNotFound
	}
	if _, ok := a.agents[agent]; !ok {
		return errAgentNotFound
	}
	if a.findTier(queue, agent) != nil {
		return errTierExists
	}
	a.addTier(queue, agent, level, pos)
	return okReply
}

// tierSet implements `tier set <key> <queue> <agent> <value>`. FreeSWITCH
// answers a missing tier with "Unknown Error" and a missing queue with
// "Agent not found" (§16.2-9); ccpbx names what is missing instead.
func (a *ACD) tierSet(key, queue, agent, value string) string {
	if _, ok := a.agents[agent]; !ok {
		return errAgentNotFound
	}
	if a.lookupQueue(queue) == nil {
		return errQueueNotFound
	}
	t := a.findTier(queue, agent)
	if t == nil {
		return errTierNotFound
	}
	switch strings.ToLower(key) {
	case "state":
		s, ok := config.ParseTierState(value)
		if !ok {
			return errInvalidTierState
		}
		t.State = s
	case "level":
		t.Level = atoi(value)
	case "position":
		t.Position = atoi(value)
	default:
		return errInvalidTierKey
	}
	a.saveTier(t)
	a.dirty = true
	return okReply
}

func (a *ACD) tierDel(queue, agent string) {
	for i, t := range a.tiers {
		if t.Queue == queue && t.Agent == agent {
			a.tiers = append(a.tiers[:i], a.tiers[i+1:]...)
			break
		}
	}
	a.persist.add(func(ctx context.Context, s *storeT) error { return s.DeleteTier(ctx, queue, agent) })
}
