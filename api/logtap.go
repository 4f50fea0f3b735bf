package api

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// FreeSWITCH log levels, as the event socket's "log" command and log/data
// frames number them.
const (
	fsLogConsole = 0
	fsLogAlert   = 1
	fsLogCrit    = 2
	fsLogErr     = 3
	fsLogWarning = 4
	fsLogNotice  = 5
	fsLogInfo    = 6
	fsLogDebug   = 7
)

var fsLogNames = [...]string{"CONSOLE", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG"}

// parseFSLogLevel accepts a FreeSWITCH level name ("debug", "warning") or
// number ("7").
func parseFSLogLevel(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n >= fsLogConsole && n <= fsLogDebug {
			return n, true
		}
		return 0, false
	}
	for i, name := range fsLogNames {
		if strings.EqualFold(s, name) {
			return i, true
		}
	}
	if strings.EqualFold(s, "error") {
		return fsLogErr, true
	}
	if strings.EqualFold(s, "warn") {
		return fsLogWarning, true
	}
	return 0, false
}

// fsLevel maps a slog level onto FreeSWITCH's scale.
func fsLevel(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return fsLogErr
	case l >= slog.LevelWarn:
		return fsLogWarning
	case l >= slog.LevelInfo:
		return fsLogInfo
	default:
		return fsLogDebug
	}
}

// logLine is one record as event-socket clients receive it.
type logLine struct {
	level int
	file  string
	fn    string
	line  int
	uuid  string
	text  string
}

// frame renders the log/data frame FreeSWITCH sends to a "log" listener.
func (l *logLine) frame() string {
	return "Content-Type: log/data\nContent-Length: " + strconv.Itoa(len(l.text)) +
		"\nLog-Level: " + strconv.Itoa(l.level) +
		"\nText-Channel: 0\nLog-File: " + oneLine(l.file) +
		"\nLog-Func: " + oneLine(l.fn) +
		"\nLog-Line: " + strconv.Itoa(l.line) +
		"\nUser-Data: " + oneLine(l.uuid) + "\n\n" + l.text
}

// LogTap is an slog.Handler that passes records on to the process's own
// handler and also copies them to event-socket clients that asked for logs
// ("log debug"), the way fs_cli shows FreeSWITCH's console. Copying never
// blocks: a client that cannot keep up loses log lines.
type LogTap struct {
	next  slog.Handler
	hub   *logHub
	attrs string // rendered attributes from WithAttrs
	group string // dotted group prefix from WithGroup
	uuid  string // a "uuid" attribute, sent as User-Data
}

// NewLogTap wraps next. Give the returned handler to slog.New and the tap
// to EventSocket.SetLogTap.
func NewLogTap(next slog.Handler) *LogTap {
	return &LogTap{next: next, hub: &logHub{subs: map[*logSub]struct{}{}}}
}

type logHub struct {
	mu   sync.RWMutex
	subs map[*logSub]struct{}
	// most is the most verbose FreeSWITCH level any client wants (-1 when
	// nobody listens), so Enabled stays cheap.
	most atomic.Int64
}

type logSub struct {
	level atomic.Int64
	ch    chan *logLine
}

func (h *logHub) recompute() {
	most := int64(-1)
	for s := range h.subs {
		if l := s.level.Load(); l > most {
			most = l
		}
	}
	h.most.Store(most)
}

func (h *logHub) subscribe(level int) *logSub {
	s := &logSub{ch: make(chan *logLine, 1024)}
	s.level.Store(int64(level))
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.recompute()
	h.mu.Unlock()
	return s
}

func (h *logHub) setLevel(s *logSub, level int) {
	h.mu.Lock()
	s.level.Store(int64(level))
	h.recompute()
	h.mu.Unlock()
}

func (h *logHub) unsubscribe(s *logSub) {
	h.mu.Lock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
	h.recompute()
	h.mu.Unlock()
}

func (h *logHub) publish(l *logLine) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if int64(l.level) > s.level.Load() {
			continue
		}
		select {
		case s.ch <- l:
		default:
		}
	}
}

func (t *LogTap) wanted(l slog.Level) bool {
	return t.hub.most.Load() >= int64(fsLevel(l))
}

// Enabled reports whether the process's handler or any log client wants l.
func (t *LogTap) Enabled(ctx context.Context, l slog.Level) bool {
	return t.next.Enabled(ctx, l) || t.wanted(l)
}

// Handle passes r on and copies it to log clients.
func (t *LogTap) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.next.Enabled(ctx, r.Level) {
		err = t.next.Handle(ctx, r)
	}
	if t.wanted(r.Level) {
		t.hub.publish(t.render(r))
	}
	return err
}

// WithAttrs returns a tap whose records carry as.
func (t *LogTap) WithAttrs(as []slog.Attr) slog.Handler {
	n := *t
	n.next = t.next.WithAttrs(as)
	var b strings.Builder
	b.WriteString(t.attrs)
	for _, a := range as {
		n.noteUUID(a)
		writeAttr(&b, t.group, a)
	}
	n.attrs = b.String()
	return &n
}

// WithGroup returns a tap that qualifies later attributes with name.
func (t *LogTap) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	n := *t
	n.next = t.next.WithGroup(name)
	n.group = t.group + name + "."
	return &n
}

func (t *LogTap) noteUUID(a slog.Attr) {
	if a.Key == "uuid" && t.group == "" {
		t.uuid = a.Value.String()
	}
}

// render formats r like a FreeSWITCH console line:
// "2026-11-26 03:45:13.774840 [INFO] file.go:42 message key=value".
func (t *LogTap) render(r slog.Record) *logLine {
	l := &logLine{level: fsLevel(r.Level), uuid: t.uuid}
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		l.file, l.line = filepath.Base(f.File), f.Line
		l.fn = f.Function
		if i := strings.LastIndexByte(l.fn, '.'); i >= 0 {
			l.fn = l.fn[i+1:]
		}
	}
	var b strings.Builder
	b.WriteString(r.Time.Local().Format("2006-01-02 15:04:05.000000"))
	b.WriteString(" [" + fsLogNames[l.level] + "] ")
	if l.file != "" {
		b.WriteString(l.file + ":" + strconv.Itoa(l.line) + " ")
	}
	b.WriteString(r.Message)
	b.WriteString(t.attrs)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "uuid" && t.group == "" && l.uuid == "" {
			l.uuid = a.Value.String()
		}
		writeAttr(&b, t.group, a)
		return true
	})
	b.WriteByte('\n')
	l.text = b.String()
	return l
}

// writeAttr appends " key=value", flattening groups into dotted keys.
func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			writeAttr(b, p, g)
		}
		return
	}
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " =\"\n\r\t") {
		v = strconv.Quote(v)
	}
	b.WriteString(" " + prefix + a.Key + "=" + v)
}
