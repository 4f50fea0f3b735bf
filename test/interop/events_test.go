package interop

import (
	"bufio"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is one event as `ccpbx cli -events` prints it (fs_cli's
// "RECV EVENT" block): header name → value, in arrival order.
type event struct {
	Headers map[string]string
	Order   []string
	At      time.Time // when the test read it
}

func (e event) get(k string) string { return e.Headers[k] }

// parseEvents reads fs_cli-style event blocks from r and calls emit for
// each one. A block starts at a line beginning "RECV EVENT"; "Name: value"
// lines follow until a blank line. Values are URL-decoded when they look
// encoded (the plain wire format), as fs_cli shows them decoded. Anything it
// does not recognise is skipped: it never fails on odd input.
func parseEvents(r io.Reader, emit func(event)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var cur *event
	flush := func() {
		if cur != nil && len(cur.Headers) > 0 {
			emit(*cur)
		}
		cur = nil
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, "RECV EVENT") {
			flush()
			cur = &event{Headers: map[string]string{}, At: time.Now()}
			continue
		}
		if cur == nil {
			continue
		}
		if line == "" {
			if len(cur.Headers) > 0 {
				flush()
			}
			continue
		}
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			name, ok = strings.CutSuffix(line, ":")
			if !ok {
				continue
			}
		}
		if name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		if strings.Contains(value, "%") {
			if dec, err := url.QueryUnescape(strings.ReplaceAll(value, "+", "%2B")); err == nil {
				value = dec
			}
		}
		if _, dup := cur.Headers[name]; !dup {
			cur.Order = append(cur.Order, name)
		}
		cur.Headers[name] = value
	}
	flush()
	return sc.Err()
}

// eventStream is a running `ccpbx cli -events 'CUSTOM callcenter::info'`
// whose output is teed to artifacts/events.txt and parsed as it arrives.
type eventStream struct {
	proc *proc
	mu   sync.Mutex
	evs  []event
	more chan struct{} // closed and replaced whenever an event arrives
}

func startEvents(t testing.TB, p *pbx, art string) *eventStream {
	t.Helper()
	return startEventsFor(t, p, filepath.Join(art, "events.txt"), "CUSTOM callcenter::info")
}

// startEventsFor is startEvents for another subscription (a second stream
// keeps the callcenter::info sequences the steps compare free of others).
func startEventsFor(t testing.TB, p *pbx, rawPath, subscription string) *eventStream {
	t.Helper()
	es := &eventStream{more: make(chan struct{})}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	raw, err := os.Create(rawPath)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	es.proc = &proc{name: "events", outPath: rawPath, done: make(chan struct{})}
	cmd := newCmd(p.bin, "cli", "-config", p.cfg, "-events", subscription)
	cmd.Dir = p.root
	cmd.Stdout = pw
	cmd.Stderr = raw
	es.proc.cmd = cmd
	if err := cmd.Start(); err != nil {
		t.Fatalf("events: start ccpbx cli -events: %v", err)
	}
	pw.Close()
	go func() {
		_ = parseEvents(io.TeeReader(pr, raw), func(e event) {
			es.mu.Lock()
			es.evs = append(es.evs, e)
			close(es.more)
			es.more = make(chan struct{})
			es.mu.Unlock()
		})
		pr.Close()
	}()
	go func() {
		es.proc.err = cmd.Wait()
		raw.Close()
		close(es.proc.done)
	}()
	t.Cleanup(es.proc.kill)
	return es
}

// mark is the index the next event will get: "events from here on".
func (es *eventStream) mark() int {
	es.mu.Lock()
	defer es.mu.Unlock()
	return len(es.evs)
}

// since returns the events from index from on.
func (es *eventStream) since(from int) []event {
	es.mu.Lock()
	defer es.mu.Unlock()
	if from > len(es.evs) {
		return nil
	}
	return slices.Clone(es.evs[from:])
}

