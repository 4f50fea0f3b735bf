package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/queuelog"
)

// queueFigures is the part of `queue stats … json` this test reads.
type queueFigures struct {
	Offered          int64 `json:"offered"`
	Answered         int64 `json:"answered"`
	AnsweredWithinSL int64 `json:"answered_within_sl"`
	Abandoned        int64 `json:"abandoned"`
	ShortAbandoned   int64 `json:"short_abandoned"`
	Handled          int64 `json:"handled"`
	TalkTime         int64 `json:"talk_time"`
	MaxWait          int64 `json:"max_wait"`
}

func queueStats(t *testing.T, p *pbx) queueFigures {
	t.Helper()
	out := p.api(t, "callcenter_config queue stats 3000@default today json")
	var f queueFigures
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("queue stats: %v\n%s", err, out)
	}
	return f
}

// TestStatisticsAcrossRestart places queue calls through real SIP, one
// answered and one abandoned, restarts the PBX on the same data_dir and
// checks that the statistics, queue list's counters and the agent's
// Available status (its config entry has no status) are what they were,
// and that queue_log tells the story in Asterisk's events.
func TestStatisticsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	edit := func(c *config.Config) {
		c.Core.DataDir = dir
		for i := range c.Callcenter.Agents {
			c.Callcenter.Agents[i].Status = ""
		}
	}
	p := testPBX(t, edit)
	agent := agentPhone(t, p, "1001")
	dialAndWaitHangup(t, agent, "300")
	if r := p.api(t, "callcenter_config agent set wrap_up_time 1001 0"); r != "+OK\n" {
		t.Fatalf("set wrap_up_time: %q", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	trunk := testphone.New(t)
	cust := trunkCall(t, p, trunk, "5550001")
	in := answerAndTalk(t, agent, cust)
	if err := cust.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	// The agent's phone is down before the caller's app has told the ACD
	// which side ended the bridge (queue_log's COMPLETE line waits for it);
	// the break below must come after that, as it would for a real agent.
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return strings.TrimSpace(p.api(t, "show channels count")) == "0 total." },
		"both legs of the answered call gone")
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return queueStats(t, p).Handled == 1 }, "the answered call's end counted")
	// The COMPLETE line waits for the caller's app to say which side hung
	// up, which may reach the ACD after the legs are gone and the end is
	// counted: wait for it too, or the break's PAUSE can come first.
	pbxtest.WaitFor(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, queuelog.FileName))
		return strings.Contains(string(b), "|COMPLETECALLER|")
	}, "the answered call's COMPLETECALLER in queue_log")
	if r := p.api(t, "callcenter_config agent set status 1001 'On Break'"); r != "+OK\n" {
		t.Fatalf("on break: %q", r)
	}
	gone := trunkCall(t, p, trunk, "5550002")
	if err := gone.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 5*time.Second, func() bool { return queueStats(t, p).Abandoned == 1 }, "the abandon counted")
	if r := p.api(t, "callcenter_config agent set status 1001 Available"); r != "+OK\n" {
		t.Fatalf("available: %q", r)
	}
	before := queueStats(t, p)
	if before.Offered != 2 || before.Answered != 1 || before.Abandoned != 1 {
		t.Fatalf("before restart: %+v, want 2 offered, 1 answered, 1 abandoned", before)
	}
	list := p.api(t, "callcenter_config queue list")

	sctx, scancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer scancel()
	p.shutdown(sctx)
	p2 := testPBX(t, edit)
	if after := queueStats(t, p2); after != before {
		t.Errorf("after restart: %+v\nbefore: %+v", after, before)
	}
	if got := p2.api(t, "callcenter_config queue list"); got != list {
		t.Errorf("queue list after restart:\n%s\nbefore:\n%s", got, list)
	}
	if got := agentField(t, p2, "1001", "status"); got != "Available" {
		t.Errorf("1001 after restart: %q, want Available", got)
	}

	// queue_log is written by its own goroutine: the second start's
	// QUEUESTART arrives a moment after the PBX answers.
	want := "QUEUESTART AGENTLOGIN ENTERQUEUE CONNECT COMPLETECALLER PAUSE ENTERQUEUE ABANDON UNPAUSE QUEUESTART"
	var got string
	var b []byte
	pbxtest.Until(5*time.Second, func() bool {
		var err error
		if b, err = os.ReadFile(filepath.Join(dir, queuelog.FileName)); err != nil {
			t.Fatal(err)
		}
		var events []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(l, "|")
			if len(f) < 5 {
				t.Fatalf("queue_log line %q", l)
			}
			events = append(events, f[4])
		}
		got = strings.Join(events, " ")
		return got == want
	})
	if got != want {
		t.Errorf("queue_log events:\n got %s\nwant %s\n%s", got, want, b)
	}
}
