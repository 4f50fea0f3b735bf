package dialplan

import (
	"errors"
	"testing"
	"time"

	"ccpbx/call"
)

func TestRecordSessionArgs(t *testing.T) {
	for data, want := range map[string]struct {
		path  string
		limit time.Duration
	}{
		"/r/a.wav":            {"/r/a.wav", 0},
		"/r/a.wav +30":        {"/r/a.wav", 30 * time.Second},
		"/r/my call.wav  +5":  {"/r/my call.wav", 5 * time.Second},
		"/r/a+b.wav":          {"/r/a+b.wav", 0},
		"/r/a.wav +x":         {"/r/a.wav +x", 0},
		"/r/a.wav +":          {"/r/a.wav +", 0},
		"  ":                  {"", 0},
		"/r/a.wav +123456789": {"/r/a.wav", 123456789 * time.Second},
	} {
		path, limit := recordSessionArgs(data)
		if path != want.path || limit != want.limit {
			t.Errorf("recordSessionArgs(%q) = %q, %v; want %q, %v", data, path, limit, want.path, want.limit)
		}
	}
}

// recMedia is a fakeMedia that can record; it logs what it is asked.
type recMedia struct {
	*fakeMedia
	fail bool
}

func (m recMedia) StartRecord(path string, mode call.RecordMode, onStop func(int64, error)) error {
	if m.fail {
		return errors.New("read-only file system")
	}
	m.rec.add("record " + path)
	return nil
}

func (m recMedia) StopRecord(path string) error { m.rec.add("stop record " + path); return nil }

func TestRecordSessionApps(t *testing.T) {
	for _, fail := range []bool{false, true} {
		h := newHarness(t, singleContext("default", ext("e", cond("", "",
			"record_session /rec/${caller_id_number}.wav +60", "answer", "stop_record_session all"))), Options{})
		stops, cancel := h.core.Bus.Subscribe(8, func(e *call.Event) bool { return e.Name == "RECORD_STOP" })
		defer cancel()
		ch := h.core.NewChannel(call.ChannelSpec{
			Name: "sofia/test/1001", Direction: call.Inbound, Signalling: fakeSig{h.rec},
			Media: recMedia{fakeMedia: &fakeMedia{rec: h.rec, name: "A"}, fail: fail},
			Vars:  map[string]string{"context": "default", "destination_number": "1", "caller_id_number": "1001"},
			Log:   quietLog(),
		})
		if err := h.core.Route(ch); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("call did not end")
		}
		// The dialplan went on either way: answered, then hung up at its end.
		if !fail {
			h.rec.waitSaw(t, "record /rec/1001.wav")
			h.rec.waitSaw(t, "stop record all")
		} else {
			select {
			case e := <-stops:
				if e.Get("Record-Completion-Cause") != "error" {
					t.Errorf("RECORD_STOP without the error: %v", e.Headers)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no RECORD_STOP for a failed recording")
			}
		}
		h.rec.waitSaw(t, "200")
	}
}
