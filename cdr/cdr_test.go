package cdr

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/store"
	"ccpbx/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenRecords are legs a queue call leaves behind, with the awkward
// values a CSV writer must survive: a caller name with a quote and a comma,
// a line break, an unanswered leg.
var goldenRecords = []store.CDR{
	{CallerIDName: `Smith, "Bob"`, CallerIDNumber: "5550001", DestinationNumber: "3000", Context: "blueivr",
		StartStamp: "2026-11-26 03:45:13", AnswerStamp: "2026-11-26 03:45:13", EndStamp: "2026-11-26 03:45:25",
		Duration: 12, Billsec: 12, HangupCause: "NORMAL_CLEARING", UUID: "0ddb404c-8227-4d5e-93e1-238df1d4da9c",
		BlegUUID: "c94ee0f3-a2c1-4d05-af5d-ba411bef8152", ReadCodec: "PCMU", WriteCodec: "PCMU"},
	{CallerIDName: "3000@default", CallerIDNumber: "5550001", DestinationNumber: "1001", Context: "default",
		StartStamp: "2026-11-26 03:45:13", AnswerStamp: "2026-11-26 03:45:14", EndStamp: "2026-11-26 03:45:25",
		Duration: 12, Billsec: 11, HangupCause: "NORMAL_CLEARING", UUID: "c94ee0f3-a2c1-4d05-af5d-ba411bef8152",
		BlegUUID: "0ddb404c-8227-4d5e-93e1-238df1d4da9c", Accountcode: "1001", ReadCodec: "PCMA", WriteCodec: "PCMA"},
	{CallerIDName: "two\r\nlines", CallerIDNumber: "5550002", DestinationNumber: "1002", Context: "default",
		StartStamp: "2026-11-26 03:46:00", EndStamp: "2026-11-26 03:46:30", Duration: 30,
		HangupCause: "NO_ANSWER", UUID: "5b0c5a36-9a49-4b2e-8a4b-0f2f4a7f0c11"},
}

func TestCSVGolden(t *testing.T) {
	var b []byte
	for i := range goldenRecords {
		b = AppendCSV(b, &goldenRecords[i])
	}
	path := filepath.Join("testdata", "Master.csv.golden")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("Master.csv lines:\n%s\nwant:\n%s", b, want)
	}
	// Any CSV reader gets the values back, one record per line, 15 fields
	// in the template's order.
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(goldenRecords) || len(rows[0]) != 15 {
		t.Fatalf("%d rows of %d fields", len(rows), len(rows[0]))
	}
	if rows[0][0] != `Smith, "Bob"` || rows[0][7] != "12" || rows[1][12] != "1001" || rows[2][0] != "two  lines" || rows[2][5] != "" {
		t.Errorf("parsed back: %q", rows)
	}
	if n := bytes.Count(b, []byte("\n")); n != len(goldenRecords) {
		t.Errorf("%d lines for %d records", n, len(goldenRecords))
	}
}

// settableClock is a Core and Writer clock the test moves.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settableClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type rig struct {
	t     *testing.T
	dir   string
	st    *store.Store
	core  *call.Core
	w     *Writer
	clock *settableClock
}

// newRig runs a writer on a SQLite store in a fresh data directory.
func newRig(t *testing.T, rotate bool) *rig {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return startRig(t, rotate, dir, st)
}

// newRigOn runs a writer on the backend's store and data directory.
func newRigOn(t *testing.T, rotate bool, b storetest.Backend) *rig {
	t.Helper()
	return startRig(t, rotate, b.DataDir(), b.Open(t))
}

func startRig(t *testing.T, rotate bool, dir string, st *store.Store) *rig {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	clk := &settableClock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.Local)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := call.NewCore("cdrhost", log)
	core.Clock = clk.Now
	w, err := New(Options{Store: st, CSVDir: filepath.Join(dir, CSVDirName), RotateDaily: rotate, Log: log, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(core)
	t.Cleanup(func() { w.Close(context.Background()) })
	return &rig{t: t, dir: dir, st: st, core: core, w: w, clock: clk}
}

// leg runs one channel through answer and hangup on the rig's clock:
// created at the current time, answered after answerAfter (none when 0),
// hung up talk later.
func (r *rig) leg(vars map[string]string, answerAfter, talk time.Duration, cause call.Cause) *call.Channel {
	ch := r.core.NewChannel(call.ChannelSpec{Name: "sofia/internal/" + vars["caller_id_number"], Direction: call.Inbound, Vars: vars})
	at := r.clock.Now()
	if answerAfter > 0 {
		at = at.Add(answerAfter)
		r.clock.Set(at)
		if err := ch.Answer(); err != nil {
			r.t.Fatal(err)
		}
	}
	r.clock.Set(at.Add(talk))
	ch.Hangup(cause)
	return ch
}

func (r *rig) flush() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.w.Flush(ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) csv(name string) [][]string {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, CSVDirName, name))
	if err != nil {
		r.t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		r.t.Fatalf("%s: %v\n%s", name, err, b)
	}
	return rows
}

