package call

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OriginateOptions carries what the caller of Originate knows beyond the
// dial string.
type OriginateOptions struct {
	// Caller is the A leg on whose behalf the call is placed (caller ID,
	// codec preference, exported variables); nil for API originates.
	Caller *Channel
	// Vars are applied to every leg, below the dial string's own {…}/[…].
	Vars map[string]string
	// OnRing is called (possibly from several goroutines) when a leg
	// reports 180 (early=false) or 183 (early=true).
	OnRing func(leg *Channel, early bool)
	// OnLeg is called with each outbound channel as soon as it exists, so
	// callers can track legs that are still ringing.
	OnLeg func(leg *Channel)
}

// AsCause extracts a Cause from err (nil gives false).
func AsCause(err error) (Cause, bool) {
	var c Cause
	if errors.As(err, &c) {
		return c, true
	}
	return CauseNone, false
}

// DialLeg is one endpoint of a parsed dial string.
type DialLeg struct {
	Vars   map[string]string // [..] per-leg variables merged over {..}
	Target string            // "user/1001"
}

// DialString is a parsed dial string: groups tried one after another ("|"),
// each group's legs rung at once (",").
type DialString struct {
	Vars   map[string]string // {…}
	Groups [][]DialLeg
}

// ParseDialString parses "{a=b}[c=d]user/1001,user/1002|sofia/…". Values
// may be quoted ('…' or "…") to hold commas and brackets; an unclosed
// bracket or quote, or a string without any endpoint, is an error.
func ParseDialString(s string) (*DialString, error) {
	orig := s
	s = strings.TrimSpace(s)
	ds := &DialString{Vars: map[string]string{}}
	if strings.HasPrefix(s, "{") {
		end := closing(s)
		if end < 0 {
			return nil, fmt.Errorf("dial string %q: unclosed {", orig)
		}
		parseVarList(s[1:end], ds.Vars)
		s = s[end+1:]
	}
	for _, g := range splitTop(s, '|') {
		var group []DialLeg
		for _, l := range splitTop(g, ',') {
			l = strings.TrimSpace(l)
			leg := DialLeg{Vars: map[string]string{}}
			for k, v := range ds.Vars {
				leg.Vars[k] = v
			}
			for strings.HasPrefix(l, "[") {
				end := closing(l)
				if end < 0 {
					return nil, fmt.Errorf("dial string %q: unclosed [", orig)
				}
				parseVarList(l[1:end], leg.Vars)
				l = strings.TrimSpace(l[end+1:])
			}
			if l == "" {
				continue
			}
			leg.Target = l
			group = append(group, leg)
		}
		if len(group) > 0 {
			ds.Groups = append(ds.Groups, group)
		}
	}
	if len(ds.Groups) == 0 {
		return nil, fmt.Errorf("dial string %q: no endpoint", orig)
	}
	return ds, nil
}

// quoteOpens reports whether the quote at s[i] starts a quoted value, that
// is it follows '=' (spaces allowed). An apostrophe inside a plain value
// (origination_caller_id_name=O'Brien) is then just a character.
func quoteOpens(s string, i int) bool {
	j := i - 1
	for j >= 0 && s[j] == ' ' {
		j--
	}
	return j >= 0 && s[j] == '='
}

// walkTop calls fn for each byte of s that is not inside a quoted value,
// with the bracket depth once that byte is counted (opens[k] raises it,
// shuts[k] lowers it, never below 0); fn returns false to stop. A quote
// starts a quoted value only where quoteOpens says so and the depth is at
// least quoteDepth. The dial-string scanners below differ only in these
// parameters, so they share this one walk.
func walkTop(s, opens, shuts string, quoteDepth int, fn func(i, depth int) bool) {
	depth := 0
	var q byte
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case q != 0:
			if b == q {
				q = 0
			}
			continue
		case depth >= quoteDepth && (b == '\'' || b == '"') && quoteOpens(s, i):
			q = b
			continue
		case strings.IndexByte(opens, b) >= 0:
			depth++
		case strings.IndexByte(shuts, b) >= 0 && depth > 0:
			depth--
		}
		if !fn(i, depth) {
			return
		}
	}
}

// closing returns the index of the bracket closing s[0] ('{' or '['),
// counting nested brackets (${…} in a value) and skipping quoted values;
// -1 when it is never closed.
func closing(s string) int {
	open, shut := "{", "}"
	if s[0] == '[' {
		open, shut = "[", "]"
	}
	at := -1
	walkTop(s, open, shut, 0, func(i, depth int) bool {
		if depth == 0 && s[i] == shut[0] {
			at = i
			return false
		}
		return true
	})
	return at
}

// splitTop splits on sep outside {} and [] brackets and the quoted values
// inside them.
func splitTop(s string, sep byte) []string {
	var out []string
	start := 0
	walkTop(s, "{[", "}]", 1, func(i, depth int) bool {
		if s[i] == sep && depth == 0 {
			out = append(out, s[start:i])
			start = i + 1
		}
		return true
	})
	return append(out, s[start:])
}

// parseVarList parses "a=b,c='d,e'" into m; commas inside quoted values
// and inside nested braces stay in the value.
func parseVarList(s string, m map[string]string) {
	var parts []string
	start := 0
	walkTop(s, "{", "}", 0, func(i, depth int) bool {
		if s[i] == ',' && depth == 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
		return true
	})
	parts = append(parts, s[start:])
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		m[k] = v
	}
}

