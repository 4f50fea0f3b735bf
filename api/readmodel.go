package api

import "time"

// Callcenter is the read model of the ACD that the web server and the
// metrics need: one consistent copy of queues, agents, tiers and members.
// cmd/ccpbx adapts *acd.ACD's View to it (api does not import acd).
type Callcenter interface {
	CallcenterView() (CallcenterView, error)
}

// CallcenterView is a copy of the ACD's state at Time. Statuses and states
// carry FreeSWITCH's spellings.
type CallcenterView struct {
	Time    time.Time   `json:"time"`
	Queues  []QueueRow  `json:"queues"`
	Agents  []AgentRow  `json:"agents"`
	Tiers   []TierRow   `json:"tiers"`
	Members []MemberRow `json:"members"`
}

// QueueRow is one queue.
type QueueRow struct {
	Name     string `json:"name"`
	Strategy string `json:"strategy"`
}

// AgentRow is one agent; epochs are Unix seconds (0 = never).
type AgentRow struct {
	Name             string `json:"name"`
	Status           string `json:"status"`
	State            string `json:"state"`
	LastStatusChange int64  `json:"last_status_change"`
	LastBridgeStart  int64  `json:"last_bridge_start"`
	LastBridgeEnd    int64  `json:"last_bridge_end"`
	CallsAnswered    int64  `json:"calls_answered"`
}

// TierRow links an agent to a queue.
type TierRow struct {
	Queue    string `json:"queue"`
	Agent    string `json:"agent"`
	State    string `json:"state"`
	Level    int64  `json:"level"`
	Position int64  `json:"position"`
}

// MemberRow is a caller in a queue.
type MemberRow struct {
	Queue        string `json:"queue"`
	UUID         string `json:"uuid"`
	SessionUUID  string `json:"session_uuid"`
	CIDNumber    string `json:"cid_number"`
	CIDName      string `json:"cid_name"`
	State        string `json:"state"`
	JoinedEpoch  int64  `json:"joined_epoch"`
	ServingAgent string `json:"serving_agent"`
}

// waiting reports whether a member still waits for an agent (Waiting, or
// Trying while agents ring).
func (m MemberRow) waiting() bool { return m.State == "Waiting" || m.State == "Trying" }
