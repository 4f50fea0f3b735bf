package acd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"ccpbx/call"
)

// ErrJSONCommand is returned by ConfigJSON for arguments it does not know.
var ErrJSONCommand = errors.New("callcenter_config: unsupported JSON arguments")

// ConfigJSON is the JSON form of callcenter_config (§12.6): arguments is
// one of the list commands, queueName the data.queue_name attribute. The
// result is an array of objects whose values are all strings (queue list
// excepted), or {"error": …} with a non-nil error.
func (a *ACD) ConfigJSON(arguments, queueName string) (any, error) {
	var out any
	var err error
	if !a.do(func() { out, err = a.configJSON(arguments, queueName) }) {
		return nil, errors.New("callcenter is not running")
	}
	return out, err
}

// orderedObject marshals its keys in the order given, as cJSON does.
type orderedObject struct {
	keys []string
	vals []any
}

func (o *orderedObject) set(k string, v any) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func rowsJSON(cols []string, rows [][]string) []orderedObject {
	out := make([]orderedObject, 0, len(rows))
	for _, r := range rows {
		var o orderedObject
		for i, c := range cols {
			o.set(c, r[i])
		}
		out = append(out, o)
	}
	return out
}

// agentsJSON is rowsJSON for agents: SQL NULL columns (uuid and contact
// never set) are left out, as cJSON refuses a NULL string.
func (a *ACD) agentsJSON(keep func(*Agent) bool) []orderedObject {
	var out []orderedObject
	for _, ag := range a.sortedAgents() {
		if !keep(ag) {
			continue
		}
		var o orderedObject
		for i, v := range ag.fields() {
			c := agentColumns[i]
			if (c == "uuid" && ag.UUIDNull) || (c == "contact" && ag.ContactNull) {
				continue
			}
			o.set(c, v)
		}
		out = append(out, o)
	}
	if out == nil {
		out = []orderedObject{}
	}
	return out
}

func (a *ACD) configJSON(arguments, queueName string) (any, error) {
	missing := map[string]string{"error": "Missing data attribute: queue_name"}
	switch strings.ToLower(strings.TrimSpace(arguments)) {
	case "agent list":
		return a.agentsJSON(func(*Agent) bool { return true }), nil
	case "tier list":
		return rowsJSON(tierColumns, a.tierRows(func(*Tier) bool { return true }, true)), nil
	case "member list":
		return rowsJSON(memberColumns, a.memberRows("")), nil
	case "queue list":
		out := make([]orderedObject, 0, len(a.queueOrder))
		for _, name := range a.queueOrder {
			q := a.queues[name]
			var o orderedObject
			o.set("name", q.Name)
			o.set("strategy", q.Strategy)
			if q.MOHSound != "" {
				o.set("moh_sound", q.MOHSound)
			}
			o.set("time_base_score", q.TimeBaseScore)
			o.set("tier_rules_apply", btoa(q.TierRulesApply))
			o.set("tier_rule_wait_second", q.TierRuleWaitSecond)
			o.set("tier_rule_wait_multiply_level", btoa(q.TierRuleWaitMultiplyLevel))
			o.set("tier_rule_no_agent_no_wait", btoa(q.TierRuleNoAgentNoWait))
			o.set("discard_abandoned_after", q.DiscardAbandonedAfter)
			o.set("abandoned_resume_allowed", btoa(q.AbandonedResumeAllowed))
			o.set("max_wait_time", q.MaxWaitTime)
			o.set("max_wait_time_with_no_agent", q.MaxWaitTimeWithNoAgent)
			o.set("max_wait_time_with_no_agent_time_reached", q.MaxWaitTimeWithNoAgentReach)
			if q.RecordTemplate != "" {
				o.set("record_template", q.RecordTemplate)
			}
			o.set("skip_agents_with_external_calls", btoa(q.SkipAgentsWithExternalCalls))
			o.set("agent_no_answer_status", q.AgentNoAnswerStatus)
			out = append(out, o)
		}
		return out, nil
	case "queue list agents":
		if queueName == "" {
			return missing, ErrJSONCommand
		}
		return a.agentsJSON(a.queueAgentFilter(queueName, "", "")), nil
	case "queue list members":
		if queueName == "" {
			return missing, ErrJSONCommand
		}
		return rowsJSON(memberColumns, a.memberRows(queueName)), nil
	case "queue list tiers":
		if queueName == "" {
			return missing, ErrJSONCommand
		}
		return rowsJSON(tierColumns, a.tierRows(func(t *Tier) bool { return t.Queue == queueName }, false)), nil
	}
	return map[string]string{"error": "Unsupported arguments"}, ErrJSONCommand
}

// apiJSON is FreeSWITCH's `json {…}` API for the callcenter_config
// command; it is registered only when no other package provides `json`.
func (a *ACD) apiJSON(_ context.Context, args string, _ *call.Channel) string {
	var req struct {
		Command string          `json:"command"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(args), &req); err != nil || !strings.EqualFold(req.Command, "callcenter_config") {
		return `{"status":"error","message":"parse error or unknown command"}`
	}
	var data struct {
		Arguments string `json:"arguments"`
		QueueName string `json:"queue_name"`
	}
	if len(req.Data) > 0 {
		if err := json.Unmarshal(req.Data, &data); err != nil {
			return `{"status":"error","message":"parse error"}`
		}
	}
	resp, err := a.ConfigJSON(data.Arguments, data.QueueName)
	status := "success"
	if err != nil {
		status = "error"
	}
	var o orderedObject
	o.set("command", req.Command)
	if len(req.Data) > 0 {
		o.set("data", req.Data)
	}
	o.set("status", status)
	o.set("response", resp)
	b, merr := json.Marshal(o)
	if merr != nil {
		return `{"status":"error"}`
	}
	return string(b)
}
