package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCatchesBrokenReferences: `ccpbx check` refuses a file whose
// dialplan names an unknown application, a missing lua script or an
// unknown ${api()} command, or whose queue plays a missing moh-sound,
// each with file:line; the shipped file passes.
func TestCheckCatchesBrokenReferences(t *testing.T) {
	b, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", "-config", "../../config.toml"}, nil, &out, &errb); code != 0 {
		t.Fatalf("shipped config: exit %d\n%s", code, errb.String())
	}
	bad := string(b)
	for _, r := range [][2]string{
		{`"lua callcenter.lua"`, `"lua missing.lua"`},
		{`callcenter_config(agent set status`, `callcentre_config(agent set status`},
		{`  "answer",`, `  "anwser",`},
		{`moh-sound = "$${sounds_dir}/ivr/common/music-on-hold.wav"`, `moh-sound = "sounds/nope.wav"`},
	} {
		if !strings.Contains(bad, r[0]) {
			t.Fatalf("shipped config has no %q", r[0])
		}
		bad = strings.Replace(bad, r[0], r[1], 1)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "-config", path}, nil, &out, &errb); code != 1 {
		t.Fatalf("broken config: exit %d, want 1\n%s", code, errb.String())
	}
	for _, want := range []string{
		`lua script "missing.lua"`,
		`${callcentre_config(…)} calls an API command that does not exist`,
		`unknown dialplan application "anwser"`,
		`callcenter.queue[0].moh-sound": "sounds/nope.wav"`,
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, errb.String())
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !strings.HasPrefix(line, path+":") {
			t.Errorf("problem without file:line: %q", line)
		}
	}
}