// legTimeout picks the ring timeout for one leg: leg_timeout, call_timeout,
// originate_timeout, else 60 s.
func legTimeout(vars map[string]string) time.Duration {
	for _, k := range []string{"leg_timeout", "call_timeout", "originate_timeout"} {
		if n, err := strconv.Atoi(vars[k]); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 60 * time.Second
}

// Originate places the calls of dial and returns the first leg to answer.
// Groups separated by "|" are tried in order; legs within a group ring at
// once and the losers are cancelled with LOSE_RACE. On failure the error is
// the Cause of the last failed group. Cancelling ctx cancels every leg.
func (c *Core) Originate(ctx context.Context, dial string, o OriginateOptions) (*Channel, error) {
	if c.closing.Load() {
		return nil, ErrShuttingDown
	}
	ds, err := ParseDialString(dial)
	if err != nil {
		return nil, InvalidNumberFormat
	}
	overall := ds.Vars["originate_timeout"]
	if n, err := strconv.Atoi(overall); err == nil && n > 0 {
		var cancel context.CancelFunc
		// The cause tells the ringing legs why they give up: NO_ANSWER,
		// not the ORIGINATOR_CANCEL a bare deadline would mean to them.
		ctx, cancel = context.WithTimeoutCause(ctx, time.Duration(n)*time.Second, NoAnswer)
		defer cancel()
	}
	last := Cause(NoAnswer)
	for _, group := range ds.Groups {
		ch, err := c.dialGroup(ctx, group, &o)
		if err == nil {
			return ch, nil
		}
		cause, ok := AsCause(err)
		if !ok {
			cause = NormalTemporaryFailure
		}
		last = cause
		if ctx.Err() != nil {
			if cc, ok := AsCause(context.Cause(ctx)); ok {
				return nil, cc
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, NoAnswer
			}
			return nil, OriginatorCancel
		}
	}
	return nil, last
}

func (c *Core) dialGroup(ctx context.Context, group []DialLeg, o *OriginateOptions) (*Channel, error) {
	dials := make([]func(context.Context) (*Channel, error), len(group))
	for i, leg := range group {
		dials[i] = func(ctx context.Context) (*Channel, error) { return c.dialLeg(ctx, leg, o) }
	}
	return Race(ctx, dials)
}

// Race is the one parallel fork of ccpbx: it runs every dial at once and
// returns the first channel to answer. The other dials are cancelled with
// LOSE_RACE (a late answer is hung up with it), a dial that failed but left
// a channel is hung up with its cause, and when all fail the error is the
// most telling cause (pickCause). Race returns only once every dial has
// returned. A comma group of a dial string and an endpoint that expands one
// target into several (user/ with several registered contacts) both race
// here, so they agree.
func Race(ctx context.Context, dials []func(context.Context) (*Channel, error)) (*Channel, error) {
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(LoseRace)
	type result struct {
		ch  *Channel
		err error
	}
	results := make(chan result, len(dials))
	for _, dial := range dials {
		go func() {
			ch, err := dial(gctx)
			results <- result{ch, err}
		}()
	}
	var winner *Channel
	var causes []Cause
	for range dials {
		r := <-results
		if r.err == nil && r.ch != nil {
			if winner == nil {
				winner = r.ch
				cancel(LoseRace)
				continue
			}
			r.ch.Hangup(LoseRace) // answered too late: the race was lost
			continue
		}
		cause, ok := AsCause(r.err)
		if !ok {
			cause = NormalTemporaryFailure
		}
		if r.ch != nil {
			// A leg that failed must not stay up behind our back.
			r.ch.Hangup(cause)
		}
		causes = append(causes, cause)
	}
	if winner != nil {
		return winner, nil
	}
	return nil, pickCause(causes)
}

// pickCause reports the most telling of several leg failures, preferring
// what the callee did (busy, reject) over what did not happen (no answer).
func pickCause(causes []Cause) Cause {
	rank := []Cause{UserBusy, CallRejected, NoAnswer, NoUserResponse, UserNotRegistered}
	for _, r := range rank {
		for _, c := range causes {
			if c == r {
				return c
			}
		}
	}
	if len(causes) > 0 {
		return causes[len(causes)-1]
	}
	return NoAnswer
}

func (c *Core) dialLeg(ctx context.Context, leg DialLeg, o *OriginateOptions) (*Channel, error) {
	prefix, rest, ok := strings.Cut(leg.Target, "/")
	if !ok {
		return nil, InvalidNumberFormat
	}
	if strings.EqualFold(prefix, "error") {
		cause, _ := ParseCause(rest)
		return nil, cause
	}
	c.mu.RLock()
	ep, ok := c.eps[strings.ToLower(prefix)]
	c.mu.RUnlock()
	if !ok {
		return nil, InvalidGateway
	}
	vars := make(map[string]string, len(o.Vars)+len(leg.Vars))
	for k, v := range o.Vars {
		vars[k] = v
	}
	for k, v := range leg.Vars {
		vars[k] = v
	}
	lctx, cancel := context.WithTimeoutCause(ctx, legTimeout(vars), NoAnswer)
	defer cancel()
	return ep.Dial(lctx, rest, vars, o)
}
