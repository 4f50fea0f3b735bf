package call

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// ParseDialString parses "{a=b}[c=d]user/1001,user/1002|sofia/…" the way
// FreeSWITCH's originate does: leading {…} lists (several may follow one
// another) hold variables for every leg, "|" separates groups tried in turn,
// "," separates legs rung at once, and […] lists before a leg's endpoint
// hold its own variables. Splitting uses SeparateNested, so quotes and
// escapes work as in FreeSWITCH and a "|" or "," inside a {…} or […] list
// does not split. An unclosed list or a string without any endpoint is an
// error; empty legs are skipped.
func ParseDialString(s string) (*DialString, error) {
	orig := s
	s = strings.TrimSpace(s)
	ds := &DialString{Vars: map[string]string{}}
	for strings.HasPrefix(s, "{") {
		end, ok := groupEnd(s, 0)
		if !ok {
			return nil, fmt.Errorf("dial string %q: unclosed {", orig)
		}
		parseVarList(s[1:end], ds.Vars)
		s = strings.TrimSpace(s[end+1:])
	}
	for _, g := range SeparateNested(s, '|', 0) {
		var group []DialLeg
		for _, l := range SeparateNested(g, ',', 0) {
			l = strings.TrimSpace(l) // tabs and line ends too, not only blanks
			leg := DialLeg{Vars: maps.Clone(ds.Vars)}
			for strings.HasPrefix(l, "[") {
				end, ok := groupEnd(l, 0)
				if !ok {
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

// parseVarList parses the inside of a {…} or […] list, "a=b,c='d,e'", into
// m: entries are split with SeparateNested at ',' (or the delimiter a
// leading "^^x" names, as in FreeSWITCH), each at its first '='. Entries
// without '=' or with an empty name are ignored. Beyond FreeSWITCH, a value
// wrapped in double quotes loses them (FreeSWITCH keeps the quotes and
// splits at a comma inside them) and "k=" sets k to "" (FreeSWITCH drops it).
func parseVarList(s string, m map[string]string) {
	for _, p := range SeparateNested(s, ',', 0) {
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
// originate_timeout, else 60 s. Values are read with Atoi, as FreeSWITCH
// does, so "30s" is 30 seconds.
func legTimeout(vars map[string]string) time.Duration {
	for _, k := range []string{"leg_timeout", "call_timeout", "originate_timeout"} {
		if n := Atoi(vars[k]); n > 0 {
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
	if n := Atoi(overall); n > 0 {
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
	if len(dials) == 1 {
		// One dial (the usual agent leg: one target, one contact) races
		// no one: it runs here, without a goroutine and a hand-off on the
		// way to its INVITE.
		ch, err := dials[0](gctx)
		if err == nil && ch != nil {
			return ch, nil
		}
		cause, ok := AsCause(err)
		if !ok {
			cause = NormalTemporaryFailure
		}
		if ch != nil {
			ch.Hangup(cause)
		}
		return nil, cause
	}
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