// waitFor waits until an event at index >= from satisfies match and returns
// its index. On timeout the error lists what did arrive.
func (es *eventStream) waitFor(from int, timeout time.Duration, want string, match func(event) bool) (int, event, error) {
	deadline := time.After(timeout)
	next := from
	for {
		es.mu.Lock()
		for ; next < len(es.evs); next++ {
			if match(es.evs[next]) {
				e := es.evs[next]
				es.mu.Unlock()
				return next, e, nil
			}
		}
		more := es.more
		es.mu.Unlock()
		select {
		case <-more:
		case <-es.proc.done:
			return -1, event{}, fmt.Errorf("waiting for event %s: the event listener (ccpbx cli -events) exited: %v", want, es.proc.err)
		case <-deadline:
			return -1, event{}, fmt.Errorf("waiting for event %s: not seen within %s; events since the step began:\n%s",
				want, timeout, compactList(es.since(from)))
		}
	}
}

// action matches events by CC-Action and optional header values.
func action(name string, kv ...string) func(event) bool {
	return func(e event) bool {
		if e.get("CC-Action") != name {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if e.get(kv[i]) != kv[i+1] {
				return false
			}
		}
		return true
	}
}

// compact is the one-line form of a callcenter::info event used to compare
// sequences with reference/freeswitch-observed/README.md §3: action plus
// the fields that matter, without times and UUIDs.
func compact(e event) string {
	a := e.get("CC-Action")
	var b strings.Builder
	b.WriteString(a)
	add := func(label, header string) {
		if v, ok := e.Headers[header]; ok {
			fmt.Fprintf(&b, " %s=%s", label, v)
		}
	}
	switch a {
	case "agent-status-change", "agent-status-get":
		add("agent", "CC-Agent")
		add("status", "CC-Agent-Status")
	case "agent-state-change", "agent-state-get":
		add("agent", "CC-Agent")
		add("state", "CC-Agent-State")
	case "members-count":
		add("count", "CC-Count")
	case "member-queue-start":
		add("member", "CC-Member-CID-Number")
	case "member-queue-end":
		add("agent", "CC-Agent")
		add("member", "CC-Member-CID-Number")
		add("cause", "CC-Cause")
		add("reason", "CC-Cancel-Reason")
	default:
		add("agent", "CC-Agent")
		add("member", "CC-Member-CID-Number")
	}
	return b.String()
}

func compactAll(evs []event) []string {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		out = append(out, compact(e))
	}
	return out
}

func compactList(evs []event) string {
	if len(evs) == 0 {
		return "  (none)"
	}
	var b strings.Builder
	for i, e := range evs {
		fmt.Fprintf(&b, "  %2d %s\n", i+1, compact(e))
	}
	return strings.TrimRight(b.String(), "\n")
}

// observedCCHeaders are the CC-* headers FreeSWITCH 1.11.2 put on each
// callcenter::info action, from reference/freeswitch-observed/
// callcenter-events.txt (every event of the capture, all identical per
// action). member-queue-end has two shapes: a call that reached an agent and
// one that was cancelled while waiting.
var observedCCHeaders = map[string][][]string{
	"agent-status-change": {{"CC-Agent", "CC-Action", "CC-Agent-Status"}},
	"agent-state-change":  {{"CC-Agent", "CC-Action", "CC-Agent-State"}},
	"agent-status-get":    {{"CC-Agent", "CC-Action", "CC-Agent-Status"}},
	"agent-state-get":     {{"CC-Agent", "CC-Action", "CC-Agent-State"}},
	"agent-uuid-get":      {{"CC-Agent", "CC-Action"}},
	"members-count":       {{"CC-Queue", "CC-Action", "CC-Count", "CC-Selection"}},
	"member-queue-start": {{"CC-Queue", "CC-Action", "CC-Member-UUID", "CC-Member-Session-UUID",
		"CC-Member-CID-Name", "CC-Member-CID-Number"}},
	"agent-offering": {{"CC-Queue", "CC-Action", "CC-Agent", "CC-Agent-Type", "CC-Agent-System",
		"CC-Member-UUID", "CC-Member-Session-UUID", "CC-Member-CID-Name", "CC-Member-CID-Number"}},
	"bridge-agent-start": {{"CC-Queue", "CC-Action", "CC-Agent", "CC-Agent-System", "CC-Agent-UUID",
		"CC-Agent-Called-Time", "CC-Agent-Answered-Time", "CC-Member-Joined-Time", "CC-Member-UUID",
		"CC-Member-Session-UUID", "CC-Member-CID-Name", "CC-Member-CID-Number"}},
	"bridge-agent-end": {{"CC-Queue", "CC-Action", "CC-Hangup-Cause", "CC-Agent", "CC-Agent-System",
		"CC-Agent-UUID", "CC-Agent-Bridged", "CC-Agent-Called-Time", "CC-Agent-Answered-Time",
		"CC-Member-Joined-Time", "CC-Bridge-Terminated-Time", "CC-Member-UUID", "CC-Member-Session-UUID",
		"CC-Member-CID-Name", "CC-Member-CID-Number"}},
	"member-queue-end": {
		{"CC-Queue", "CC-Action", "CC-Hangup-Cause", "CC-Cause", "CC-Agent", "CC-Agent-System",
			"CC-Agent-UUID", "CC-Agent-Called-Time", "CC-Agent-Answered-Time", "CC-Member-Leaving-Time",
			"CC-Member-Joined-Time", "CC-Member-UUID", "CC-Member-Session-UUID", "CC-Member-CID-Name",
			"CC-Member-CID-Number"},
		{"CC-Queue", "CC-Action", "CC-Member-Leaving-Time", "CC-Member-Joined-Time", "CC-Cause",
			"CC-Cancel-Reason", "CC-Member-UUID", "CC-Member-Session-UUID", "CC-Member-CID-Name",
			"CC-Member-CID-Number"},
	},
}

