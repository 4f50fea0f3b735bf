package call

import (
	"errors"
	"sync"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

// recMedia is a fakeMedia that records: it remembers starts and hands
// back the onStop of each path so a test can end it.
type recMedia struct {
	fakeMedia
	mu      sync.Mutex
	modes   map[string]RecordMode
	onStop  map[string]func(int64, error)
	failure error
}

func (m *recMedia) StartRecord(path string, mode RecordMode, onStop func(int64, error)) error {
	if m.failure != nil {
		return m.failure
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.modes[path], m.onStop[path] = mode, onStop
	return nil
}

func (m *recMedia) StopRecord(path string) error {
	m.mu.Lock()
	fn := m.onStop[path]
	delete(m.onStop, path)
	m.mu.Unlock()
	if fn == nil {
		return errors.New("not recording")
	}
	fn(16000, nil)
	return nil
}

func newRecLeg(c *Core) (*Channel, *recMedia) {
	m := &recMedia{modes: map[string]RecordMode{}, onStop: map[string]func(int64, error){}}
	return c.NewChannel(ChannelSpec{Name: "rec", Direction: Inbound, Signalling: &fakeSig{}, Media: m}), m
}

func TestStartRecordingFiresStartAndStop(t *testing.T) {
	c := newTestCore(t)
	starts, stops := collect(t, c, "RECORD_START"), collect(t, c, "RECORD_STOP")
	ch, m := newRecLeg(c)
	if err := ch.StartRecording("a/b.wav"); err != nil {
		t.Fatal(err)
	}
	ch.SetVar("RECORD_STEREO", "false")
	if err := ch.StartRecording("mono.wav"); err != nil {
		t.Fatal(err)
	}
	if m.modes["a/b.wav"] != RecordDefault || m.modes["mono.wav"] != RecordMono {
		t.Errorf("modes %v", m.modes)
	}
	if got := starts(); len(got) != 2 || got[0].Get("Record-File-Path") != "a/b.wav" || got[0].Get("Unique-ID") != ch.UUID() {
		t.Fatalf("RECORD_START events: %v", got)
	}
	if err := ch.StopRecording("a/b.wav"); err != nil {
		t.Fatal(err)
	}
	if err := ch.StopRecording("a/b.wav"); err == nil {
		t.Error("stopping twice succeeded")
	}
	got := stops()
	if len(got) != 1 || got[0].Get("Record-File-Path") != "a/b.wav" || got[0].Get("Record-Completion-Cause") != "" {
		t.Fatalf("RECORD_STOP events: %v", got)
	}
	if ch.Var("record_seconds") != "2" || ch.Var("record_ms") != "2000" || ch.Var("record_samples") != "16000" {
		t.Errorf("record_* variables: %q %q %q", ch.Var("record_seconds"), ch.Var("record_ms"), ch.Var("record_samples"))
	}
}

// record_session's "+N" and uuid_record's limit: the recording stops by
// itself once the limit has passed; without a limit it runs on.
func TestStartRecordingForStopsAtTheLimit(t *testing.T) {
	c := newTestCore(t)
	stops := collect(t, c, "RECORD_STOP")
	ch, m := newRecLeg(c)
	if err := ch.StartRecordingFor("limited.wav", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := ch.StartRecordingFor("open.wav", 0); err != nil {
		t.Fatal(err)
	}
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return len(stops()) > 0 }, "RECORD_STOP of the limited recording")
	m.mu.Lock()
	_, limited := m.onStop["limited.wav"]
	_, open := m.onStop["open.wav"]
	m.mu.Unlock()
	if limited || !open {
		t.Errorf("after the limit: limited.wav recording %v (want false), open.wav %v (want true)", limited, open)
	}
}

// A file that cannot be written: an error and RECORD_STOP saying so; the
// channel stays up.
func TestStartRecordingFailureKeepsTheCall(t *testing.T) {
	c := newTestCore(t)
	starts, stops := collect(t, c, "RECORD_START"), collect(t, c, "RECORD_STOP")
	ch, m := newRecLeg(c)
	m.failure = errors.New("permission denied")
	if err := ch.StartRecording("/nope.wav"); err == nil {
		t.Fatal("no error")
	}
	if len(starts()) != 0 {
		t.Error("RECORD_START for a failed recording")
	}
	got := stops()
	if len(got) != 1 || got[0].Get("Record-Completion-Cause") != "error" || got[0].Get("Record-Error") == "" || got[0].Get("Record-File-Path") != "/nope.wav" {
		t.Fatalf("RECORD_STOP events: %v", got)
	}
	if !ch.Ready() {
		t.Error("the channel went down")
	}
	// Media that cannot record at all.
	plain, _ := newLeg(c, "plain")
	if err := plain.StartRecording("x.wav"); !errors.Is(err, ErrCannotRecord) {
		t.Errorf("plain media: %v", err)
	}
}
