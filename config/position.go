package config

import (
	"sort"
	"strconv"
	"strings"
)

// The TOML decoder reports positions only for syntax errors, and its key
// positions forget which element of an array of tables a key belongs to. So
// the file is lexed once more here, just enough to know, for every key, the
// line it is written on ("profile[1].port" → 40), and which byte ranges are
// strings or comments (the $${var} preprocessor needs to know how to escape
// a value, and must leave comments alone). The decoder has the last word on
// syntax: this lexer never rejects anything, and on input it does not
// understand it skips to the next line.

// spanKind says what a byte range of the file is.
type spanKind int

const (
	spanBare         spanKind = iota // not in a string or comment
	spanBasic                        // "…"
	spanLiteral                      // '…'
	spanMultiBasic                   // """…"""
	spanMultiLiteral                 // '''…'''
	spanComment                      // # …
)

type span struct {
	start, end int // byte offsets, end exclusive
	kind       spanKind
}

// layout is what the lexer learned about one file.
type layout struct {
	keys  map[string]int // key path → 1-based line
	spans []span         // strings and comments, in file order
	// lineStarts[i] is the byte offset where line i+1 begins.
	lineStarts []int
}

// kindAt tells whether byte offset off is inside a string or a comment.
func (l *layout) kindAt(off int) spanKind {
	i := sort.Search(len(l.spans), func(i int) bool { return l.spans[i].end > off })
	if i < len(l.spans) && l.spans[i].start <= off {
		return l.spans[i].kind
	}
	return spanBare
}

// lineAt returns the 1-based line of byte offset off.
func (l *layout) lineAt(off int) int {
	return sort.Search(len(l.lineStarts), func(i int) bool { return l.lineStarts[i] > off })
}

// line returns the line of key path, or of its nearest ancestor the lexer
// saw (keys inside inline tables are only known by the line of their
// table), or 0.
func (l *layout) line(path string) int {
	for path != "" {
		if n, ok := l.keys[path]; ok {
			return n
		}
		path = parentPath(path)
	}
	return 0
}

// bareKey matches TOML bare keys; other key names are quoted in paths.
func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// joinKey appends key name to path the way errors print it:
// callcenter.queue[0].strategy, directory.user[1].params."odd key".
func joinKey(path, name string) string {
	if !isBareKey(name) {
		name = strconv.Quote(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// indexKey appends an array index to path.
func indexKey(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parentPath drops the last element (a name or an index) of path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
		return ""
	}
	// Find the last '.' that is not inside a quoted name.
	last, inQuote := -1, false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '.' && !inQuote:
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	return path[:last]
}

// lexLayout scans TOML text; it never fails and always terminates.
func lexLayout(text string) *layout {
	lx := &lexer{s: text, l: &layout{keys: map[string]int{}, lineStarts: []int{0}}, counts: map[string]int{}}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			lx.l.lineStarts = append(lx.l.lineStarts, i+1)
		}
	}
	lx.run()
	return lx.l
}

type lexer struct {
	s      string
	i      int
	l      *layout
	table  string         // current table path, with indices
	counts map[string]int // array-of-tables path → elements seen
}

func (lx *lexer) line() int { return lx.l.lineAt(lx.i) }

func (lx *lexer) run() {
	for lx.i < len(lx.s) {
		start := lx.i
		lx.skipSpace(true)
		if lx.i >= len(lx.s) {
			return
		}
		switch lx.s[lx.i] {
		case '#':
			lx.comment()
		case '[':
			lx.header()
		default:
			lx.keyValue()
		}
		if lx.i == start { // no progress: give up on this line
			lx.skipLine()
		}
	}
}

// skipSpace skips blanks, and newlines too when nl is set.
func (lx *lexer) skipSpace(nl bool) {
	for lx.i < len(lx.s) {
		switch lx.s[lx.i] {
		case ' ', '\t', '\r':
		case '\n':
			if !nl {
				return
			}
		default:
			return
		}
		lx.i++
	}
}

func (lx *lexer) skipLine() {
	for lx.i < len(lx.s) && lx.s[lx.i] != '\n' {
		lx.i++
	}
	if lx.i < len(lx.s) {
		lx.i++
	}
}

func (lx *lexer) comment() {
	start := lx.i
	for lx.i < len(lx.s) && lx.s[lx.i] != '\n' {
		lx.i++
	}
	lx.l.spans = append(lx.l.spans, span{start, lx.i, spanComment})
}

// endOfLine consumes trailing blanks and a comment after a header or value.
func (lx *lexer) endOfLine() {
	lx.skipSpace(false)
	if lx.i < len(lx.s) && lx.s[lx.i] == '#' {
		lx.comment()
	}
	lx.skipLine()
}

