package guard

import (
	"path"
	"strings"
	"testing"
)

// FuzzFoldersResolve: whatever the name, an accepted one resolves to one of
// the folders and a clean path inside it that cannot climb out.
func FuzzFoldersResolve(f *testing.F) {
	for _, s := range []string{"x.wav", "../x", "/etc/shadow", "sounds/ivr/x.wav", "/srv/snd/a/../../b", "a//b/./c", ".", "..", "/", "sounds", "a\x00b"} {
		f.Add(s)
	}
	folders := NewFolders("sounds", "/srv/snd")
	f.Fuzz(func(t *testing.T, name string) {
		dir, rel, err := folders.Resolve(name)
		if err != nil {
			return
		}
		if dir != "sounds" && dir != "/srv/snd" {
			t.Fatalf("%q resolved to folder %q", name, dir)
		}
		if rel == "" || strings.HasPrefix(rel, "/") || rel != path.Clean(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("%q resolved to %q inside %q", name, rel, dir)
		}
	})
}
