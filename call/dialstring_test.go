package call

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDialString(t *testing.T) {
	type leg struct {
		target string
		vars   map[string]string
	}
	tests := []struct {
		name    string
		in      string
		globals map[string]string
		groups  [][]leg
	}{
		{
			name:    "globals, per-leg vars, simultaneous and sequential legs",
			in:      `{a=b,c='d,e'}[x=y]user/1001,user/1002|sofia/internal/sip:1@127.0.0.1`,
			globals: map[string]string{"a": "b", "c": "d,e"},
			groups: [][]leg{
				{
					{"user/1001", map[string]string{"a": "b", "c": "d,e", "x": "y"}},
					{"user/1002", map[string]string{"a": "b", "c": "d,e"}},
				},
				{{"sofia/internal/sip:1@127.0.0.1", map[string]string{"a": "b", "c": "d,e"}}},
			},
		},
		{
			name:    "per-leg vars override globals",
			in:      `{leg_timeout=30,origination_caller_id_number=100}[leg_timeout=5]user/1001,user/1002`,
			globals: map[string]string{"leg_timeout": "30", "origination_caller_id_number": "100"},
			groups: [][]leg{{
				{"user/1001", map[string]string{"leg_timeout": "5", "origination_caller_id_number": "100"}},
				{"user/1002", map[string]string{"leg_timeout": "30", "origination_caller_id_number": "100"}},
			}},
		},
		{
			name:    "double quotes inside single quotes",
			in:      `{n='say "hi, there"',m="it's [ok]"}user/1`,
			globals: map[string]string{"n": `say "hi, there"`, "m": "it's [ok]"},
			groups:  [][]leg{{{"user/1", map[string]string{"n": `say "hi, there"`, "m": "it's [ok]"}}}},
		},
		{
			name:    "quoted brace and bar inside a value",
			in:      `{a='x}|y'}user/1`,
			globals: map[string]string{"a": "x}|y"},
			groups:  [][]leg{{{"user/1", map[string]string{"a": "x}|y"}}}},
		},
		{
			name:    "quoted comma in a per-leg list does not split legs",
			in:      `[a='1,2']user/1,user/2`,
			globals: map[string]string{},
			groups: [][]leg{{
				{"user/1", map[string]string{"a": "1,2"}},
				{"user/2", map[string]string{}},
			}},
		},
		{
			name:    "apostrophe inside a plain value",
			in:      `{origination_caller_id_name=O'Brien}user/1`,
			globals: map[string]string{"origination_caller_id_name": "O'Brien"},
			groups:  [][]leg{{{"user/1", map[string]string{"origination_caller_id_name": "O'Brien"}}}},
		},
		{
			name:    "nested braces in a value",
			in:      `{a=${b},c=d}user/1`,
			globals: map[string]string{"a": "${b}", "c": "d"},
			groups:  [][]leg{{{"user/1", map[string]string{"a": "${b}", "c": "d"}}}},
		},
		{
			name:    "several per-leg lists, spaces, empty legs skipped",
			in:      `  [a=1] [b=2] user/1 , , |error/USER_BUSY `,
			globals: map[string]string{},
			groups: [][]leg{
				{{"user/1", map[string]string{"a": "1", "b": "2"}}},
				{{"error/USER_BUSY", map[string]string{}}},
			},
		},
		{
			name:    "several {} lists, as FreeSWITCH accepts",
			in:      `{a=1} {b=2}user/1`,
			globals: map[string]string{"a": "1", "b": "2"},
			groups:  [][]leg{{{"user/1", map[string]string{"a": "1", "b": "2"}}}},
		},
		{
			name:    "escaped comma and ^^ delimiter in variable lists",
			in:      `{a=x\,y}[^^;b=1,2;c=3]user/1`,
			globals: map[string]string{"a": "x,y"},
			groups:  [][]leg{{{"user/1", map[string]string{"a": "x,y", "b": "1,2", "c": "3"}}}},
		},
		{
			// FreeSWITCH quotes with ' only: a comma inside "…" splits.
			name:    "double quotes do not protect a comma, as in FreeSWITCH",
			in:      `{a="x,y"}user/1`,
			globals: map[string]string{"a": `"x`},
			groups:  [][]leg{{{"user/1", map[string]string{"a": `"x`}}}},
		},
		{
			name:    "entries without = and empty keys are ignored",
			in:      `{novalue,=x,k=}user/1`,
			globals: map[string]string{"k": ""},
			groups:  [][]leg{{{"user/1", map[string]string{"k": ""}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := ParseDialString(tt.in)
			if err != nil {
				t.Fatalf("ParseDialString(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(ds.Vars, tt.globals) {
				t.Errorf("globals = %v, want %v", ds.Vars, tt.globals)
			}
			var got [][]leg
			for _, g := range ds.Groups {
				var lg []leg
				for _, l := range g {
					lg = append(lg, leg{l.Target, l.Vars})
				}
				got = append(got, lg)
			}
			if !reflect.DeepEqual(got, tt.groups) {
				t.Errorf("groups = %v\nwant %v", got, tt.groups)
			}
		})
	}
}

func TestParseDialStringErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"   ",
		"{a=b}",
		"[x=y]",
		",|,",
		"{a=b user/1",
		"{a=b}[x=y user/1",
		"user/1,[x=y user/2",
		"{a='b}user/1",
		"{a={b}user/1",
	} {
		ds, err := ParseDialString(in)
		if err == nil {
			t.Errorf("ParseDialString(%q) = %+v, want an error", in, ds)
			continue
		}
		if !strings.Contains(err.Error(), "dial string") {
			t.Errorf("ParseDialString(%q) error %q does not say what failed", in, err)
		}
	}
}

func TestParseDialStringLegVarsAreIndependent(t *testing.T) {
	ds, err := ParseDialString("{a=1}user/1,user/2")
	if err != nil {
		t.Fatal(err)
	}
	ds.Groups[0][0].Vars["a"] = "changed"
	if ds.Vars["a"] != "1" || ds.Groups[0][1].Vars["a"] != "1" {
		t.Fatalf("legs share their variable maps: %+v", ds)
	}
}

func FuzzParseDialString(f *testing.F) {
	for _, s := range []string{
		`{a=b,c='d,e'}[x=y]user/1001,user/1002|sofia/internal/sip:1@127.0.0.1`,
		`{n='say "hi, there"'}user/1`, `{a={b}user/1`, `[`, `{`, `}`, `]`, `'`, `=''`,
		`{a=${b}}[c="d]"]error/USER_BUSY|user/2`, `|||`, `[a='1,2']user/1,user/2`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := ParseDialString(s)
		if err != nil {
			if ds != nil {
				t.Fatalf("error %v with a result", err)
			}
			return
		}
		if len(ds.Groups) == 0 {
			t.Fatalf("%q: no groups and no error", s)
		}
		for _, g := range ds.Groups {
			if len(g) == 0 {
				t.Fatalf("%q: empty group", s)
			}
			for _, l := range g {
				if strings.TrimSpace(l.Target) == "" || l.Vars == nil {
					t.Fatalf("%q: bad leg %+v", s, l)
				}
			}
		}
	})
}

func TestLegTimeout(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want int
	}{
		{nil, 60},
		{map[string]string{"leg_timeout": "5", "call_timeout": "10", "originate_timeout": "20"}, 5},
		{map[string]string{"call_timeout": "10", "originate_timeout": "20"}, 10},
		{map[string]string{"originate_timeout": "20"}, 20},
		{map[string]string{"leg_timeout": "0", "call_timeout": "x", "originate_timeout": "-3"}, 60},
		{map[string]string{"leg_timeout": "abc", "call_timeout": "7"}, 7},
		// Read with atoi, as FreeSWITCH does (ccpbx ignored "30s" before).
		{map[string]string{"leg_timeout": "30s"}, 30},
	}
	for _, tt := range tests {
		if got := legTimeout(tt.vars); got.Seconds() != float64(tt.want) {
			t.Errorf("legTimeout(%v) = %v, want %ds", tt.vars, got, tt.want)
		}
	}
}
