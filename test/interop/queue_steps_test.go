package interop

// The article's steps 4–9: the queue at work (round-robin, abandon, busy,
// no answer), logout, the event headers, and SIGTERM with live calls.
// TestArticle (article_test.go) runs them in order after steps 1–3.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

func other(agent string) string {
	if agent == "1001" {
		return "1002"
	}
	return "1001"
}

// ---------------------------------------------------------------- step 4

func (e *env) stepRoundRobin(t *testing.T) {
	const step = "step 4 (round-robin over three calls)"
	uas, _ := e.agent1002(t, "answer-rr", "agent_answer.xml", 3, 300)
	e.b1001.setPolicy(always("accept"))
	defer e.b1001.setPolicy(nil)
	bm := e.b1001.mark()

	prev := e.offered[len(e.offered)-1]
	var got []string
	for i := 1; i <= 3; i++ {
		wrapUp()
		m := e.ev.mark()
		c := e.placeCall(t)
		_, st, err := e.ev.waitFor(m, 30*time.Second, "bridge-agent-start", action("bridge-agent-start"))
		if err != nil {
			t.Fatalf("%s, call %d: %v", step, i, err)
		}
		agent := st.get("CC-Agent")
		got = append(got, agent)
		_ = c.peer.waitPackets(c.peer.count(), 25, 5*time.Second) // talk for half a second
		c.hangup(t, fmt.Sprintf("%s, call %d", step, i))
		e.answered++
		e.waitIdle(t, fmt.Sprintf("%s, call %d", step, i), m, agent)
		e.expectSequence(t, fmt.Sprintf("%s, call %d", step, i), m, normalCall(agent, c.number), 5*time.Second)
	}
	e.offered = append(e.offered, got...)
	seq := append([]string{prev}, got...)
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Errorf("%s: agents answered %s (after step 3's %s), want strict alternation (1001 → 1002 → 1001 …) with both idle",
				step, strings.Join(got, " → "), prev)
			break
		}
	}
	uas.kill()
	want1002 := strings.Count(strings.Join(got, ","), "1002")
	if n := sippCount(uas.msgFile, "INVITE"); n != want1002 {
		t.Errorf("%s: 1002 received %d INVITEs, want %d (one per call it answered)", step, n, want1002)
	}
	// FreeSWITCH presents the member to the agent as `"3000" <sip:CALLER@…>`
	// (the caller_id_name the script set, the caller's number; README §5).
	for _, from := range sippReceived(uas.msgFile, "INVITE", "From") {
		if !regexp.MustCompile(`^"3000" <sip:555\d{4}@`).MatchString(from) {
			t.Errorf("%s: INVITE to 1002 has From %q, FreeSWITCH sends \"3000\" <sip:CALLER@…>", step, from)
		}
	}
	if n := sippCount(uas.msgFile, "BYE"); n != want1002 {
		t.Errorf("%s: 1002 received %d BYEs, want %d (the caller's BYE ends the agent leg)", step, n, want1002)
	}
	if n := e.b1001.count(bm, "CALL_INCOMING"); n != 3-want1002 {
		t.Errorf("%s: 1001 rang %d times, want %d", step, n, 3-want1002)
	}
	if n := e.b1001.count(bm, "CALL_CLOSED"); n != 3-want1002 {
		t.Errorf("%s: 1001 saw %d calls end, want %d", step, n, 3-want1002)
	}
}

// ---------------------------------------------------------------- step 5

