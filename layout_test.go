package ccpbx

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEListsEveryPackage keeps the README's package table (section
// "For developers: the packages") true: every directory with Go files is a
// row of it, every row is such a directory, and every package has a
// package comment ("Package x …", or "Command x …" for a main package)
// saying its one concept.
func TestREADMEListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## For developers: the packages\n"
	_, section, ok := strings.Cut(string(readme), heading)
	if !ok {
		t.Fatalf("README.md has no %q section", strings.TrimSpace(heading))
	}
	section, _, _ = strings.Cut(section, "\n## ")
	listed := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			listed[name] = true
		}
	}
	found := map[string]bool{}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "artifacts" || name == "node_modules") {
			return filepath.SkipDir
		}
		ents, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		hasGo, documented := false, false
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			hasGo = true
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(path, e.Name()), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			if f.Doc != nil {
				doc, pkg := f.Doc.Text(), strings.TrimSuffix(f.Name.Name, "_test")
				documented = documented || strings.HasPrefix(doc, "Package "+pkg+" ") || strings.HasPrefix(doc, "Command ")
			}
		}
		if !hasGo {
			return nil
		}
		name := filepath.ToSlash(path)
		if name == "." {
			name = "ccpbx"
		}
		found[name] = true
		if !listed[name] {
			t.Errorf("package %s is not in README.md's package table", name)
		}
		if !documented {
			t.Errorf("package %s has no package comment saying its concept", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range listed {
		if !found[name] {
			t.Errorf("README.md's package table lists %s, which has no Go files", name)
		}
	}
}