// memberCIDName is CC-Member-CID-Name: the channel's caller_id_name, which
// the article's callcenter.lua sets to the dialled number ("3000"). The
// capture's script set "3000@default" instead (README setup recap), so the
// value follows the article, the header's presence follows the capture.
const memberCIDName = "3000"

// observedValues are header values that were constant in the capture.
var observedValues = map[string]map[string]string{
	"agent-offering":     {"Event-Name": "CUSTOM", "Event-Subclass": "callcenter::info", "CC-Agent-Type": "callback", "CC-Agent-System": "single_box", "CC-Queue": "3000@default", "CC-Member-CID-Name": memberCIDName},
	"members-count":      {"CC-Selection": "Single-Queue", "CC-Queue": "3000@default"},
	"member-queue-start": {"CC-Queue": "3000@default", "CC-Member-CID-Name": memberCIDName, "Answer-State": "answered"},
	"bridge-agent-start": {"CC-Agent-System": "single_box", "Answer-State": "answered"},
	"bridge-agent-end":   {"CC-Hangup-Cause": "SUCCESS", "CC-Agent-Bridged": "true", "Answer-State": "hangup"},
}

// checkEventShape compares one event's CC-* header set (and the values that
// were constant) with what FreeSWITCH sent for the same CC-Action.
func checkEventShape(e event) error {
	a := e.get("CC-Action")
	if e.get("Event-Name") != "CUSTOM" || e.get("Event-Subclass") != "callcenter::info" {
		return fmt.Errorf("%s: Event-Name/Event-Subclass = %q/%q, FreeSWITCH sends CUSTOM/callcenter::info",
			a, e.get("Event-Name"), e.get("Event-Subclass"))
	}
	shapes, ok := observedCCHeaders[a]
	if !ok {
		return nil // an action the capture has no example of
	}
	var got []string
	for _, k := range e.Order {
		if strings.HasPrefix(k, "CC-") {
			got = append(got, k)
		}
	}
	sort.Strings(got)
	for _, s := range shapes {
		want := slices.Clone(s)
		sort.Strings(want)
		if slices.Equal(got, want) {
			for k, v := range observedValues[a] {
				if e.get(k) != v {
					return fmt.Errorf("%s: %s = %q, FreeSWITCH sends %q", a, k, e.get(k), v)
				}
			}
			return nil
		}
	}
	want := slices.Clone(shapes[0])
	sort.Strings(want)
	return fmt.Errorf("%s: CC-* headers differ from FreeSWITCH's\n  got:  %s\n  want: %s",
		a, strings.Join(got, " "), strings.Join(want, " "))
}