func (e *env) stepAbandon(t *testing.T) {
	const step = "step 5 (caller hangs up while queued, agent ringing)"
	uas, _ := e.agent1002(t, "ring-abandon", "agent_ring.xml", 1, 0)
	e.b1001.setPolicy(nil) // rings, never answers
	wrapUp()
	m := e.ev.mark()
	bm := e.b1001.mark()
	c := e.placeCall(t)

	_, off, err := e.ev.waitFor(m, 30*time.Second, "agent-offering", action("agent-offering"))
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	agent := off.get("CC-Agent")
	if prev := e.offered[len(e.offered)-1]; agent == prev {
		t.Errorf("%s: offered to %s again, round-robin wants %s after %s", step, agent, other(prev), prev)
	}
	e.offered = append(e.offered, agent)
	// Hang up only once the agent's phone really rings.
	switch agent {
	case "1001":
		if _, err := e.b1001.waitEvent(bm, "CALL_INCOMING", 10*time.Second); err != nil {
			t.Fatalf("%s: 1001 offered but not ringing: %v", step, err)
		}
	default:
		if !pbxtest.Until(10*time.Second, func() bool { return sippCount(uas.msgFile, "180") > 0 }) {
			t.Fatalf("%s: 1002 offered but its phone never rang:\n%s", step, tail(uas.msgFile, 20))
		}
	}
	c.hangup(t, step)
	e.abandoned++

	_, end, err := e.ev.waitFor(m, 10*time.Second, "member-queue-end", action("member-queue-end", "CC-Member-CID-Number", c.number))
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if end.get("CC-Cause") != "Cancel" || end.get("CC-Cancel-Reason") != "BREAK_OUT" {
		t.Errorf("%s: member-queue-end has CC-Cause %q, CC-Cancel-Reason %q; FreeSWITCH sends Cancel, BREAK_OUT (README §10)",
			step, end.get("CC-Cause"), end.get("CC-Cancel-Reason"))
	}
	// The ringing agent gets a CANCEL.
	switch agent {
	case "1001":
		if _, err := e.b1001.waitEvent(bm, "CALL_CLOSED", 10*time.Second); err != nil {
			t.Errorf("%s: 1001 kept ringing after the caller left (no CANCEL): %v", step, err)
		}
		if n := e.b1001.count(bm, "CALL_ESTABLISHED"); n != 0 {
			t.Errorf("%s: 1001 has an established call", step)
		}
		uas.kill()
		if n := sippCount(uas.msgFile, "INVITE"); n != 0 {
			t.Errorf("%s: 1002 rang too (%d INVITEs)", step, n)
		}
	default:
		if err := uas.finish(10 * time.Second); err != nil {
			t.Errorf("%s: ringing agent 1002 did not get CANCEL: %v", step, err)
		}
		if n := e.b1001.count(bm, "CALL_INCOMING"); n != 0 {
			t.Errorf("%s: 1001 rang too", step)
		}
	}
	// FreeSWITCH's capture has no full sequence for this case (c7 had no
	// agent), so the events it does show must appear in this order.
	e.expectSubsequence(t, step, m, []string{
		"member-queue-start member=" + c.number,
		"members-count count=1",
		"agent-state-change agent=" + agent + " state=Receiving",
		"agent-offering agent=" + agent + " member=" + c.number,
		"member-queue-end member=" + c.number + " cause=Cancel reason=BREAK_OUT",
		"members-count count=0",
	})
	// mod_callcenter fires bridge-agent-fail for every failed offer,
	// caller-cancelled ones included (reference/mod_callcenter.md §7.5, from
	// the source; the capture has no such case).
	e.expectSubsequence(t, step, m, []string{
		"agent-offering agent=" + agent + " member=" + c.number,
		"bridge-agent-fail agent=" + agent + " member=" + c.number,
	})
	// The agent is ready for the next call.
	if !pbxtest.Until(10*time.Second, func() bool {
		err = expectAgent(e.agentList(t, step), agent, map[string]string{"status": "Available", "state": "Waiting"})
		return err == nil
	}) {
		t.Errorf("%s: after the caller left: %v", step, err)
	}
}

// ---------------------------------------------------------------- step 6a

