package media

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ccpbx/guard"
)

// TestSoundsStayInTheirFolders: playback /etc/shadow, "..", and absolute
// paths outside sounds_dir are refused before anything is opened; a folder
// listed in AllowedRoots is readable by absolute path.
func TestSoundsStayInTheirFolders(t *testing.T) {
	base := t.TempDir()
	dir, extra, other := filepath.Join(base, "sounds"), filepath.Join(base, "extra"), filepath.Join(base, "other")
	wav := wavFile(1, 1, 8000, 16, pcm16(make([]int16, 160)...))
	for _, d := range []string{dir, extra, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "x.wav"), wav, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t, Config{SoundsDir: dir, AllowedRoots: []string{extra}})
	for _, ok := range []string{"x.wav", filepath.Join(dir, "x.wav"), filepath.Join(extra, "x.wav")} {
		if _, err := e.Sound(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"/etc/shadow", "/etc/passwd", "../other/x.wav", filepath.Join(other, "x.wav"), dir + "/../other/x.wav", "../../../../etc/shadow"} {
		_, err := e.Sound(bad)
		if !errors.Is(err, guard.ErrOutside) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v, want a refusal", bad, err)
		}
	}
	// A link inside sounds_dir that points out of it is not followed.
	if err := os.Symlink("../other/x.wav", filepath.Join(dir, "link.wav")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Sound("link.wav"); err == nil {
		t.Error("a link out of sounds_dir was followed")
	}
}
