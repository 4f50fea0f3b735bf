package api

import (
	"regexp"
	"strings"

	"ccpbx/call"
)

// eventNames are the event names a listener may subscribe to, as
// FreeSWITCH spells them; "event plain FOO" with an unknown name ignores FOO
// the way FreeSWITCH does. ccpbx fires only some of them, but accepting the
// whole vocabulary lets existing ESL scripts subscribe unchanged.
var eventNames = func() map[string]bool {
	names := strings.Fields(`CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE
	CHANNEL_CALLSTATE CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE
	CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE
	CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK
	CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN OUTBOUND_CHAN
	STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH MODULE_LOAD MODULE_UNLOAD
	DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE MESSAGE_WAITING
	MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE PRIVATE_COMMAND
	HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY
	PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS
	CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED
	SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START
	RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START
	MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT
	CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED CERT_RELOAD ALL`)
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}()

// eventSet is what one listener receives. It is immutable once published
// (the bus calls match from the firing goroutine), so every change builds a
// new set.
type eventSet struct {
	all        bool
	names      map[string]bool
	subclasses map[string]bool
	filters    []eventFilter
	// session, when set, passes only events about that channel
	// (Unique-ID), as myevents and a non-full outbound socket do.
	session string
}

// eventFilter is one "filter <header> <value>" line.
type eventFilter struct {
	header string
	value  string         // as given, with a leading +/- and /regex/ forms
	neg    bool           // "-value": drop events that match
	cmp    string         // value without the +/- prefix
	re     *regexp.Regexp // set for "/regex/" values
}

func (s *eventSet) clone() *eventSet {
	n := &eventSet{names: map[string]bool{}, subclasses: map[string]bool{}}
	if s == nil {
		return n
	}
	n.all = s.all
	n.session = s.session
	for k := range s.names {
		n.names[k] = true
	}
	for k := range s.subclasses {
		n.subclasses[k] = true
	}
	n.filters = append(n.filters, s.filters...)
	return n
}

// subscribed reports whether the event kinds alone select e.
func (s *eventSet) subscribed(e *call.Event) bool { return s.subscribedKind(e.Name, e.Subclass) }

// subscribedKind reports whether the set selects events of this name and
// subclass (the bus's Interest: producers build no event that no listener
// selects).
func (s *eventSet) subscribedKind(name, subclass string) bool {
	if s == nil {
		return false
	}
	if s.all {
		return true
	}
	if !s.names[name] {
		return false
	}
	return name != "CUSTOM" || subclass == "" || s.subclasses[subclass]
}

// match applies the subscription and then the filters, with FreeSWITCH's
// rules: with filters present an event passes only if some positive filter
// matches it, and a matching "-" filter always drops it.
func (s *eventSet) match(e *call.Event) bool {
	if !s.subscribed(e) {
		return false
	}
	if s.session != "" && e.Get("Unique-ID") != s.session {
		return false
	}
	if len(s.filters) == 0 {
		return true
	}
	send := false
	for _, f := range s.filters {
		v, ok := headerFold(e.Headers, f.header)
		if !ok {
			continue
		}
		if send && !f.neg {
			continue
		}
		var hit bool
		if f.re != nil {
			hit = f.re.MatchString(v)
		} else {
			hit = strings.EqualFold(v, f.cmp)
		}
		if hit {
			if f.neg {
				return false
			}
			send = true
		}
	}
	return send
}

// headerFold finds a header ignoring case, as FreeSWITCH looks headers up;
// frames, received events and event filters all use it. (call.Event.Get
// matches exactly.) The envelope's Event-Name and Event-Subclass are
// headers too.
func headerFold(hs []call.Header, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// applyEventCommand parses the arguments of "event [plain|json|xml] NAME…"
// onto cur. It returns the new set, the format chosen ("" = unchanged) and
// how many event names it recognised; zero means FreeSWITCH's
// "-ERR no keywords supplied". After CUSTOM every further word is a
// subclass, as in FreeSWITCH.
func applyEventCommand(cur *eventSet, args string) (next *eventSet, format string, keys int) {
	next = cur.clone()
	custom := false
	for i, tok := range strings.Fields(args) {
		if i == 0 {
			switch strings.ToLower(tok) {
			case FormatPlain, FormatJSON, FormatXML:
				format = strings.ToLower(tok)
				continue
			}
		}
		if custom {
			next.subclasses[tok] = true
			continue
		}
		name := strings.ToUpper(tok)
		if !eventNames[name] {
			continue
		}
		keys++
		switch name {
		case "ALL":
			next.all = true
		case "CUSTOM":
			custom = true
		}
		next.names[name] = true
	}
	return next, format, keys
}

// applyNixEvent removes event names (and, after CUSTOM, subclasses).
func applyNixEvent(cur *eventSet, args string) (next *eventSet, keys int) {
	next = cur.clone()
	custom := false
	for _, tok := range strings.Fields(args) {
		if custom {
			delete(next.subclasses, tok)
			continue
		}
		name := strings.ToUpper(tok)
		if !eventNames[name] {
			continue
		}
		keys++
		switch name {
		case "CUSTOM":
			custom = true
		case "ALL":
			next.all = false
			next.names = map[string]bool{}
		default:
			if next.all {
				// Nixing one name out of ALL leaves every other one.
				next.all = false
				for n := range eventNames {
					if n != "ALL" {
						next.names[n] = true
					}
				}
			}
			delete(next.names, name)
		}
	}
	return next, keys
}

// applyFilter handles "filter [add] <header> <value>", "filter delete
// <header> [value]" and "filter delete all", returning the reply text.
func applyFilter(cur *eventSet, args string) (*eventSet, string) {
	args = strings.TrimLeft(args, " ")
	name, val, hasVal := strings.Cut(args, " ")
	next := cur.clone()
	switch {
	case strings.EqualFold(name, "delete") && hasVal:
		name, val, hasVal = strings.Cut(val, " ")
		if strings.EqualFold(name, "all") {
			next.filters = nil
		} else {
			kept := next.filters[:0]
			for _, f := range next.filters {
				if strings.EqualFold(f.header, name) && (!hasVal || f.value == val) {
					continue
				}
				kept = append(kept, f)
			}
			next.filters = kept
		}
		if !hasVal {
			val = ""
		}
		return next, "+OK filter deleted. [" + name + "][" + val + "]"
	case hasVal && name != "":
		if strings.EqualFold(name, "add") {
			name, val, hasVal = strings.Cut(val, " ")
			if !hasVal || name == "" {
				return cur, "-ERR invalid syntax"
			}
		}
		f, err := newEventFilter(name, val)
		if err != nil {
			return cur, "-ERR invalid syntax"
		}
		next.filters = append(next.filters, f)
		return next, "+OK filter added. [" + name + "]=[" + val + "]"
	default:
		return cur, "-ERR invalid syntax"
	}
}

func newEventFilter(header, value string) (eventFilter, error) {
	f := eventFilter{header: header, value: value}
	cmp := value
	for cmp != "" {
		switch cmp[0] {
		case '+':
			f.neg = false
		case '-':
			f.neg = true
		case ' ':
		default:
			goto done
		}
		cmp = cmp[1:]
	}
done:
	f.cmp = cmp
	if strings.HasPrefix(value, "/") {
		expr := strings.TrimPrefix(cmp, "/")
		if len(expr) > 0 && strings.HasSuffix(expr, "/") {
			expr = expr[:len(expr)-1]
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return f, err
		}
		f.re = re
	}
	return f, nil
}
