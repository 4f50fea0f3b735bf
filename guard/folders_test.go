package guard

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestFoldersResolve(t *testing.T) {
	base := t.TempDir()
	snd := filepath.Join(base, "sounds")
	extra := filepath.Join(base, "extra")
	for _, d := range []string{snd, extra} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f := NewFolders(snd, extra)
	for _, c := range []struct{ name, dir, rel string }{
		{"ivr/x.wav", filepath.Clean(snd), "ivr/x.wav"},
		{"./ivr//x.wav", filepath.Clean(snd), "ivr/x.wav"},
		{filepath.Join(snd, "ivr/x.wav"), filepath.Clean(snd), "ivr/x.wav"},
		{filepath.Join(extra, "m.wav"), filepath.Clean(extra), "m.wav"},
	} {
		dir, rel, err := f.Resolve(c.name)
		if err != nil || dir != c.dir || rel != c.rel {
			t.Errorf("Resolve(%q) = %q, %q, %v; want %q, %q", c.name, dir, rel, err, c.dir, c.rel)
		}
	}
	for _, bad := range []string{
		"/etc/shadow", "../../etc/passwd", "ivr/../../x", "ivr/..", snd + "/../extra/m.wav",
		base + "/soundsX/a.wav", "a\x00b",
	} {
		if _, _, err := f.Resolve(bad); !errors.Is(err, ErrOutside) {
			t.Errorf("Resolve(%q): %v, want ErrOutside", bad, err)
		}
	}
	// A relative folder is recognised by its spelling.
	r := NewFolders("sounds")
	if dir, rel, err := r.Resolve("sounds/ivr/x.wav"); err != nil || dir != "sounds" || rel != "ivr/x.wav" {
		t.Errorf("relative folder: %q %q %v", dir, rel, err)
	}
}

func TestFoldersReadFileStaysInside(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "scripts")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(base, "secret")
	if err := os.WriteFile(secret, []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ok.lua"), []byte("ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret", filepath.Join(root, "link.lua")); err != nil {
		t.Fatal(err)
	}
	f := NewFolders(root)
	if b, err := f.ReadFile("ok.lua"); err != nil || string(b) != "ok" {
		t.Fatalf("ok.lua: %q %v", b, err)
	}
	if _, err := f.ReadFile("link.lua"); err == nil {
		t.Fatal("a link out of the folder was followed")
	}
	if _, err := f.Check("link.lua"); err == nil {
		t.Fatal("Check allowed a link out of the folder")
	}
	if p, err := f.Check("new.txt"); err != nil || p != filepath.Join(root, "new.txt") {
		t.Fatalf("Check(new.txt) = %q, %v", p, err)
	}
	if _, err := NewFolders(filepath.Join(base, "none")).ReadFile("x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
}
