package call

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSeparate(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		delim byte
		max   int
		want  []string
	}{
		{"empty", "", ' ', 0, nil},
		{"blank runs", "  a  b c  ", ' ', 0, []string{"a", "b", "c"}},
		{"blanks alone give one empty token, as in FreeSWITCH", "   ", ' ', 0, []string{""}},
		{"single quotes group and are removed", "XML 'my context' x", ' ', 0, []string{"XML", "my context", "x"}},
		{"blanks inside quotes stay", "' a ' b", ' ', 0, []string{" a ", "b"}},
		{"double quotes are ordinary", `"a b"`, ' ', 0, []string{`"a`, `b"`}},
		{"escaped blank does not split and keeps its backslash", `a\ b c`, ' ', 0, []string{`a\ b`, "c"}},
		{"escaped quote", `a\'b \"c\"`, ' ', 0, []string{"a'b", `"c"`}},
		{"escape names", `x\sy\tz\\ \q \n`, ' ', 0, []string{"x y\tz\\", `\q`, "\n"}},
		{"trailing backslash stays", `a\`, ' ', 0, []string{`a\`}},
		{"blank split: a lone apostrophe still toggles", "O'Brien x", ' ', 0, []string{"O'Brien x"}},
		{"max keeps the rest in the last token", "agent add 1001  callback ", ' ', 3, []string{"agent", "add", "1001  callback"}},
		{"max 1", " a b ", ' ', 1, []string{"a b"}},
		{"max larger than the tokens", "a b", ' ', 8, []string{"a", "b"}},
		{"^^ names another delimiter", "^^:a b:c", ' ', 0, []string{"a b", "c"}},
		{"^^ needs two bytes after it", "^^:", ' ', 0, []string{"^^:"}},
		{"^^ may name a blank", "^^ a,b c", ',', 0, []string{"a,b", "c"}},
		{"comma: every delimiter splits", "a,,b", ',', 0, []string{"a", "", "b"}},
		{"comma: leading delimiter gives an empty token", ",a", ',', 0, []string{"", "a"}},
		{"comma: a delimiter at the end starts nothing", "a,b,", ',', 0, []string{"a", "b"}},
		{"comma: blanks around tokens go", " a , b c ", ',', 0, []string{"a", "b c"}},
		{"comma: quoted delimiter", "a='x,y',b", ',', 0, []string{"a=x,y", "b"}},
		{"comma: escaped delimiter is unescaped", `a\,b,c`, ',', 0, []string{"a,b", "c"}},
		{"comma: an apostrophe without a partner is kept", "O'Brien,x", ',', 0, []string{"O'Brien", "x"}},
		{"comma: max", "a,b,c,d", ',', 2, []string{"a", "b,c,d"}},
		{"brackets are plain characters", "{a=b c}user/1 &park", ' ', 0, []string{"{a=b", "c}user/1", "&park"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Separate(tt.in, tt.delim, tt.max)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Separate(%q, %q, %d) = %q, want %q", tt.in, tt.delim, tt.max, got, tt.want)
			}
		})
	}
}

func TestSeparateNested(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		delim byte
		want  []string
	}{
		{"originate line", " {a=b c}[x=1]user/1001  &playback(/tmp/a b.wav) XML 'my context' ", ' ',
			[]string{"{a=b c}[x=1]user/1001", "&playback(/tmp/a b.wav)", "XML", "my context"}},
		{"groups keep their quotes and escapes", `{a='x y',b=\s}user/1 x`, ' ',
			[]string{`{a='x y',b=\s}user/1`, "x"}},
		{"a quoted value may hold the closer", "{a='x}|y'}user/1|user/2", '|',
			[]string{"{a='x}|y'}user/1", "user/2"}},
		{"nested groups", "{a=${b},c=d}user/1,user/2", ',', []string{"{a=${b},c=d}user/1", "user/2"}},
		{"an apostrophe inside a group is a character", "[n=O'Brien]user/1,user/2", ',',
			[]string{"[n=O'Brien]user/1", "user/2"}},
		{"an unclosed group runs to the end", "{a=b c", ' ', []string{"{a=b c"}},
		{"quotes outside groups win over brackets", "x 'a {b' c", ' ', []string{"x", "a {b", "c"}},
		{"a stray closer is a character", "a} b", ' ', []string{"a}", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SeparateNested(tt.in, tt.delim, 0)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SeparateNested(%q, %q) = %q, want %q", tt.in, tt.delim, got, tt.want)
			}
		})
	}
}

// FreeSWITCH splits an originate line at the blank inside {…}; ccpbx's
// SeparateNested keeps the group whole, Separate does what FreeSWITCH does.
func TestSeparateNestedKeepsGroups(t *testing.T) {
	line := "{origination_caller_id_name=Call Center}user/1001 &park"
	if got, want := Separate(line, ' ', 0), []string{"{origination_caller_id_name=Call", "Center}user/1001", "&park"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Separate = %q, want FreeSWITCH's %q", got, want)
	}
	if got, want := SeparateNested(line, ' ', 0), []string{"{origination_caller_id_name=Call Center}user/1001", "&park"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SeparateNested = %q, want %q", got, want)
	}
}

// FuzzSeparate checks the properties every caller relies on: no panic, at
// most max tokens, the first max-1 tokens the same as without a limit, and
// on plain input the obvious split.
func FuzzSeparate(f *testing.F) {
	for _, s := range []string{"", "   ", "a b", "'a b' c", `a\`, `\'`, "^^:a:b", "a,,b,", "{a='x}|y'}u/1|u/2",
		"[a=1,b='2,3']user/1,user/2", "O'Brien", "((", "x'y'z", `\\\`} {
		f.Add(s, byte(' '), 0)
		f.Add(s, byte(','), 2)
	}
	f.Fuzz(func(t *testing.T, s string, delim byte, max int) {
		for _, nested := range []bool{false, true} {
			sep := Separate
			if nested {
				sep = SeparateNested
			}
			all := sep(s, delim, 0)
			if s != "" && len(all) == 0 {
				t.Fatalf("%q: no tokens", s)
			}
			if max > 0 {
				some := sep(s, delim, max)
				if len(some) > max {
					t.Fatalf("%q max %d: %d tokens", s, max, len(some))
				}
				n := min(len(some), max-1)
				if !reflect.DeepEqual(some[:n], all[:n]) {
					t.Fatalf("%q max %d: %q, unlimited %q", s, max, some, all)
				}
			}
		}
		if strings.HasPrefix(s, "^^") || strings.ContainsAny(s, `\'{[(`) || delim == '\\' || delim == '\'' {
			return
		}
		var want []string
		if delim == ' ' {
			want = strings.FieldsFunc(s, func(r rune) bool { return r == ' ' })
			if len(want) == 0 && s != "" {
				want = []string{""}
			}
		} else if s != "" {
			d := string([]byte{delim})
			want = strings.Split(strings.TrimSuffix(s, d), d)
			for i := range want {
				want[i] = strings.Trim(want[i], " ")
			}
			if s == d {
				want = []string{""}
			}
		}
		if got := SeparateNested(s, delim, 0); !slices.Equal(got, want) || !slices.Equal(Separate(s, delim, 0), want) {
			t.Fatalf("Separate(%q, %q) = %q, want %q", s, delim, got, want)
		}
	})
}

