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
	errInvalidAgentName  = "-ERR Invalid Agent Name!\n"
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

// maxConfigArgs bounds a callcenter_config command line; the longest
// real one, an agent contact dial string, is a few hundred bytes.
const maxConfigArgs = 4096

func (a *ACD) apiConfig(_ context.Context, args string, _ *call.Channel) string {
	var out string
	if !a.do(func() { out = a.configCommand(args) }) {
		return "-ERR callcenter is not running\n"
	}
	return out
}

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

// configCmd is one callcenter_config command: the words that name it
// (matched case-insensitively), how many arguments must follow them and
// how many may, and what it does. FreeSWITCH answers too few arguments
// with "-ERR Invalid!"; extra ones are ignored unless max says otherwise.
type configCmd struct {
	path     string
	min, max int // max < 0: no limit
	run      func(a *ACD, args []string) string
}

// configCmds is callcenter_config (§12). Where a path is a prefix of
// another ("queue list", "queue list agents"), the longer one wins.
var configCmds = []configCmd{
	{"agent add", 2, -1, func(a *ACD, x []string) string { return a.agentAdd(x[0], x[1]) }},
	{"agent del", 1, -1, func(a *ACD, x []string) string { a.agentDel(x[0]); return okReply }},
	{"agent reload", 1, -1, func(a *ACD, x []string) string {
		a.applyConfigAgents(x[0])
		a.dirty = true
		return okReply
	}},
	{"agent set", 3, -1, func(a *ACD, x []string) string { return a.agentSet(x[0], x[1], x[2]) }},
	{"agent get", 2, -1, func(a *ACD, x []string) string { return a.agentGet(x[0], x[1]) }},
	{"agent list", 0, 1, func(a *ACD, x []string) string {
		return listing(agentColumns, a.agentRows(func(ag *Agent) bool { return len(x) == 0 || ag.Name == x[0] }))
	}},

	{"tier add", 2, -1, func(a *ACD, x []string) string {
		level, pos := int64(config.DefaultTierLevel), int64(config.DefaultTierPosition)
		if len(x) > 2 {
			level = int64(call.Atoi(x[2]))
		}
		if len(x) > 3 {
			pos = int64(call.Atoi(x[3]))
		}
		return a.tierAdd(x[0], x[1], level, pos)
	}},
	{"tier set", 4, -1, func(a *ACD, x []string) string { return a.tierSet(x[0], x[1], x[2], x[3]) }},
	{"tier del", 2, -1, func(a *ACD, x []string) string { a.tierDel(x[0], x[1]); return okReply }},
	{"tier reload", 1, -1, func(a *ACD, x []string) string {
		if a.applyConfigTiers(x[0], opt(x, 1)) == 0 {
			return errUnknown
		}
		a.dirty = true
		return okReply
	}},
	{"tier list", 0, -1, func(a *ACD, _ []string) string {
		return listing(tierColumns, a.tierRows(func(*Tier) bool { return true }, true))
	}},

	{"queue load", 1, -1, func(a *ACD, x []string) string { return a.queueLoad(x[0]) }},
	{"queue unload", 1, -1, func(a *ACD, x []string) string { a.removeQueue(x[0]); return okReply }},
	{"queue reload", 1, -1, func(a *ACD, x []string) string { a.removeQueue(x[0]); return a.queueLoad(x[0]) }},
	// Unlike every other listing, `queue list` prints its header even
	// when there are no queues.
	{"queue list", 0, 0, func(a *ACD, _ []string) string {
		var b strings.Builder
		b.WriteString(strings.Join(queueColumns, "|"))
		b.WriteByte('\n')
		for _, name := range a.queueOrder {
			b.WriteString(strings.Join(a.queues[name].fields(), "|"))
			b.WriteByte('\n')
		}
		b.WriteString(okReply)
		return b.String()
	}},
	{"queue list agents", 0, -1, func(a *ACD, x []string) string {
		return listing(agentColumns, a.agentRows(a.queueAgentFilter(opt(x, 0), opt(x, 1), opt(x, 2))))
	}},
	{"queue list members", 0, -1, func(a *ACD, x []string) string {
		return listing(memberColumns, a.memberRows(opt(x, 0)))
	}},
	{"queue list tiers", 0, -1, func(a *ACD, x []string) string {
		return listing(tierColumns, a.queueTierRows(opt(x, 0)))
	}},
	// Not in FreeSWITCH: the statistics of issue 12 (stats.go).
	{"queue stats", 1, 3, func(a *ACD, x []string) string { return a.queueStats(x) }},
	{"queue count", 0, 0, func(a *ACD, _ []string) string { return count(len(a.queues)) }},
	{"queue count agents", 0, -1, func(a *ACD, x []string) string {
		return count(len(a.agentRows(a.queueAgentFilter(opt(x, 0), opt(x, 1), opt(x, 2)))))
	}},
	{"queue count members", 0, -1, func(a *ACD, x []string) string {
		n := 0
		for _, m := range a.members {
			if m.Queue == opt(x, 0) {
				n++
			}
		}
		return count(n)
	}},
	{"queue count tiers", 0, -1, func(a *ACD, x []string) string { return count(len(a.queueTierRows(opt(x, 0)))) }},
}

