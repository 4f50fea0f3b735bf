package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// MaxFileSize bounds what Parse reads; a PBX configuration is a few
// kilobytes, so anything near this is a mistake (a wrong path, a binary).
const MaxFileSize = 4 << 20

// Load reads, preprocesses, decodes and validates the file at path. On any
// problem it returns no Config and an error naming path:line for each.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse does what Load does for bytes already in memory; name is the file
// name errors carry (for the embedded copy, something like
// "(embedded config.toml)").
func Parse(name string, data []byte) (*Config, error) {
	el := &errorList{file: name}
	if len(data) > MaxFileSize {
		el.atLine(0, "", fmt.Errorf("file is %d bytes; a configuration is at most %d", len(data), MaxFileSize))
		return nil, el.err()
	}
	text := string(data)

	// 1. Read [vars] from the file as written: references outside strings
	// are replaced by a placeholder so the file decodes before the values
	// are known. This decode is also the syntax check of the file.
	rawLay := lexLayout(text)
	el.lay = rawLay
	refs := scanVarRefs(text, rawLay)
	var doc map[string]any
	placeheld := placeholderText(text, refs)
	if _, err := toml.Decode(placeheld, &doc); err != nil {
		return nil, syntaxError(name, err, placeheld)
	}
	vars := resolveVars(readVars(doc, el), el)
	if !el.empty() {
		return nil, el.err()
	}

	// 2. Expand and decode for real.
	expanded := expandVars(text, rawLay, refs, vars, el)
	if !el.empty() {
		return nil, el.err()
	}
	el.lay = lexLayout(expanded)
	doc = nil
	if _, err := toml.Decode(expanded, &doc); err != nil {
		// A variable standing outside a string can turn into bad syntax.
		return nil, syntaxError(name, err, expanded)
	}
	defined := checkSchema(doc, el)
	if !el.empty() {
		return nil, el.err()
	}
	var c Config
	md, err := toml.Decode(expanded, &c)
	if err != nil {
		// checkSchema accepts only what decodes; reaching this is a bug in
		// it, still reported rather than half-loaded.
		return nil, &Error{File: name, Err: fmt.Errorf("decode: %w", err)}
	}
	for _, k := range md.Undecoded() {
		path := ""
		for _, part := range k {
			path = joinKey(path, part)
		}
		el.at(path, "unknown key")
	}
	c.Vars = vars

	// 3. Meaning, then defaults.
	validate(&c, defined, el)
	if !el.empty() {
		return nil, el.err()
	}
	applyDefaults(&c, defined)
	c.File = name
	c.lay = el.lay
	return &c, nil
}

// readVars returns the [vars] table; every value must be a string.
func readVars(doc map[string]any, el *errorList) map[string]string {
	out := map[string]string{}
	v, ok := doc["vars"]
	if !ok {
		return out
	}
	m, ok := v.(map[string]any)
	if !ok {
		el.at("vars", "must be a table of strings, not %s", describe(v))
		return out
	}
	for k, val := range m {
		p := joinKey("vars", k)
		s, ok := val.(string)
		if !ok {
			el.at(p, "must be a string, not %s", describe(val))
			continue
		}
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return r > 0x7f || !isVarNameByte(byte(r)) }) >= 0 {
			el.at(p, "variable names are letters, digits, '_', '-' and '.', so $${%s} could never be used", k)
			continue
		}
		out[k] = s
	}
	return out
}

// syntaxError turns the decoder's syntax error into file:line form. The
// decoder counts an unexpected line break as the start of the next line;
// the user's mistake is on the line the break ends, so the line is taken
// from the byte offset.
func syntaxError(name string, err error, decoded string) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if start := pe.Position.Start; start >= 0 && start <= len(decoded) {
			if l := strings.Count(decoded[:start], "\n") + 1; l == line || l == line-1 {
				line = l
			}
		}
		return &Error{File: name, Line: line, Err: fmt.Errorf("invalid TOML: %s", pe.Message)}
	}
	return &Error{File: name, Err: fmt.Errorf("invalid TOML: %w", err)}
}
