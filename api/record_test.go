package api

import (
	"errors"
	"sync"
	"testing"

	"ccpbx/call"
)

// recordingMedia records nothing but remembers which paths are "recording";
// paths under /ro/ cannot be written.
type recordingMedia struct {
	fakeMedia
	mu    *sync.Mutex
	paths map[string]bool
}

func (m recordingMedia) StartRecord(path string, _ call.RecordMode, _ func(int64, error)) error {
	if len(path) > 4 && path[:4] == "/ro/" {
		return errors.New("read-only file system")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paths[path] = true
	return nil
}

func (m recordingMedia) StopRecord(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.paths[path] {
		return errors.New("not recording")
	}
	delete(m.paths, path)
	return nil
}

// uuid_record answers with mod_commands' strings.
func TestUUIDRecordReplies(t *testing.T) {
	core := newTestCore(t, Deps{})
	m := recordingMedia{mu: &sync.Mutex{}, paths: map[string]bool{}}
	ch := core.NewChannel(call.ChannelSpec{Name: "sofia/internal/1001", Direction: call.Inbound, Media: m})
	plain := core.NewChannel(call.ChannelSpec{Name: "sofia/internal/1002", Direction: call.Inbound, Media: fakeMedia{}})
	id := ch.UUID()
	for _, c := range []struct{ line, want string }{
		{"uuid_record", uuidRecordUsage},
		{"uuid_record " + id, uuidRecordUsage},
		{"uuid_record " + id + " start", uuidRecordUsage},
		{"uuid_record " + id + " pause x.wav", uuidRecordUsage},
		{"uuid_record nosuch start x.wav", "-ERR Cannot locate session!\n"},
		{"uuid_record " + id + " start calls/x.wav", "+OK Success\n"},
		{"uuid_record " + id + " START calls/y.wav 30", "+OK Success\n"},
		{"uuid_record " + id + " start calls/z.wav 99999999999999999999999", "+OK Success\n"},
		{"uuid_record " + id + " stop calls/z.wav", "+OK Success\n"},
		{"uuid_record " + id + " start /ro/x.wav", "-ERR Cannot record session!\n"},
		{"uuid_record " + plain.UUID() + " start x.wav", "-ERR Cannot record session!\n"},
		{"uuid_record " + id + " stop calls/x.wav", "+OK Success\n"},
		{"uuid_record " + id + " stop calls/x.wav", "-ERR Cannot stop record session!\n"},
	} {
		if got := api(core, c.line); got != c.want {
			t.Errorf("%s: %q, want %q", c.line, got, c.want)
		}
	}
	if !m.paths["calls/y.wav"] || len(m.paths) != 1 {
		t.Errorf("recording %v", m.paths)
	}
}