// opt returns the i-th optional argument, or "".
func opt(x []string, i int) string {
	if i < len(x) {
		return x[i]
	}
	return ""
}

func count(n int) string { return itoa(int64(n)) + "\n" }

// findConfigCmd returns the command argv names, longest path first, and
// the arguments after its path.
func findConfigCmd(argv []string) (*configCmd, []string) {
	var best *configCmd
	var bestLen int
	for i := range configCmds {
		c := &configCmds[i]
		words := strings.Fields(c.path)
		if len(words) <= bestLen || len(words) > len(argv) {
			continue
		}
		match := true
		for j, w := range words {
			if !strings.EqualFold(argv[j], w) {
				match = false
				break
			}
		}
		if match {
			best, bestLen = c, len(words)
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, argv[bestLen:]
}

// configCommand runs in the loop.
func (a *ACD) configCommand(args string) string {
	if strings.TrimSpace(args) == "" {
		return configAPIUsageHeader + configAPISyntax + "\n"
	}
	if len(args) > maxConfigArgs {
		return errInvalid
	}
	argv := call.Separate(args, ' ', 8)
	if len(argv) < 2 {
		return errInvalid
	}
	c, x := findConfigCmd(argv)
	if c == nil {
		// FreeSWITCH answers an unknown section or action with nothing.
		return ""
	}
	if len(x) < c.min || (c.max >= 0 && len(x) > c.max) {
		return errInvalid
	}
	return c.run(a, x)
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

// queueTierRows lists q's tiers in insertion order.
func (a *ACD) queueTierRows(q string) [][]string {
	return a.tierRows(func(t *Tier) bool { return t.Queue == q }, false)
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
	// mod_callcenter takes any name; one with a listing separator, a line
	// break or 5,000 bytes made `agent list` unparsable (issue 11).
	if config.ListingNameProblem(name) != "" {
		return errInvalidAgentName
	}
	if _, ok := a.agents[name]; ok {
		return errAgentExists
	}
	if _, ok := config.ParseAgentType(typ); !ok {
		return errAgentTypeInvalid
	}
	a.agentSeq++
	ag := &Agent{AgentRow: store.AgentRow{Name: name, InstanceID: a.system, Type: typ, UUIDNull: true, ContactNull: true},
		Status: config.StatusLoggedOut, State: config.StateWaiting, seq: a.agentSeq}
	a.agents[name] = ag
	a.rowsChanged()
	a.saveAgent(ag)
	a.fire(nil, "CC-Agent", name, "CC-Agent-Type", typ, "CC-Action", "agent-add")
	return okReply
}

func (a *ACD) agentDel(name string) {
	ag := a.agents[name]
	delete(a.agents, name)
	a.rowsChanged()
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
	a.queueWrite(store.CallcenterWrite{Kind: store.DeleteAgentWrite, Agent: store.AgentRow{Name: name}})
}

// agentKey is one key of `agent set`: set changes the agent and returns ""
// or an -ERR reply; the row is then saved, and a dispatch pass follows
// when the change can make the agent offerable.
type agentKey struct {
	set      func(a *ACD, ag *Agent, value string) string
	dispatch bool
}

// agentKeys are the keys of `agent set` (§12.2, §7.3). Built by init
// because the status key reaches offer code that calls agentSet.
var agentKeys map[string]agentKey

func init() {
	intKey := func(field func(*Agent) *int64) func(*ACD, *Agent, string) string {
		return func(_ *ACD, ag *Agent, v string) string { *field(ag) = int64(call.Atoi(v)); return "" }
	}
	agentKeys = map[string]agentKey{
		"status":           {(*ACD).setAgentStatus, true},
		"state":            {func(a *ACD, ag *Agent, v string) string { return a.setAgentState(ag, v, false) }, true},
		"state_if_waiting": {func(a *ACD, ag *Agent, v string) string { return a.setAgentState(ag, v, true) }, true},
		"uuid":             {func(_ *ACD, ag *Agent, v string) string { ag.UUID, ag.UUIDNull = v, false; return "" }, false},
		"contact": {func(a *ACD, ag *Agent, v string) string {
			ag.Contact, ag.ContactNull = v, false
			a.fire(nil, "CC-Agent", ag.Name, "CC-Action", "agent-contact-change", "CC-Agent-Contact", v)
			return ""
		}, false},
		// The type is stored as typed, as FreeSWITCH does.
		"type": {func(_ *ACD, ag *Agent, v string) string {
			if _, ok := config.ParseAgentType(v); !ok {
				return errInvalidType
			}
			ag.Type = v
			return ""
		}, false},
		"max_no_answer": {intKey(func(ag *Agent) *int64 { return &ag.MaxNoAnswer }), false},
		"wrap_up_time":  {intKey(func(ag *Agent) *int64 { return &ag.WrapUpTime }), true},
		"ready_time": {func(a *ACD, ag *Agent, v string) string {
			ag.ReadyTime = int64(call.Atoi(v))
			if ag.ReadyTime > a.now() {
				a.wakeAt(ag.ReadyTime)
			}
			return ""
		}, true},
		"reject_delay_time":    {intKey(func(ag *Agent) *int64 { return &ag.RejectDelayTime }), false},
		"busy_delay_time":      {intKey(func(ag *Agent) *int64 { return &ag.BusyDelayTime }), false},
		"no_answer_delay_time": {intKey(func(ag *Agent) *int64 { return &ag.NoAnswerDelayTime }), false},
	}
}

// agentSet implements `agent set <key> <name> <value>`.
func (a *ACD) agentSet(key, name, value string) string {
	ag, ok := a.agents[name]
	if !ok {
		return errAgentNotFound
	}
	k, ok := agentKeys[strings.ToLower(key)]
	if !ok {
		return errInvalidAgentKey
	}
	if res := k.set(a, ag, value); res != "" {
		return res
	}
	a.saveAgent(ag)
	if k.dispatch {
		a.dirty = true
	}
	return okReply
}

func (a *ACD) setAgentStatus(ag *Agent, value string) string {
	s, ok := config.ParseAgentStatus(value)
	if !ok {
		return errInvalidStatus
	}
	now := a.now()
	a.logStatus(ag, ag.Status, s)
	a.rowsChanged()
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
	a.fireStatus(ag)
	return ""
}

// setAgentState sets any valid state; onlyIfWaiting refuses (with "Agent
// not found", as FreeSWITCH's UPDATE … WHERE matches no row) unless the
// agent is Waiting and Available or On Demand.
func (a *ACD) setAgentState(ag *Agent, value string, onlyIfWaiting bool) string {
	s, ok := config.ParseAgentState(value)
	if !ok {
		return errInvalidState
	}
	if onlyIfWaiting && (ag.State != config.StateWaiting ||
		(ag.Status != config.StatusAvailable && ag.Status != config.StatusAvailableOnDemand)) {
		return errAgentNotFound
	}
	ag.State = s
	if s == config.StateReceiving {
		ag.LastOffered = a.now()
	}
	a.fireState(ag)
	return ""
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
	a.rowsChanged()
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
		t.Level = int64(call.Atoi(value))
	case "position":
		t.Position = int64(call.Atoi(value))
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
			a.rowsChanged()
			break
		}
	}
	a.queueWrite(store.CallcenterWrite{Kind: store.DeleteTierWrite, Tier: store.TierRow{Queue: queue, Agent: agent}})
}