// header handles [table] and [[array.of.tables]].
func (lx *lexer) header() {
	line := lx.line()
	array := strings.HasPrefix(lx.s[lx.i:], "[[")
	if array {
		lx.i += 2
	} else {
		lx.i++
	}
	parts, ok := lx.key()
	if !ok {
		lx.skipLine()
		return
	}
	lx.skipSpace(false)
	closing := "]"
	if array {
		closing = "]]"
	}
	if !strings.HasPrefix(lx.s[lx.i:], closing) {
		lx.skipLine()
		return
	}
	lx.i += len(closing)
	path := ""
	for j, p := range parts {
		path = joinKey(path, p)
		if j == len(parts)-1 && array {
			n := lx.counts[path]
			lx.counts[path] = n + 1
			lx.record(path, line)
			path = indexKey(path, n)
		} else if n := lx.counts[path]; n > 0 {
			path = indexKey(path, n-1)
		}
		lx.record(path, line)
	}
	lx.table = path
	lx.endOfLine()
}

// record keeps the first line a path was seen on.
func (lx *lexer) record(path string, line int) {
	if _, ok := lx.l.keys[path]; !ok {
		lx.l.keys[path] = line
	}
}

// key reads a dotted key: bare, "basic" or 'literal' parts.
func (lx *lexer) key() ([]string, bool) {
	var parts []string
	for {
		lx.skipSpace(false)
		if lx.i >= len(lx.s) {
			return nil, false
		}
		switch c := lx.s[lx.i]; {
		case c == '"':
			start := lx.i
			lx.basicString()
			s, err := strconv.Unquote(lx.s[start:lx.i])
			if err != nil {
				s = strings.Trim(lx.s[start:lx.i], `"`)
			}
			parts = append(parts, s)
		case c == '\'':
			start := lx.i
			lx.literalString()
			parts = append(parts, strings.Trim(lx.s[start:lx.i], "'"))
		default:
			start := lx.i
			for lx.i < len(lx.s) && isBareKey(lx.s[lx.i:lx.i+1]) {
				lx.i++
			}
			if lx.i == start {
				return nil, false
			}
			parts = append(parts, lx.s[start:lx.i])
		}
		lx.skipSpace(false)
		if lx.i < len(lx.s) && lx.s[lx.i] == '.' {
			lx.i++
			continue
		}
		return parts, true
	}
}

func (lx *lexer) keyValue() {
	line := lx.line()
	parts, ok := lx.key()
	if !ok || lx.i >= len(lx.s) || lx.s[lx.i] != '=' {
		lx.skipLine()
		return
	}
	lx.i++
	path := lx.table
	for _, p := range parts {
		path = joinKey(path, p)
		lx.record(path, line)
	}
	lx.value()
	lx.endOfLine()
}

// value skips one value, recording the strings and comments in it. Arrays
// and inline tables may span lines.
func (lx *lexer) value() {
	depth := 0
	for lx.i < len(lx.s) {
		switch lx.s[lx.i] {
		case '"':
			lx.basicString()
			continue
		case '\'':
			lx.literalString()
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth <= 0 {
				lx.i++
				return
			}
		case '#':
			if depth == 0 {
				return
			}
			lx.comment()
			continue
		case '\n':
			if depth <= 0 {
				return
			}
		}
		lx.i++
	}
}

// basicString consumes "…" or """…""" starting at lx.i.
func (lx *lexer) basicString() {
	start := lx.i
	if strings.HasPrefix(lx.s[lx.i:], `"""`) {
		lx.i += 3
		for lx.i < len(lx.s) {
			if lx.s[lx.i] == '\\' {
				lx.i += 2
				continue
			}
			if strings.HasPrefix(lx.s[lx.i:], `"""`) {
				lx.i += 3
				// Up to two quotes may close the content itself.
				for k := 0; k < 2 && lx.i < len(lx.s) && lx.s[lx.i] == '"'; k++ {
					lx.i++
				}
				break
			}
			lx.i++
		}
		lx.i = min(lx.i, len(lx.s))
		lx.l.spans = append(lx.l.spans, span{start, lx.i, spanMultiBasic})
		return
	}
	lx.i++
	for lx.i < len(lx.s) && lx.s[lx.i] != '\n' {
		c := lx.s[lx.i]
		lx.i++
		if c == '\\' && lx.i < len(lx.s) && lx.s[lx.i] != '\n' {
			lx.i++
		} else if c == '"' {
			break
		}
	}
	lx.l.spans = append(lx.l.spans, span{start, lx.i, spanBasic})
}

// literalString consumes a TOML literal string, one-line ('…') or multi-line
// (three apostrophes on each side), starting at lx.i.
func (lx *lexer) literalString() {
	start := lx.i
	if strings.HasPrefix(lx.s[lx.i:], "'''") {
		lx.i += 3
		if j := strings.Index(lx.s[lx.i:], "'''"); j >= 0 {
			lx.i += j + 3
			for k := 0; k < 2 && lx.i < len(lx.s) && lx.s[lx.i] == '\''; k++ {
				lx.i++
			}
		} else {
			lx.i = len(lx.s)
		}
		lx.l.spans = append(lx.l.spans, span{start, lx.i, spanMultiLiteral})
		return
	}
	lx.i++
	for lx.i < len(lx.s) && lx.s[lx.i] != '\n' {
		c := lx.s[lx.i]
		lx.i++
		if c == '\'' {
			break
		}
	}
	lx.l.spans = append(lx.l.spans, span{start, lx.i, spanLiteral})
}