func TestLegsBecomeRowsAndLines(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) { testLegsBecomeRowsAndLines(t, newRigOn(t, false, b)) })
}

func testLegsBecomeRowsAndLines(t *testing.T, r *rig) {
	member := r.leg(map[string]string{"caller_id_name": `O"Neil, Pat`, "caller_id_number": "5550001",
		"destination_number": "3000", "context": "blueivr", "cc_queue": "3000@default", "cc_side": "member",
		"cc_agent": "1001", "cc_queue_joined_epoch": "1795664713", "cc_queue_answered_epoch": "1795664714",
		"cc_cause": "answered", "last_bridge_to": "agent-leg"},
		1500*time.Millisecond, 11*time.Second, call.NormalClearing)
	r.leg(map[string]string{"caller_id_name": "Caller", "caller_id_number": "5550002", "destination_number": "3000",
		"context": "blueivr", "cc_queue": "3000@default", "cc_side": "member", "cc_cause": "cancel",
		"cc_cancel_reason": "BREAK_OUT"}, 0, 7*time.Second, call.OriginatorCancel)
	r.flush()

	recs, err := r.st.RecentCDRs(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d rows, want 2", len(recs))
	}
	m := recs[0]
	if m.UUID != member.UUID() || m.CallerIDName != `O"Neil, Pat` || m.Duration != 12 || m.Billsec != 11 ||
		m.HangupCause != "NORMAL_CLEARING" || m.HangupCauseQ850 != 16 || m.BlegUUID != "agent-leg" ||
		m.CCQueue != "3000@default" || m.CCAgent != "1001" || m.CCSide != "member" || m.CCCause != "answered" ||
		m.CCQueueJoined != 1795664713 || m.CCQueueAnswered != 1795664714 || m.Direction != "inbound" ||
		m.Switchname != "cdrhost" || m.AnswerStamp == "" || m.StartStamp != "2026-11-26 10:00:00" {
		t.Errorf("member row %+v", m)
	}
	a := recs[1]
	if a.Billsec != 0 || a.Duration != 7 || a.AnswerStamp != "" || a.AnswerUepoch != 0 || a.CCCause != "cancel" ||
		a.CCCancelReason != "BREAK_OUT" || a.HangupCause != "ORIGINATOR_CANCEL" {
		t.Errorf("abandoned row %+v", a)
	}

	rows := r.csv(MasterFile)
	if len(rows) != 2 {
		t.Fatalf("%d CSV lines", len(rows))
	}
	want := []string{`O"Neil, Pat`, "5550001", "3000", "blueivr", "2026-11-26 10:00:00", "2026-11-26 10:00:01",
		"2026-11-26 10:00:12", "12", "11", "NORMAL_CLEARING", member.UUID(), "agent-leg", "", "", ""}
	if strings.Join(rows[0], "|") != strings.Join(want, "|") {
		t.Errorf("CSV line\n%q\nwant\n%q", rows[0], want)
	}

	// The API shows the same, in both forms.
	list := r.core.API(context.Background(), "cdr list 1", nil)
	lines := strings.Split(list, "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "uuid|bleg_uuid|direction|") || lines[2] != "+OK" ||
		!strings.Contains(lines[1], "|ORIGINATOR_CANCEL|") || !strings.Contains(lines[1], "|cancel|BREAK_OUT|") {
		t.Errorf("cdr list 1:\n%s", list)
	}
	var doc struct {
		Count int `json:"count"`
		CDRs  []struct {
			ID          int64             `json:"id"`
			Switchname  string            `json:"switchname"`
			ChannelData map[string]string `json:"channel_data"`
			Variables   map[string]string `json:"variables"`
		} `json:"cdrs"`
	}
	js := r.core.API(context.Background(), "cdr list 5 json", nil)
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if doc.Count != 2 || doc.CDRs[0].Variables["billsec"] != "11" || doc.CDRs[0].Variables["cc_agent"] != "1001" ||
		doc.CDRs[0].Variables["caller_id_name"] != `O"Neil, Pat` || doc.CDRs[0].ChannelData["direction"] != "inbound" ||
		doc.CDRs[1].Variables["answer_epoch"] != "0" || doc.CDRs[0].Switchname != "cdrhost" {
		t.Errorf("cdr list json:\n%s", js)
	}
	if _, ok := doc.CDRs[1].Variables["cc_agent"]; ok {
		t.Errorf("unset cc_agent listed: %v", doc.CDRs[1].Variables)
	}
	for _, bad := range []string{"", "list x", "list 0", "show", "list 3 xml"} {
		if got := r.core.API(context.Background(), "cdr "+bad, nil); !strings.HasPrefix(got, "-ERR Usage") {
			t.Errorf("cdr %s = %q", bad, got)
		}
	}
}

func TestEmptyListIsJustOK(t *testing.T) {
	r := newRig(t, false)
	if got := r.core.API(context.Background(), "cdr list", nil); got != "+OK\n" {
		t.Errorf("cdr list = %q", got)
	}
	if got := r.core.API(context.Background(), "cdr list json", nil); !strings.Contains(got, `"count": 0`) || !strings.Contains(got, `"cdrs": []`) {
		t.Errorf("cdr list json = %q", got)
	}
}

// TestCloseDrainsTheQueue: records queued when shutdown begins are all
// written, in both places.
func TestCloseDrainsTheQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) { testCloseDrainsTheQueue(t, newRigOn(t, false, b)) })
}

