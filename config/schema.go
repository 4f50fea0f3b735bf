package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// The decoder stops at the first value of the wrong type and its message
// names a key without the array index, so the file is first checked here
// against the Config structs: every unknown key and every wrong type is
// reported with its own path and line. The walk also notes which keys were
// written at all, because a few defaults apply only to keys left out
// (media_timeout = "0s" disables the timeout; leaving it out gives 60 s).

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

type schemaWalk struct {
	el      *errorList
	defined map[string]bool
}

// checkSchema walks the generic decoding of the file against Config.
func checkSchema(doc map[string]any, el *errorList) map[string]bool {
	w := &schemaWalk{el: el, defined: map[string]bool{}}
	w.table("", doc, reflect.TypeFor[Config]())
	return w.defined
}

// fieldsByKey maps TOML key names to struct fields.
func fieldsByKey(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f
	}
	return m
}

func (w *schemaWalk) table(path string, m map[string]any, t reflect.Type) {
	fields := fieldsByKey(t)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := joinKey(path, k)
		f, ok := fields[k]
		if !ok {
			w.el.at(p, "unknown key%s", suggest(k, fields))
			continue
		}
		w.value(p, m[k], f.Type)
	}
}

func (w *schemaWalk) value(path string, v any, t reflect.Type) {
	w.defined[path] = true
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := v.(string)
		if !ok {
			w.el.at(path, "must be a string, not %s", describe(v))
			return
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			if t == reflect.TypeFor[Duration]() {
				w.el.at(path, "%q is not a duration (write it like \"60s\" or \"1m30s\")", s)
			} else {
				w.el.at(path, "%q: %w", s, err)
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		w.value(path, v, t.Elem())
	case reflect.String:
		if _, ok := v.(string); !ok {
			w.el.at(path, "must be a string, not %s", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			w.el.at(path, "must be true or false (without quotes), not %s", describe(v))
		}
	case reflect.Int:
		if _, ok := v.(int64); !ok {
			w.el.at(path, "must be an integer, not %s", describe(v))
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			w.el.at(path, "must be a table, not %s", describe(v))
			return
		}
		w.table(path, m, t)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			w.el.at(path, "must be a table, not %s", describe(v))
			return
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			w.value(joinKey(path, k), m[k], t.Elem())
		}
	case reflect.Slice:
		var elems []any
		switch s := v.(type) {
		case []any:
			elems = s
		case []map[string]any:
			for _, e := range s {
				elems = append(elems, e)
			}
		default:
			if t.Elem().Kind() == reflect.Struct {
				w.el.at(path, "must be an array of tables ([[%s]]), not %s", lastName(path), describe(v))
			} else {
				w.el.at(path, "must be an array, not %s", describe(v))
			}
			return
		}
		for i, e := range elems {
			w.value(indexKey(path, i), e, t.Elem())
		}
	default:
		// Config holds no other kinds; a new field of another kind must be
		// taught here before it can be decoded.
		w.el.at(path, "internal error: no schema check for %s", t)
	}
}

func lastName(path string) string {
	p := parentPath(path)
	if p == "" {
		return path
	}
	return path[len(p)+1:]
}

// describe names a decoded TOML value's type for messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case time.Time:
		return "a date-time"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// suggest offers the known key closest to a misspelt one.
func suggest(k string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for name := range fields {
		d := editDistance(strings.ToLower(k), strings.ToLower(name))
		if d < bestD || d == bestD && best != "" && name < best {
			best, bestD = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
