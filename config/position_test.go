package config

import "testing"

func TestLayoutLines(t *testing.T) {
	doc := `# comment [not.a.table]
top = "x # not a comment"
[ a . "b.c" ]   # header comment
k = """
multi [ line
"""
arr = [
  "s]", # comment ]
  '{',
]
[[t]]
n = 1
[[t]]
n = { x = "}" }
[t.sub]
m = 2
[[t.list]]
'lit.key' = 3
dotted.key = 4
`
	lay := lexLayout(doc)
	want := map[string]int{
		"top":                     2,
		`a."b.c"`:                 3,
		`a."b.c".k`:               4,
		`a."b.c".arr`:             7,
		"t":                       11,
		"t[0]":                    11,
		"t[0].n":                  12,
		"t[1]":                    13,
		"t[1].n":                  14,
		"t[1].n.x":                14, // by its parent's line
		"t[1].sub":                15,
		"t[1].sub.m":              16,
		"t[1].list[0]":            17,
		`t[1].list[0]."lit.key"`:  18,
		"t[1].list[0].dotted":     19,
		"t[1].list[0].dotted.key": 19,
	}
	for path, line := range want {
		if got := lay.line(path); got != line {
			t.Errorf("line(%s) = %d, want %d", path, got, line)
		}
	}
	if _, ok := lay.keys["not"]; ok {
		t.Error("a table name inside a comment was taken as a header")
	}
	for _, c := range []struct {
		sub  string
		kind spanKind
	}{
		{"# comment [not", spanComment},
		{"# not a comment", spanBasic},
		{"# header comment", spanComment},
		{"multi [ line", spanMultiBasic},
		{"s]", spanBasic},
		{"# comment ]", spanComment},
		{"{'", spanLiteral},
		{"top", spanBare},
	} {
		off := indexOf(doc, c.sub)
		if got := lay.kindAt(off); got != c.kind {
			t.Errorf("kindAt(%q) = %v, want %v", c.sub, got, c.kind)
		}
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		`a.b[2].c`:          `a.b[2]`,
		`a.b[2]`:            `a.b`,
		`a."x.y"`:           `a`,
		`a."x\".y"`:         `a`,
		`a`:                 ``,
		`p."q".r`:           `p."q"`,
		`directory.user[0]`: `directory.user`,
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%s) = %q, want %q", in, got, want)
		}
	}
}
