package interop

import (
	"fmt"
	"strings"
)

// The listings as FreeSWITCH prints them (reference/freeswitch-observed
// README §1, §2 and the article).
const (
	agentListHeader = "name|instance_id|uuid|type|contact|status|state|max_no_answer|wrap_up_time|reject_delay_time|busy_delay_time|no_answer_delay_time|last_bridge_start|last_bridge_end|last_offered_call|last_status_change|no_answer_count|calls_answered|talk_time|ready_time|external_calls_count"
	regListHeader   = "reg_user,realm,token,url,expires,network_ip,network_port,network_proto,hostname,metadata"
	tierList        = "queue|agent|state|level|position\n3000@default|1001|Ready|1|1\n3000@default|1002|Ready|1|1\n+OK"
	queueListHeader = "name|strategy|moh_sound|time_base_score|tier_rules_apply|tier_rule_wait_second|tier_rule_wait_multiply_level|tier_rule_no_agent_no_wait|discard_abandoned_after|abandoned_resume_allowed|max_wait_time|max_wait_time_with_no_agent|max_wait_time_with_no_agent_time_reached|record_template|calls_answered|calls_abandoned|ring_progressively_delay|skip_agents_with_external_calls|agent_no_answer_status"
)

// queueList is `callcenter_config queue list` for the shipped queue as
// FreeSWITCH prints it (README §1), with the given counters. moh_sound is
// the configured path ($${sounds_dir} is "sounds" in the shipped config);
// record_template is the test config's template as configured (FreeSWITCH
// lists it unexpanded; its capture had none set).
func queueList(answered, abandoned int) string {
	return queueListHeader + "\n" +
		fmt.Sprintf("3000@default|round-robin|sounds/ivr/common/music-on-hold.wav|system|false|300|true|false|60|false|0|0|20|%s|%d|%d|0|true|On Break", testRecordTemplate, answered, abandoned) +
		"\n+OK"
}

// agentRow is one row of `callcenter_config agent list`, by column name.
type agentRow map[string]string

// parseAgentList parses the reply of `callcenter_config agent list`: the
// header, '|' rows, "+OK". Layout deviations are errors naming the line.
func parseAgentList(out string) (map[string]agentRow, error) {
	lines := replyLines(out)
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty reply")
	}
	if lines[len(lines)-1] != "+OK" {
		return nil, fmt.Errorf("last line %q, want \"+OK\"", lines[len(lines)-1])
	}
	rows := map[string]agentRow{}
	if len(lines) == 1 {
		return rows, nil // FreeSWITCH prints no header for an empty list
	}
	if lines[0] != agentListHeader {
		return nil, fmt.Errorf("header line differs from FreeSWITCH's\n  got:  %s\n  want: %s", lines[0], agentListHeader)
	}
	cols := strings.Split(agentListHeader, "|")
	for i, l := range lines[1 : len(lines)-1] {
		f := strings.Split(l, "|")
		if len(f) != len(cols) {
			return nil, fmt.Errorf("row %d has %d fields, want %d: %q", i+1, len(f), len(cols), l)
		}
		r := agentRow{}
		for j, c := range cols {
			r[c] = f[j]
		}
		rows[r["name"]] = r
	}
	return rows, nil
}

