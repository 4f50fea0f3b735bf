package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ccpbx/api"
	"ccpbx/call"
	"ccpbx/cdr"
	"ccpbx/config"
	"ccpbx/internal/testphone"
	"ccpbx/store"
)

// TestQueueCallRecords places one queue call through real SIP and checks
// what it leaves behind: a CHANNEL_HANGUP_COMPLETE per leg, a database row
// and a Master.csv line per leg with duration and billsec that fit the
// call's timeline as the test saw it, the queue fields, and `cdr list`
// over the event socket as `ccpbx cli -x` runs it.
func TestQueueCallRecords(t *testing.T) {
	var cfg *config.Config
	p := testPBX(t, func(c *config.Config) { cfg = c })
	complete, unsub := p.core.Bus.Subscribe(64, func(e *call.Event) bool { return e.Name == "CHANNEL_HANGUP_COMPLETE" })
	defer unsub()
	// A billing tool on the event socket.
	esl, err := api.Dial(p.esl.Addr().String(), cfg.EventSocket.Password, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer esl.Close()
	if err := esl.Subscribe("plain", "CHANNEL_HANGUP_COMPLETE"); err != nil {
		t.Fatal(err)
	}
	agent := agentPhone(t, p, "1001")
	dialAndWaitHangup(t, agent, "300")
	if r := p.api(t, "callcenter_config agent set wrap_up_time 1001 0"); r != "+OK\n" {
		t.Fatalf("set wrap_up_time: %q", r)
	}

	trunk := testphone.New(t)
	t0 := time.Now()
	cust := trunkCall(t, p, trunk, "5550001")
	in := answerAndTalk(t, agent, cust)
	tAnswered := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cust.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()

	// The complete events: the login call's leg, then the two legs of the
	// queue call, each after its CHANNEL_HANGUP.
	byUUID := map[string]*call.Event{}
	for len(byUUID) < 3 {
		select {
		case e := <-complete:
			byUUID[e.Get("Unique-ID")] = e
		case <-ctx.Done():
			t.Fatalf("%d CHANNEL_HANGUP_COMPLETE events, want 3", len(byUUID))
		}
	}
	var member, agentLeg *call.Event
	for _, e := range byUUID {
		switch e.Get("variable_cc_side") {
		case "member":
			member = e
		case "agent":
			agentLeg = e
		}
	}
	if member == nil || agentLeg == nil {
		t.Fatal("no member or agent leg among the complete events")
	}
	for _, e := range []*call.Event{member, agentLeg} {
		for _, h := range []string{"Hangup-Cause", "variable_duration", "variable_billsec", "variable_start_epoch",
			"variable_answer_epoch", "variable_end_epoch", "variable_start_stamp", "variable_answer_stamp",
			"variable_end_stamp", "variable_hangup_cause", "Caller-Channel-Hangup-Time"} {
			if e.Get(h) == "" {
				t.Errorf("%s leg: no %s", e.Get("variable_cc_side"), h)
			}
		}
		if e.Get("Hangup-Cause") != "NORMAL_CLEARING" {
			t.Errorf("%s leg: Hangup-Cause %s", e.Get("variable_cc_side"), e.Get("Hangup-Cause"))
		}
	}
	if member.Get("variable_cc_cause") != "answered" || member.Get("variable_cc_agent") != "1001" ||
		member.Get("variable_cc_queue") != "3000@default" || member.Get("variable_cc_queue_answered_epoch") == "" {
		t.Errorf("member leg cc variables: cause %q agent %q queue %q answered %q", member.Get("variable_cc_cause"),
			member.Get("variable_cc_agent"), member.Get("variable_cc_queue"), member.Get("variable_cc_queue_answered_epoch"))
	}

	// The event socket delivered the same three, with the headers billing
	// tools read.
	for i := 0; i < 3; i++ {
		select {
		case ce := <-esl.Events():
			e := &call.Event{Headers: ce.Headers}
			bus := byUUID[e.Get("Unique-ID")]
			if e.Get("Event-Name") != "CHANNEL_HANGUP_COMPLETE" || bus == nil {
				t.Fatalf("event socket sent %s for %s", e.Get("Event-Name"), e.Get("Unique-ID"))
			}
			for _, h := range []string{"Hangup-Cause", "variable_duration", "variable_billsec", "variable_start_epoch",
				"variable_answer_epoch", "variable_end_epoch", "variable_start_stamp", "variable_end_stamp"} {
				if e.Get(h) != bus.Get(h) {
					t.Errorf("event socket %s = %q, bus %q", h, e.Get(h), bus.Get(h))
				}
			}
		case <-ctx.Done():
			t.Fatalf("event socket: %d of 3 CHANNEL_HANGUP_COMPLETE", i)
		}
	}

	// duration and billsec are whole seconds of the leg's own clock; they
	// must fit the timeline the test measured around them (±1 s).
	secs := func(d time.Duration) int64 { return int64(d / time.Second) }
	within := func(what string, got string, lo, hi int64) {
		n, err := strconv.ParseInt(got, 10, 64)
		if err != nil || n < lo-1 || n > hi+1 {
			t.Errorf("%s = %q, want %d..%d (±1)", what, got, lo, hi)
		}
	}
	within("member duration", member.Get("variable_duration"), secs(tAnswered.Sub(t0)), secs(t2.Sub(t0))+1)
	within("member billsec", member.Get("variable_billsec"), secs(t2.Sub(tAnswered)), secs(t2.Sub(t0))+1)
	within("agent billsec", agentLeg.Get("variable_billsec"), secs(t2.Sub(tAnswered)), secs(t2.Sub(t0))+1)

	// The same legs through the command line client.
	var out, errOut bytes.Buffer
	if rc := runCLI([]string{"-H", p.esl.Addr().String(), "-p", cfg.EventSocket.Password, "-x", "cdr list 10 json"},
		strings.NewReader(""), &out, &errOut); rc != 0 {
		t.Fatalf("cli rc %d: %s", rc, errOut.String())
	}
	var doc struct {
		Count int `json:"count"`
		CDRs  []struct {
			Variables map[string]string `json:"variables"`
		} `json:"cdrs"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if doc.Count != 3 {
		t.Fatalf("cdr list: %d records, want 3\n%s", doc.Count, out.String())
	}
	rows := map[string]map[string]string{}
	for _, c := range doc.CDRs {
		rows[c.Variables["uuid"]] = c.Variables
	}
	for _, e := range []*call.Event{member, agentLeg} {
		r := rows[e.Get("Unique-ID")]
		if r == nil || r["duration"] != e.Get("variable_duration") || r["billsec"] != e.Get("variable_billsec") ||
			r["cc_side"] != e.Get("variable_cc_side") || r["cc_agent"] != "1001" || r["cc_queue"] != "3000@default" {
			t.Errorf("row of %s leg %v does not match its event", e.Get("variable_cc_side"), r)
		}
	}
	if rows[member.Get("Unique-ID")]["bleg_uuid"] != agentLeg.Get("Unique-ID") {
		t.Errorf("member bleg_uuid %q, want the agent leg", rows[member.Get("Unique-ID")]["bleg_uuid"])
	}

	// And in Master.csv: one line per leg, uuid in the 11th field.
	b, err := os.ReadFile(filepath.Join(cfg.Core.DataDir, cdr.CSVDirName, cdr.MasterFile))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(lines) != 3 {
		t.Fatalf("Master.csv has %d lines, want 3:\n%s", len(lines), b)
	}
	for _, l := range lines {
		e := byUUID[l[10]]
		if e == nil || l[7] != e.Get("variable_duration") || l[8] != e.Get("variable_billsec") || l[9] != "NORMAL_CLEARING" {
			t.Errorf("Master.csv line %q does not match its leg", l)
		}
	}
}

// TestSecondPBXOnOneDataDirRefused: a second ccpbx on the same data_dir
// stops before the database with an error naming the first one's pid; once
// the first has shut down, the directory is free.
func TestSecondPBXOnOneDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	first := testPBX(t, func(c *config.Config) { c.Core.DataDir = dir })
	cfg, err := config.Load("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Profiles {
		cfg.Profiles[i].ListenIP, cfg.Profiles[i].AdvertiseIP, cfg.Profiles[i].Port = "127.0.0.1", "127.0.0.1", 0
	}
	cfg.EventSocket.Listen = "127.0.0.1:0"
	cfg.Core.DataDir = dir
	log := newLogger(config.Core{LogLevel: "error"}, io.Discard)
	_, err = start(context.Background(), cfg, log)
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second start: %v, want refusal naming pid %d", err, os.Getpid())
	}
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	first.shutdown(sctx)
	again, err := start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start after the first shut down: %v", err)
	}
	again.shutdown(sctx)
}
