package call

import "strings"

// This file is ccpbx's one argument tokenizer. FreeSWITCH reads API lines,
// application data and dial strings with switch_separate_string, and ccpbx
// reads them the same way, so a line that works on fs_cli works here.
//
// The rules of Separate, as FreeSWITCH applies them:
//
//   - A line starting "^^" followed by at least two more bytes uses the byte
//     after "^^" as the delimiter instead ("^^:a b:c" gives "a b", "c").
//   - A blank delimiter (' ') splits at runs of blanks and ignores blanks
//     before the first and after the last token. Any other delimiter splits
//     at every occurrence, so "a,,b" has an empty middle token; a delimiter
//     at the very end does not start another token.
//   - A single quote groups: delimiters inside '…' do not split. With a
//     blank delimiter every quote toggles; otherwise (and when the quotes are
//     removed) a quote only counts if another one follows it, so O'Brien
//     keeps its apostrophe. Double quotes are ordinary characters.
//   - A backslash protects the next byte from splitting. In the token it
//     then stands for: \' \" \\ and \<delim> the byte itself (not for a
//     blank delimiter), \n \r \t the control characters, \s a blank; before
//     anything else it stays as written.
//   - Each token loses its counted quotes and its leading and trailing
//     blanks (blanks inside quotes stay).
//   - With max > 0 there are at most max tokens and the last one is the rest
//     of the line, cleaned the same way; max <= 0 means no limit.
//
// One FreeSWITCH quirk is kept because callers may count on the token
// count: a line of blanks alone gives one empty token, as in FreeSWITCH.

// Separate splits s at delim the way FreeSWITCH's switch_separate_string
// does (see the rules above). It never returns an empty slice for a
// non-empty s.
func Separate(s string, delim byte, max int) []string {
	return separate(s, delim, max, false)
}

// SeparateNested is Separate for lines that carry dial strings and
// application calls: a group opened by '{', '[' or '(' outside quotes runs
// to its matching closer and is one opaque piece of its token. Inside a
// group nothing splits, nothing is unquoted or unescaped, a quote that
// follows '=' (blanks allowed) quotes a value up to the same quote again,
// and a backslash protects the next byte; the group's owner (the dial-string
// parser, the application) reads it. An unclosed group runs to the end of
// s.
//
// FreeSWITCH splits "originate {a=b c}user/1 &park" at the blank inside the
// braces; ccpbx keeps the group whole (TestSeparateNestedKeepsGroups names
// the difference). For the ',' of a dial string FreeSWITCH protects commas
// inside [...] the same way.
func SeparateNested(s string, delim byte, max int) []string {
	return separate(s, delim, max, true)
}

func closerOf(b byte) byte {
	switch b {
	case '{':
		return '}'
	case '[':
		return ']'
	case '(':
		return ')'
	}
	return 0
}

// groupEnd scans the group opened at s[i]. It returns the index of its
// closer and true, or len(s)-1 and false when it never closes.
func groupEnd(s string, i int) (int, bool) {
	open := s[i]
	shut := closerOf(open)
	depth := 0
	var q byte
	for j := i; j < len(s); j++ {
		b := s[j]
		switch {
		case b == '\\':
			j++
		case q != 0:
			if b == q {
				q = 0
			}
		case (b == '\'' || b == '"') && followsEquals(s[i:j]):
			q = b
		case b == open:
			depth++
		case b == shut:
			depth--
			if depth == 0 {
				return j, true
			}
		}
	}
	return len(s) - 1, false
}

// followsEquals reports whether s ends in '=' and optional blanks: a quote
// there opens a quoted value, anywhere else it is an apostrophe.
func followsEquals(s string) bool {
	s = strings.TrimRight(s, " ")
	return s != "" && s[len(s)-1] == '='
}

// separate finds the token spans the way FreeSWITCH's state machines do,
// then cleans each token.
func separate(s string, delim byte, max int, nested bool) []string {
	if len(s) >= 4 && s[0] == '^' && s[1] == '^' {
		delim, s = s[2], s[3:]
	}
	if s == "" {
		return nil
	}
	if max <= 0 {
		max = len(s) + 1 // more tokens than s can hold
	}
	blank := delim == ' '
	var out []string
	inq := false
	i := 0
	for i < len(s) && len(out) < max {
		start := i
		if len(out) == max-1 {
			out = append(out, s[start:])
			break
		}
		if blank {
			for i < len(s) && s[i] == ' ' {
				i++
			}
		}
		end := len(s)
	scan:
		for i < len(s) {
			b := s[i]
			switch {
			case b == '\\':
				i++
			case b == '\'' && (blank || inq || strings.IndexByte(s[i+1:], '\'') >= 0):
				inq = !inq
			case inq:
			case b == delim:
				end = i
				i++
				break scan
			case nested && closerOf(b) != 0:
				i, _ = groupEnd(s, i)
			}
			i++
		}
		if i > len(s) {
			i = len(s) // a backslash ended s
		}
		out = append(out, s[start:end])
		if blank {
			for i < len(s) && s[i] == ' ' {
				i++
			}
		}
	}
	cd := delim
	if blank {
		cd = 0 // FreeSWITCH cleans blank-split tokens with no delimiter
	}
	for k, t := range out {
		out[k] = cleanup(t, cd, nested)
	}
	return out
}

// cleanup removes the counted quotes, leading and trailing blanks and
// escapes of one token (FreeSWITCH's cleanup_separated_string).
func cleanup(t string, delim byte, nested bool) string {
	i := 0
	for i < len(t) && t[i] == ' ' {
		i++
	}
	b := make([]byte, 0, len(t)-i)
	keep := 0 // bytes of b that survive: up to the last non-blank or quote
	inq := false
	for ; i < len(t); i++ {
		c := t[i]
		if c == '\\' && i+1 < len(t) {
			if e, ok := unescape(t[i+1], delim); ok {
				b = append(b, e)
				keep = len(b)
				i++
				continue
			}
		}
		switch {
		case c == '\'' && (inq || strings.IndexByte(t[i+1:], '\'') >= 0):
			inq = !inq
			if inq {
				keep = len(b)
			}
		case nested && !inq && closerOf(c) != 0:
			j, _ := groupEnd(t, i)
			b = append(b, t[i:j+1]...)
			keep = len(b)
			i = j
		default:
			b = append(b, c)
			if c != ' ' || inq {
				keep = len(b)
			}
		}
	}
	return string(b[:keep])
}

// unescape reads the byte after a backslash; false leaves the backslash.
func unescape(e, delim byte) (byte, bool) {
	switch {
	case e == '\'' || e == '"' || e == '\\' || (delim != 0 && e == delim):
		return e, true
	case e == 'n':
		return '\n', true
	case e == 'r':
		return '\r', true
	case e == 't':
		return '\t', true
	case e == 's':
		return ' ', true
	}
	return e, false
}