// replyLines splits a cli reply into lines without the trailing blank
// lines fs_cli adds.
func replyLines(out string) []string {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = strings.TrimRight(out, "\n ")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// expectAgent compares the columns that do not depend on time or UUIDs
// with what FreeSWITCH shows for the same situation; want holds the
// columns that vary by step (status, state, counters).
func expectAgent(rows map[string]agentRow, name string, want map[string]string) error {
	r, ok := rows[name]
	if !ok {
		return fmt.Errorf("agent %s missing from the list", name)
	}
	fixed := map[string]string{
		"instance_id":          "single_box",
		"type":                 "callback",
		"contact":              fmt.Sprintf("[call_timeout=%d]user/%s", testCallTimeout, name),
		"max_no_answer":        "3",
		"wrap_up_time":         itoa(testWrapUp),
		"reject_delay_time":    itoa(testRejectDelay),
		"busy_delay_time":      itoa(testBusyDelay),
		"no_answer_delay_time": itoa(testNoAnswerDelay),
		"external_calls_count": "0",
	}
	var diffs []string
	for _, m := range []map[string]string{fixed, want} {
		for k, v := range m {
			if r[k] != v {
				diffs = append(diffs, fmt.Sprintf("%s=%q (want %q)", k, r[k], v))
			}
		}
	}
	for _, k := range []string{"last_bridge_start", "last_bridge_end", "last_offered_call", "last_status_change", "ready_time", "talk_time", "no_answer_count", "calls_answered"} {
		if _, err := fmt.Sscanf(r[k], "%d", new(int64)); err != nil {
			diffs = append(diffs, fmt.Sprintf("%s=%q is not a number", k, r[k]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("agent %s: %s", name, strings.Join(diffs, ", "))
	}
	return nil
}

// regRow is one row of `show registrations`.
type regRow map[string]string

// parseRegistrations parses `show registrations` in the article's layout:
// header, CSV rows, a blank line, "N total.".
func parseRegistrations(out string) ([]regRow, error) {
	lines := replyLines(out)
	if len(lines) < 2 {
		return nil, fmt.Errorf("reply has %d lines, want header, rows, blank line, \"N total.\"", len(lines))
	}
	if lines[0] != regListHeader {
		return nil, fmt.Errorf("header differs from FreeSWITCH's\n  got:  %s\n  want: %s", lines[0], regListHeader)
	}
	last := lines[len(lines)-1]
	var total int
	if _, err := fmt.Sscanf(last, "%d total.", &total); err != nil || fmt.Sprintf("%d total.", total) != last {
		return nil, fmt.Errorf("last line %q, want \"N total.\"", last)
	}
	body := lines[1 : len(lines)-1]
	if len(body) == 0 || body[len(body)-1] != "" {
		return nil, fmt.Errorf("no blank line before %q", last)
	}
	body = body[:len(body)-1]
	cols := strings.Split(regListHeader, ",")
	var rows []regRow
	for _, l := range body {
		f := strings.Split(l, ",")
		if len(f) != len(cols) {
			return nil, fmt.Errorf("row has %d fields, want %d: %q", len(f), len(cols), l)
		}
		r := regRow{}
		for j, c := range cols {
			r[c] = f[j]
		}
		rows = append(rows, r)
	}
	if total != len(rows) {
		return nil, fmt.Errorf("%q but %d rows", last, len(rows))
	}
	return rows, nil
}

const memberListHeader = "queue|instance_id|uuid|session_uuid|cid_number|cid_name|system_epoch|joined_epoch|rejoined_epoch|bridge_epoch|abandoned_epoch|base_score|skill_score|serving_agent|serving_system|state|score"

// parsePipeList parses a '|' listing with the given FreeSWITCH header
// ("+OK" alone when empty, as FreeSWITCH prints it).
func parsePipeList(out, header string) ([]map[string]string, error) {
	lines := replyLines(out)
	if len(lines) == 0 || lines[len(lines)-1] != "+OK" {
		return nil, fmt.Errorf("reply does not end with +OK: %q", out)
	}
	if len(lines) == 1 {
		return nil, nil
	}
	if lines[0] != header {
		return nil, fmt.Errorf("header differs from FreeSWITCH's\n  got:  %s\n  want: %s", lines[0], header)
	}
	cols := strings.Split(header, "|")
	var rows []map[string]string
	for _, l := range lines[1 : len(lines)-1] {
		f := strings.Split(l, "|")
		if len(f) != len(cols) {
			return nil, fmt.Errorf("row has %d fields, want %d: %q", len(f), len(cols), l)
		}
		r := map[string]string{}
		for j, c := range cols {
			r[c] = f[j]
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// diffRow lists the columns of r that differ from want.
func diffRow(r, want map[string]string) string {
	var d []string
	for k, v := range want {
		if r[k] != v {
			d = append(d, fmt.Sprintf("%s=%q (want %q)", k, r[k], v))
		}
	}
	return strings.Join(d, ", ")
}

// sofiaStatus is `sofia status` as FreeSWITCH printed it for the same two
// profiles on 127.0.0.1 (README §1), for the test's ports.
func sofiaStatus(internal, trunk int) string {
	rule := strings.Repeat("=", 97)
	row := func(name, data, state string) string {
		return fmt.Sprintf("%25s\t%7s\t%42s\t%s", name, "profile", data, state)
	}
	return strings.Join([]string{
		fmt.Sprintf("%25s\t%7s\t%42s\t%s", "Name", "Type", "Data", "State"),
		rule,
		row("blueivr", fmt.Sprintf("sip:mod_sofia@127.0.0.1:%d", trunk), "RUNNING (0)"),
		row("internal", fmt.Sprintf("sip:mod_sofia@127.0.0.1:%d", internal), "RUNNING (0)"),
		rule,
		"2 profiles 0 aliases",
	}, "\n")
}