func testCloseDrainsTheQueue(t *testing.T, r *rig) {
	const n = 300
	for range n {
		r.leg(map[string]string{"caller_id_number": "1001", "destination_number": "1002"}, time.Second, time.Second, call.NormalClearing)
	}
	if err := r.w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := r.st.RecentCDRs(context.Background(), 2*n)
	if err != nil || len(recs) != n {
		t.Fatalf("%d rows after close, want %d (%v)", len(recs), n, err)
	}
	if rows := r.csv(MasterFile); len(rows) != n {
		t.Fatalf("%d CSV lines after close, want %d", len(rows), n)
	}
	// A leg ending after shutdown is not queued any more.
	r.leg(map[string]string{"caller_id_number": "1001"}, 0, time.Second, call.NormalClearing)
	if recs, _ := r.st.RecentCDRs(context.Background(), 2*n); len(recs) != n {
		t.Errorf("%d rows after a post-close leg", len(recs))
	}
}

func TestDailyRotation(t *testing.T) {
	r := newRig(t, true)
	r.leg(map[string]string{"caller_id_number": "1"}, time.Second, time.Second, call.NormalClearing)
	r.leg(map[string]string{"caller_id_number": "2"}, time.Second, time.Second, call.NormalClearing)
	r.flush()
	r.clock.Set(time.Date(2026, 11, 27, 0, 0, 5, 0, time.Local))
	r.leg(map[string]string{"caller_id_number": "3"}, time.Second, time.Second, call.NormalClearing)
	r.flush()

	old := r.csv(MasterFile + ".2026-11-26")
	cur := r.csv(MasterFile)
	if len(old) != 2 || old[0][1] != "1" || old[1][1] != "2" || len(cur) != 1 || cur[0][1] != "3" {
		t.Errorf("rotated %q, current %q", old, cur)
	}
	// The database keeps everything.
	if recs, _ := r.st.RecentCDRs(context.Background(), 10); len(recs) != 3 {
		t.Errorf("%d rows", len(recs))
	}
}

func TestNoCSVWhenDisabled(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	core := call.NewCore("h", slog.New(slog.NewTextHandler(io.Discard, nil)))
	w, err := New(Options{Store: st, Log: core.Log})
	if err != nil {
		t.Fatal(err)
	}
	w.Start(core)
	core.NewChannel(call.ChannelSpec{Direction: call.Inbound}).Hangup(call.NormalClearing)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs, _ := st.RecentCDRs(context.Background(), 10); len(recs) != 1 {
		t.Errorf("%d rows", len(recs))
	}
	if _, err := os.Stat(filepath.Join(dir, CSVDirName)); !os.IsNotExist(err) {
		t.Errorf("cdr-csv created with csv off: %v", err)
	}
}
