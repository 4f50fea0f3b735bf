package config

import (
	"strings"
	"testing"
)

func TestRecordingSettings(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+"[core]\nrecordings_dir = \"/srv/rec\"\n[media]\nrecord_stereo = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Core.RecordingsDir != "/srv/rec" || c.Media.RecordStereo {
		t.Errorf("recordings_dir %q, record_stereo %v", c.Core.RecordingsDir, c.Media.RecordStereo)
	}
	for file, want := range map[string]string{
		"[core]\nrecordings_dir = \"/\"\n":          `t.toml:10: key "core.recordings_dir": "/" would let recordings be written anywhere`,
		"[core]\nrecordings_dir = \"a/../b\"\n":     `t.toml:10: key "core.recordings_dir": "a/../b" must not contain ".."`,
		"[core]\nrecordings_dir = \" \"\n":          `t.toml:10: key "core.recordings_dir": " " must name a folder`,
		"[media]\nrecord_stereo = \"yes\"\n":        `t.toml:10: key "media.record_stereo": must be true or false`,
		"[core]\nrecordings_dir = \"rec\\u0007\"\n": `t.toml:10: key "core.recordings_dir": "rec\a" must name a folder`,
	} {
		_, err := Parse("t.toml", []byte(base+file))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", file, err, want)
		}
	}
}