func (e *env) stepBusy(t *testing.T) {
	const step = "step 6 (agent answers 486 Busy)"
	busy := other(e.offered[len(e.offered)-1]) // round-robin's next
	answers := other(busy)

	// Call A: the busy agent is offered first, rejects; the other answers.
	var uas *sippRun
	if busy == "1002" {
		uas, _ = e.agent1002(t, "busy", "agent_busy.xml", 1, 0)
		e.b1001.setPolicy(always("accept"))
	} else {
		uas, _ = e.agent1002(t, "answer-after-busy", "agent_answer.xml", 1, 300)
		e.b1001.setPolicy(always("hangup")) // baresip rejects with 486
	}
	defer e.b1001.setPolicy(nil)
	wrapUp()
	m := e.ev.mark()
	bm := e.b1001.mark()
	c := e.placeCall(t)
	_, first, err := e.ev.waitFor(m, 30*time.Second, "agent-offering", action("agent-offering"))
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if got := first.get("CC-Agent"); got != busy {
		t.Fatalf("%s: first offer went to %s; round-robin after %s wants %s (who will answer 486)", step, got, other(busy), busy)
	}
	_, st, err := e.ev.waitFor(m, 30*time.Second, "bridge-agent-start", action("bridge-agent-start"))
	if err != nil {
		t.Fatalf("%s: after %s answered 486 the call did not reach %s: %v", step, busy, answers, err)
	}
	if got := st.get("CC-Agent"); got != answers {
		t.Fatalf("%s: bridged to %s, want %s (the other agent)", step, got, answers)
	}
	_ = c.peer.waitPackets(c.peer.count(), 25, 5*time.Second)
	c.hangup(t, step)
	e.answered++
	e.waitIdle(t, step, m, answers)
	e.expectSubsequence(t, step, m, []string{
		"member-queue-start member=" + c.number,
		"agent-offering agent=" + busy + " member=" + c.number,
		"bridge-agent-fail agent=" + busy + " member=" + c.number, // mod_callcenter.md §7.5
		"agent-offering agent=" + answers + " member=" + c.number,
		"bridge-agent-start agent=" + answers + " member=" + c.number,
		"bridge-agent-end agent=" + answers + " member=" + c.number,
		"member-queue-end agent=" + answers + " member=" + c.number + " cause=Terminated",
	})
	switch busy {
	case "1002":
		if err := uas.finish(10 * time.Second); err != nil {
			t.Errorf("%s: 1002 (486): %v", step, err)
		}
	case "1001":
		if err := uas.finish(10 * time.Second); err != nil {
			t.Errorf("%s: 1002 (answers): %v", step, err)
		}
		if n := e.b1001.count(bm, "CALL_ESTABLISHED"); n != 0 {
			t.Errorf("%s: 1001 was told to reject but has an established call", step)
		}
	}
	// The listing shows the busy delay: ready_time = reject time + busy-delay-time.
	rows := e.agentList(t, step)
	if err := expectAgent(rows, busy, map[string]string{"status": "Available", "state": "Waiting"}); err != nil {
		t.Errorf("%s: busy agent in the listing: %v", step, err)
	}
	rt, _ := strconv.ParseInt(rows[busy]["ready_time"], 10, 64)
	if lo, hi := first.At.Unix()+testBusyDelay-1, time.Now().Unix()+testBusyDelay+1; rt < lo || rt > hi {
		t.Errorf("%s: %s's ready_time = %d, want reject time + busy-delay-time %d (between %d and %d)", step, busy, rt, testBusyDelay, lo, hi)
	}
	e.offered = append(e.offered, busy, answers)

	// Call B: round-robin would pick the busy agent now, but its busy delay
	// keeps it out: the other agent gets the call again.
	var uas2 *sippRun
	uas2, _ = e.agent1002(t, "answer-during-busy-delay", "agent_answer.xml", 1, 300)
	e.b1001.setPolicy(always("accept"))
	wrapUp()
	m2 := e.ev.mark()
	c2 := e.placeCall(t)
	_, off2, err := e.ev.waitFor(m2, 30*time.Second, "agent-offering", action("agent-offering"))
	if err != nil {
		t.Fatalf("%s, next call: %v", step, err)
	}
	if got := off2.get("CC-Agent"); got != answers {
		t.Errorf("%s, next call: offered to %s during its busy delay (%ds); want %s", step, got, testBusyDelay, answers)
	}
	if _, _, err := e.ev.waitFor(m2, 30*time.Second, "bridge-agent-start", action("bridge-agent-start")); err != nil {
		t.Fatalf("%s, next call: %v", step, err)
	}
	_ = c2.peer.waitPackets(c2.peer.count(), 25, 5*time.Second)
	c2.hangup(t, step+", next call")
	e.answered++
	e.waitIdle(t, step+", next call", m2, off2.get("CC-Agent"))
	e.expectSequence(t, step+", next call", m2, normalCall(answers, c2.number), 5*time.Second)
	uas2.kill()
	e.offered = append(e.offered, off2.get("CC-Agent"))
}

