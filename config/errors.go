package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// Error is one problem in a configuration file. Its text is
// `FILE:LINE: key "PATH": REASON`, the shape editors and CI logs turn into
// links; Line is 0 (and left out) when the key has no position in the file,
// and Key is empty for problems that belong to no key (TOML syntax).
type Error struct {
	File string
	Line int
	// Key is the key path as written in errors: callcenter.queue[0].strategy.
	Key string
	Err error
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		s += fmt.Sprintf(": key %q", e.Key)
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// errorList collects problems so a file is reported in one go, in line order.
type errorList struct {
	file string
	lay  *layout
	errs []*Error
}

// at records a problem at the line of key path.
func (el *errorList) at(path string, format string, args ...any) {
	line := 0
	if el.lay != nil {
		line = el.lay.line(path)
	}
	el.errs = append(el.errs, &Error{File: el.file, Line: line, Key: path, Err: fmt.Errorf(format, args...)})
}

// atLine records a problem at an explicit line.
func (el *errorList) atLine(line int, path string, err error) {
	el.errs = append(el.errs, &Error{File: el.file, Line: line, Key: path, Err: err})
}

func (el *errorList) empty() bool { return len(el.errs) == 0 }

// err joins the problems, sorted by line, or returns nil.
func (el *errorList) err() error {
	if len(el.errs) == 0 {
		return nil
	}
	sort.SliceStable(el.errs, func(i, j int) bool { return el.errs[i].Line < el.errs[j].Line })
	errs := make([]error, len(el.errs))
	for i, e := range el.errs {
		errs[i] = e
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// ErrorAt is a problem found after loading (by `ccpbx check`, say) at key
// path ("dialplan.context[0].extension[2].condition[0].actions[1]"),
// reported like a load error with the key's line in the file.
func (c *Config) ErrorAt(path string, err error) *Error {
	line := 0
	if c.lay != nil {
		line = c.lay.line(path)
	}
	return &Error{File: c.File, Line: line, Key: path, Err: err}
}
