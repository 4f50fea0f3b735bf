package guard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutside is wrapped by every refusal of Folders: the name is absolute
// outside the allowed folders, or climbs out with "..".
var ErrOutside = errors.New("outside the allowed folders")

// Folders keeps file names inside a set of folders. The first folder is the
// primary one: relative names are looked up in it. The others (the
// configuration's extra allowed roots) are reachable by absolute names only.
//
// The rules, the same for scripts and sounds:
//   - a name with a ".." element is refused, wherever it would lead;
//   - an absolute name is allowed only below one of the folders
//     ("$${sounds_dir}/ivr/x.wav" with an absolute sounds_dir is fine);
//   - a relative name that starts with a relative folder's own spelling
//     ("sounds/ivr/x.wav" with sounds_dir "sounds") is taken inside that
//     folder; any other relative name is inside the primary folder.
//
// Files are then opened through os.Root, so a symbolic link that points out
// of its folder is refused too.
type Folders struct {
	roots []folder
}

type folder struct {
	dir string // as configured, cleaned ("." for "")
	abs string // absolute, cleaned
}

// NewFolders confines names to primary ("" means the working directory)
// and the extra folders. Relative folders are taken from the working
// directory at the time of the call.
func NewFolders(primary string, extra ...string) *Folders {
	f := &Folders{}
	for i, d := range append([]string{primary}, extra...) {
		if d == "" && i > 0 {
			continue
		}
		d = filepath.Clean(d)
		abs, err := filepath.Abs(d)
		if err != nil {
			abs = d
		}
		f.roots = append(f.roots, folder{dir: d, abs: abs})
	}
	return f
}

// Dirs returns the folders as configured, primary first.
func (f *Folders) Dirs() []string {
	out := make([]string, len(f.roots))
	for i, r := range f.roots {
		out[i] = r.dir
	}
	return out
}

// Resolve returns the folder that holds name and name's path inside it
// (slash-separated, never empty: "." is the folder itself).
func (f *Folders) Resolve(name string) (dir, rel string, err error) {
	if name == "" {
		return "", "", errors.New("empty file name")
	}
	if strings.ContainsRune(name, 0) {
		return "", "", fmt.Errorf("%q: NUL in file name: %w", name, ErrOutside)
	}
	for _, el := range strings.Split(filepath.ToSlash(name), "/") {
		if el == ".." {
			return "", "", fmt.Errorf("%q: \"..\" is not allowed in file names: %w", name, ErrOutside)
		}
	}
	clean := filepath.Clean(name)
	if filepath.IsAbs(clean) {
		for _, r := range f.roots {
			if rel, ok := inside(r.abs, clean); ok {
				return r.dir, rel, nil
			}
		}
		return "", "", fmt.Errorf("%q: absolute path %w (%s)", name, ErrOutside, strings.Join(f.Dirs(), ", "))
	}
	for _, r := range f.roots {
		if r.dir == "." || filepath.IsAbs(r.dir) {
			continue
		}
		if rel, ok := inside(r.dir, clean); ok {
			return r.dir, rel, nil
		}
	}
	return f.roots[0].dir, filepath.ToSlash(clean), nil
}

// inside reports whether path lies below dir (both clean, both absolute or
// both relative) and returns the remainder.
func inside(dir, path string) (string, bool) {
	if path == dir {
		return ".", true
	}
	prefix := dir
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok || rest == "" {
		return "", false
	}
	return filepath.ToSlash(rest), true
}

// ReadFile resolves name and reads it through an os.Root of its folder. A
// folder that does not exist reads as fs.ErrNotExist, like a missing file.
func (f *Folders) ReadFile(name string) ([]byte, error) {
	dir, rel, err := f.Resolve(name)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(rel)
}

// Check resolves name and makes sure that what it names inside its folder
// (following symbolic links) stays there; it returns the path to open. For
// a name that does not exist yet (a file a script is about to write) its
// parent folder is checked. Opening the returned path is not atomic with
// the check: someone who can replace files inside the folder in between
// could swap in a link; whoever can write there already controls the
// scripts, so this is good enough for Lua's io.open.
func (f *Folders) Check(name string) (string, error) {
	dir, rel, err := f.Resolve(name)
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	if _, err := root.Stat(rel); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		if _, err := root.Stat(filepath.ToSlash(filepath.Dir(rel))); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}