// callcenter_config reads its line with switch_separate_string into at
// most 8 tokens; these are the shapes acd's command table relies on.
func TestSeparateCallcenterConfigLines(t *testing.T) {
	for in, want := range map[string][]string{
		"agent list": {"agent", "list"},
		"agent set status 1001@default 'On Break'":  {"agent", "set", "status", "1001@default", "On Break"},
		`agent set status 1001 On\sBreak`:           {"agent", "set", "status", "1001", "On Break"},
		"agent add 1001 callback":                   {"agent", "add", "1001", "callback"},
		"tier add 3000@default 1001 1 1":            {"tier", "add", "3000@default", "1001", "1", "1"},
		"agent set contact 1001 {a=b,c=d}user/1001": {"agent", "set", "contact", "1001", "{a=b,c=d}user/1001"},
		"a b c d e f g h i  j ":                     {"a", "b", "c", "d", "e", "f", "g", "h i  j"},
		"^^|agent|set|status|1001|Logged Out":       {"agent", "set", "status", "1001", "Logged Out"},
		"  queue   count   members 3000@default   ": {"queue", "count", "members", "3000@default"},
	} {
		if got := Separate(in, ' ', 8); !slices.Equal(got, want) {
			t.Errorf("Separate(%q, ' ', 8) = %q, want %q", in, got, want)
		}
	}
}