// ---------------------------------------------------------------- step 7

func (e *env) stepLogout(t *testing.T) {
	const step = "step 7 (1001 dials 301: logged out)"
	e.b1001.setPolicy(nil)
	m := e.ev.mark()
	e.dialFromBaresip(t, step, "301", "ivr-you_are_now_logged_out")
	e.expectSequence(t, step, m, []string{"agent-status-change agent=1001 status=Logged Out"}, 5*time.Second)
	rows := e.agentList(t, step)
	if err := expectAgent(rows, "1001", map[string]string{"status": "Logged Out", "state": "Waiting"}); err != nil {
		t.Errorf("%s: listing after 301: %v", step, err)
	}

	// The next call rings only 1002 (it may first wait out 1002's busy delay
	// from step 6).
	uas, _ := e.agent1002(t, "answer-after-logout", "agent_answer.xml", 1, 300)
	wrapUp()
	bm := e.b1001.mark()
	m2 := e.ev.mark()
	c := e.placeCall(t)
	_, st, err := e.ev.waitFor(m2, time.Duration(testBusyDelay+30)*time.Second, "bridge-agent-start", action("bridge-agent-start"))
	if err != nil {
		t.Fatalf("%s, next call: %v", step, err)
	}
	if got := st.get("CC-Agent"); got != "1002" {
		t.Fatalf("%s, next call: bridged to %s, want 1002 (1001 is logged out)", step, got)
	}
	_ = c.peer.waitPackets(c.peer.count(), 25, 5*time.Second)
	c.hangup(t, step+", next call")
	e.answered++
	if err := uas.finish(15 * time.Second); err != nil {
		t.Errorf("%s, next call: 1002: %v", step, err)
	}
	if n := e.b1001.count(bm, "CALL_INCOMING"); n != 0 {
		t.Errorf("%s, next call: logged-out 1001 rang %d times", step, n)
	}
	e.waitIdle(t, step+", next call", m2, "1002")
	e.expectSequence(t, step+", next call", m2, normalCall("1002", c.number), 5*time.Second)
	e.offered = append(e.offered, "1002")
}

// ---------------------------------------------------------------- step 6b

func (e *env) stepNoAnswer(t *testing.T) {
	const step = "step 6 (agent never answers three times: On Break)"
	uas, _ := e.agent1002(t, "ring-no-answer", "agent_ring.xml", 3, 0)
	wrapUp()
	bm := e.b1001.mark()
	m := e.ev.mark()
	c := e.placeCall(t)
	limit := time.Duration(3*(testCallTimeout+testNoAnswerDelay)+30) * time.Second
	if _, _, err := e.ev.waitFor(m, limit, "agent-status-change 1002 On Break",
		action("agent-status-change", "CC-Agent", "1002", "CC-Agent-Status", "On Break")); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	c.hangup(t, step)
	e.abandoned++
	if _, end, err := e.ev.waitFor(m, 10*time.Second, "member-queue-end", action("member-queue-end", "CC-Member-CID-Number", c.number)); err != nil {
		t.Errorf("%s: %v", step, err)
	} else if end.get("CC-Cause") != "Cancel" || end.get("CC-Cancel-Reason") != "BREAK_OUT" {
		t.Errorf("%s: member-queue-end CC-Cause %q, CC-Cancel-Reason %q, want Cancel, BREAK_OUT", step, end.get("CC-Cause"), end.get("CC-Cancel-Reason"))
	}
	offers := 0
	for _, ev := range e.ev.since(m) {
		if action("agent-offering", "CC-Agent", "1002")(ev) {
			offers++
		}
	}
	if offers != 3 {
		t.Errorf("%s: 1002 was offered the call %d times before On Break, want 3 (max-no-answer)", step, offers)
	}
	// From mod_callcenter's source (reference/mod_callcenter.md §7.5): each
	// unanswered offer fires bridge-agent-fail after the outcome is applied,
	// so on the third one agent-max-no-answer and the status change to On
	// Break come first.
	e.expectSubsequence(t, step, m, []string{
		"agent-offering agent=1002 member=" + c.number,
		"bridge-agent-fail agent=1002 member=" + c.number,
		"agent-offering agent=1002 member=" + c.number,
		"bridge-agent-fail agent=1002 member=" + c.number,
		"agent-offering agent=1002 member=" + c.number,
		"agent-max-no-answer agent=1002",
		"agent-status-change agent=1002 status=On Break",
		"bridge-agent-fail agent=1002 member=" + c.number,
	})
	if err := uas.finish(15 * time.Second); err != nil {
		t.Errorf("%s: 1002 should have rung three times, each ended by CANCEL at call_timeout=%d: %v", step, testCallTimeout, err)
	}
	if n := e.b1001.count(bm, "CALL_INCOMING"); n != 0 {
		t.Errorf("%s: logged-out 1001 rang %d times", step, n)
	}
	rows := e.agentList(t, step)
	if err := expectAgent(rows, "1002", map[string]string{"status": "On Break", "no_answer_count": "3"}); err != nil {
		t.Errorf("%s: listing: %v", step, err)
	}
}

