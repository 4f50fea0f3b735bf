package config

import (
	"fmt"
	"sort"
	"strings"
)

// FreeSWITCH expands $${name} from vars.xml while reading its XML, before
// parsing it. ccpbx does the same with [vars]: every $${name} outside a
// comment is replaced in the text before it is decoded, so a variable can
// stand for a whole value (port = $${internal_sip_port}) or for part of a
// string. The replacement is escaped for the kind of string it lands in and
// never introduces a newline, so every line keeps its number and errors
// point at the line the user wrote. A variable's value may itself use
// earlier or later variables; a cycle or an undefined name is an error.

// MaxVarLen bounds a [vars] value after its own references are expanded.
const MaxVarLen = 64 << 10

// varRef is one $${…} occurrence in the file.
type varRef struct {
	start, end int // byte offsets of "$${" and one past "}"
	name       string
	kind       spanKind
	malformed  bool
}

func isVarNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// scanVarRefs finds the $${…} references of text outside comments.
func scanVarRefs(text string, lay *layout) []varRef {
	var refs []varRef
	for i := 0; ; {
		j := strings.Index(text[i:], "$${")
		if j < 0 {
			return refs
		}
		start := i + j
		kind := spanBare
		if lay != nil {
			kind = lay.kindAt(start)
		}
		k := start + 3
		for k < len(text) && isVarNameByte(text[k]) {
			k++
		}
		r := varRef{start: start, end: k, name: text[start+3 : k], kind: kind}
		if k < len(text) && text[k] == '}' && k > start+3 {
			r.end = k + 1
		} else {
			r.malformed = true
			r.end = start + 3
		}
		if kind != spanComment {
			refs = append(refs, r)
		}
		i = r.end
	}
}

// placeholderText replaces bare references with a neutral scalar so the
// file can be decoded once to read [vars] before the values are known.
func placeholderText(text string, refs []varRef) string {
	var b strings.Builder
	last := 0
	for _, r := range refs {
		if r.kind != spanBare {
			continue
		}
		b.WriteString(text[last:r.start])
		b.WriteString("0")
		last = r.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// resolveVars expands references inside the [vars] values themselves.
func resolveVars(raw map[string]string, el *errorList) map[string]string {
	out := make(map[string]string, len(raw))
	state := map[string]int{} // 1 resolving, 2 done
	var resolve func(name string, chain []string) (string, bool)
	resolve = func(name string, chain []string) (string, bool) {
		switch state[name] {
		case 2:
			return out[name], true
		case 1:
			el.at(joinKey("vars", chain[0]), "$${%s} refers to itself (%s)", chain[0], strings.Join(append(chain[:len(chain):len(chain)], name), " → "))
			return "", false
		}
		state[name] = 1
		v := raw[name]
		var b strings.Builder
		ok := true
		last := 0
		for _, r := range scanVarRefs(v, nil) {
			b.WriteString(v[last:r.start])
			last = r.end
			if r.malformed {
				el.at(joinKey("vars", name), "malformed $${…} reference: want $${name}")
				ok = false
				continue
			}
			if _, defined := raw[r.name]; !defined {
				el.at(joinKey("vars", name), "$${%s} is not defined in [vars]", r.name)
				ok = false
				continue
			}
			s, good := resolve(r.name, append(chain[:len(chain):len(chain)], name))
			if !good {
				ok = false
				continue
			}
			b.WriteString(s)
			if b.Len() > MaxVarLen {
				// Variables that repeat each other would double at every
				// level; stop before memory does.
				el.at(joinKey("vars", name), "value is longer than %d bytes after expansion", MaxVarLen)
				ok = false
				break
			}
		}
		b.WriteString(v[last:])
		state[name] = 2
		out[name] = b.String()
		return out[name], ok
	}
	names := make([]string, 0, len(raw))
	for n := range raw {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if state[n] == 0 {
			resolve(n, nil)
		}
	}
	return out
}

// expandVars replaces every reference in text by its value, escaped for
// where it stands. Problems are reported at the reference's line.
func expandVars(text string, lay *layout, refs []varRef, vars map[string]string, el *errorList) string {
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, r := range refs {
		b.WriteString(text[last:r.start])
		last = r.end
		line := lay.lineAt(r.start)
		key := keyOnLine(lay, line)
		if r.malformed {
			el.atLine(line, key, fmt.Errorf("malformed $${…} reference: want $${name} (letters, digits, _ - .)"))
			continue
		}
		v, ok := vars[r.name]
		if !ok {
			el.atLine(line, key, fmt.Errorf("$${%s} is not defined in [vars]", r.name))
			continue
		}
		enc, err := encodeVar(v, r.kind)
		if err != nil {
			el.atLine(line, key, fmt.Errorf("$${%s}: %w", r.name, err))
			continue
		}
		b.WriteString(enc)
		if b.Len() > 2*MaxFileSize {
			el.atLine(line, key, fmt.Errorf("the file is longer than %d bytes after $${…} expansion", 2*MaxFileSize))
			return ""
		}
	}
	b.WriteString(text[last:])
	return b.String()
}

// encodeVar escapes v for the kind of text it replaces a reference in.
func encodeVar(v string, kind spanKind) (string, error) {
	switch kind {
	case spanBasic, spanMultiBasic:
		var b strings.Builder
		for _, c := range v {
			switch {
			case c == '\\':
				b.WriteString(`\\`)
			case c == '"':
				b.WriteString(`\"`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\r':
				b.WriteString(`\r`)
			case c < 0x20 || c == 0x7f:
				fmt.Fprintf(&b, `\u%04X`, c)
			default:
				b.WriteRune(c)
			}
		}
		return b.String(), nil
	case spanLiteral, spanMultiLiteral:
		for _, c := range v {
			if c == '\'' || (c < 0x20 && c != '\t') || c == 0x7f {
				return "", fmt.Errorf("value %q cannot stand inside a 'literal' string; use a \"basic\" string", v)
			}
		}
		return v, nil
	default:
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("value %q has a line break and stands outside a string", v)
		}
		return v, nil
	}
}

// keyOnLine names the key written on (or, for multi-line values, last
// before) line, for errors that are found by offset rather than by key.
func keyOnLine(lay *layout, line int) string {
	best, bestLine := "", 0
	for k, n := range lay.keys {
		if n > line || n < bestLine {
			continue
		}
		if n > bestLine || len(k) > len(best) || len(k) == len(best) && k < best {
			best, bestLine = k, n
		}
	}
	return best
}