// ---------------------------------------------------------------- step 8

// stepEventShapes compares every callcenter::info event of the run with
// the headers FreeSWITCH put on the same CC-Action (the sequences were
// compared step by step).
func (e *env) stepEventShapes(t *testing.T) {
	const step = "step 8 (event headers, final listings)"
	seen := map[string]bool{}
	all := e.ev.since(0)
	if len(all) == 0 {
		t.Fatalf("%s: no events at all", step)
	}
	for _, ev := range all {
		if err := checkEventShape(ev); err != nil && !seen[err.Error()] {
			seen[err.Error()] = true
			t.Errorf("%s: %v", step, err)
		}
	}
	t.Logf("%s: %d events checked", step, len(all))

	// The queue's counters over the run (7 answered, 2 abandoned when all
	// steps ran): FreeSWITCH counts calls answered by an agent and callers
	// who left while waiting (README §2: 6 and 1 for its 6 answered calls
	// and 1 abandoned).
	if got, want := strings.Join(replyLines(e.pbx.mustCLI(t, step, "callcenter_config queue list")), "\n"), queueList(e.answered, e.abandoned); got != want {
		t.Errorf("%s: `callcenter_config queue list` at the end differs\n  got:\n%s\n  want:\n%s", step, got, want)
	}
}

// ---------------------------------------------------------------- step 9

// stepShutdown is issue #2's SIGTERM rule with real phones: a bridged queue
// call is hung up with BYE on both legs and ccpbx exits within 5 s.
func (e *env) stepShutdown(t *testing.T) {
	const step = "step 9 (SIGTERM during a call)"
	// 1002 is On Break after step 6: log it back in for one more call.
	if out := e.pbx.mustCLI(t, step, "callcenter_config agent set status 1002 Available"); strings.TrimSpace(out) != "+OK" {
		t.Fatalf("%s: `callcenter_config agent set status 1002 Available` = %q, want +OK", step, out)
	}
	uas, _ := e.agent1002(t, "answer-shutdown", "agent_answer.xml", 1, 300)
	m := e.ev.mark()
	c := e.placeCallWith(t, "trunk_caller_pbx_bye.xml")
	if _, _, err := e.ev.waitFor(m, 30*time.Second, "bridge-agent-start", action("bridge-agent-start", "CC-Agent", "1002")); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	_ = c.peer.waitPackets(c.peer.count(), 25, 5*time.Second)
	start := time.Now()
	if err := e.pbx.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	select {
	case <-e.pbx.exited:
		t.Logf("%s: ccpbx exited %s after SIGTERM (%v)", step, time.Since(start).Round(time.Millisecond), e.pbx.exitErr)
		if e.pbx.exitErr != nil {
			t.Errorf("%s: ccpbx exit status after SIGTERM: %v, want 0", step, e.pbx.exitErr)
		}
	case <-time.After(6 * time.Second):
		t.Errorf("%s: ccpbx still running 6 s after SIGTERM (issue #2: exit within 5 s)", step)
	}
	if err := c.run.finish(10 * time.Second); err != nil {
		t.Errorf("%s: the caller got no BYE from the shutting-down PBX: %v", step, err)
	}
	if err := uas.finish(10 * time.Second); err != nil {
		t.Errorf("%s: agent 1002 got no BYE from the shutting-down PBX: %v", step, err)
	}
}
