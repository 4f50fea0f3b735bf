package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"ccpbx/call"
)

// The wallboard feed. One hub goroutine subscribes to the event bus with a
// buffer; any event that can change the floor marks the board dirty, and a
// short coalescing delay later the hub takes one CallcenterView, renders
// the board as JSON and offers it to every connected browser. Each browser
// has a one-board mailbox: a browser that has not taken the previous board
// gets the newer one instead, so a slow (or stalled) browser costs one
// buffer and never blocks the hub, and the hub never blocks the bus (the
// bus drops for a full subscriber; a rise of its drop count triggers a
// resync within a second, and a periodic one covers everything else).

const (
	coalesce  = 150 * time.Millisecond // many events of one call → one board
	lossCheck = time.Second            // how often a loss on the bus is looked for
	resync    = 5 * time.Second        // re-send even without events
)

// Board is what the wallboard shows: GET /api/v1/wallboard and each
// "board" event of /api/v1/events.
type Board struct {
	Time               int64        `json:"time"` // server time, Unix seconds
	ServiceLevelTarget int64        `json:"service_level_target"`
	Queues             []BoardQueue `json:"queues"`
	Agents             []BoardAgent `json:"agents"`
	Callers            []BoardCall  `json:"callers"`
}

// BoardQueue is one queue's line.
type BoardQueue struct {
	Name         string   `json:"name"`
	Waiting      int      `json:"waiting"`
	LongestWait  int64    `json:"longest_wait"` // seconds
	ServiceLevel *float64 `json:"service_level"`
	Offered      int64    `json:"offered"`
	Answered     int64    `json:"answered"`
	Abandoned    int64    `json:"abandoned"`
	Agents       int      `json:"agents_available"`
}

// BoardAgent is one agent; Since is when its state (or status) last
// changed, Unix seconds.
type BoardAgent struct {
	Name   string   `json:"name"`
	Status string   `json:"status"`
	State  string   `json:"state"`
	Since  int64    `json:"since"`
	Queues []string `json:"queues"`
}

// BoardCall is a caller still waiting.
type BoardCall struct {
	Queue     string `json:"queue"`
	UUID      string `json:"uuid"`
	CIDNumber string `json:"cid_number"`
	CIDName   string `json:"cid_name"`
	State     string `json:"state"`
	Joined    int64  `json:"joined"`
}

type hub struct {
	core *call.Core
	cc   Callcenter
	m    *Metrics
	log  *slog.Logger

	mu      sync.Mutex
	clients map[*sseClient]struct{}
	last    []byte
	since   map[string]int64 // agent → when its status/state last changed
	closed  bool

	quit chan struct{}
	done chan struct{}
	wake chan struct{}
}

type sseClient struct{ box chan []byte }

func newHub(core *call.Core, cc Callcenter, m *Metrics, log *slog.Logger) *hub {
	return &hub{core: core, cc: cc, m: m, log: log, clients: map[*sseClient]struct{}{}, since: map[string]int64{},
		quit: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// boardEvent: everything the board shows comes from the ACD, and the ACD
// announces every change of it as callcenter::info; channel events (many
// per call, thousands per second on a busy box) would only wake the hub.
func boardEvent(e *call.Event) bool { return e.Subclass == "callcenter::info" }

func (h *hub) start() { go h.run() }

func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	close(h.quit)
	<-h.done
}

func (h *hub) run() {
	defer close(h.done)
	// Bare: the board reads CC-Agent and CC-Action only (the rest comes
	// from the ACD's view), so the ACD need not add channel headers for it.
	events, cancel := h.core.Bus.SubscribeBare(1024, call.Kinds("CUSTOM callcenter::info"), boardEvent)
	defer cancel()
	// The bus counts what it drops for full subscribers (any of them, so
	// a rise may not be ours): when it rises, resync within lossCheck
	// instead of waiting for the periodic resync.
	tick := time.NewTicker(lossCheck)
	defer tick.Stop()
	dropped, sinceResync := h.core.Bus.Dropped(), time.Duration(0)
	var flush <-chan time.Time
	dirty := func() {
		if flush == nil {
			flush = time.After(coalesce)
		}
	}
	for {
		select {
		case e := <-events:
			if a := e.Get("CC-Agent"); a != "" {
				switch e.Get("CC-Action") {
				case "agent-state-change", "agent-status-change":
					h.mu.Lock()
					h.since[a] = e.Time.Unix()
					h.mu.Unlock()
				}
			}
			dirty()
		case <-h.wake:
			dirty()
		case <-tick.C:
			sinceResync += lossCheck
			if d := h.core.Bus.Dropped(); d != dropped || sinceResync >= resync {
				dropped, sinceResync = d, 0
				dirty()
			}
		case <-flush:
			flush = nil
			h.publish()
		case <-h.quit:
			h.mu.Lock()
			for c := range h.clients {
				close(c.box)
				delete(h.clients, c)
			}
			h.mu.Unlock()
			return
		}
	}
}

// publish renders the board and offers it to every client, replacing a
// board the client has not taken yet.
func (h *hub) publish() {
	h.mu.Lock()
	n := len(h.clients)
	h.mu.Unlock()
	if n == 0 {
		return // nobody watching: no ACD query
	}
	b, err := json.Marshal(h.board())
	if err != nil {
		h.log.Warn("wallboard: render", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = b
	for c := range h.clients {
		select {
		case <-c.box: // a stale board the browser did not take yet
		default:
		}
		c.box <- b
	}
}

// board builds the wallboard from one CallcenterView and the queue
// counters.
func (h *hub) board() Board {
	b := Board{Time: time.Now().Unix(), Queues: []BoardQueue{}, Agents: []BoardAgent{}, Callers: []BoardCall{}}
	if h.m != nil {
		b.ServiceLevelTarget = h.m.sl
	}
	if h.cc == nil {
		return b
	}
	v, err := h.cc.CallcenterView()
	if err != nil {
		return b
	}
	now := v.Time.Unix()
	b.Time = now
	queuesOf := map[string][]string{}
	for _, t := range v.Tiers {
		queuesOf[t.Agent] = append(queuesOf[t.Agent], t.Queue)
	}
	h.mu.Lock()
	for _, a := range v.Agents {
		since := h.since[a.Name]
		if since == 0 {
			since = a.LastStatusChange
		}
		qs := queuesOf[a.Name]
		if qs == nil {
			qs = []string{}
		}
		b.Agents = append(b.Agents, BoardAgent{Name: a.Name, Status: a.Status, State: a.State, Since: since, Queues: qs})
	}
	h.mu.Unlock()
	for _, m := range v.Members {
		if m.waiting() {
			b.Callers = append(b.Callers, BoardCall{Queue: m.Queue, UUID: m.UUID, CIDNumber: m.CIDNumber,
				CIDName: m.CIDName, State: m.State, Joined: m.JoinedEpoch})
		}
	}
	sort.SliceStable(b.Callers, func(i, j int) bool { return b.Callers[i].Joined < b.Callers[j].Joined })
	for _, q := range v.Queues {
		bq := BoardQueue{Name: q.Name}
		for _, c := range b.Callers {
			if c.Queue == q.Name {
				bq.Waiting++
				bq.LongestWait = max(bq.LongestWait, now-c.Joined)
			}
		}
		for _, t := range v.Tiers {
			if t.Queue != q.Name {
				continue
			}
			for _, a := range v.Agents {
				if a.Name == t.Agent && (a.Status == "Available" || a.Status == "Available (On Demand)") {
					bq.Agents++
				}
			}
		}
		if h.m != nil {
			o := h.m.Outcome(q.Name)
			bq.Offered, bq.Answered, bq.Abandoned = o.Offered, o.Answered, o.Abandoned
			if r, ok := o.ServiceLevel(); ok {
				bq.ServiceLevel = &r
			}
		}
		b.Queues = append(b.Queues, bq)
	}
	return b
}

// join registers a browser; it gets the newest board at once.
func (h *hub) join() (*sseClient, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.clients) >= maxSSEClients {
		return nil, false
	}
	c := &sseClient{box: make(chan []byte, 1)}
	h.clients[c] = struct{}{}
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return c, true
}

func (h *hub) leave(c *sseClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.box)
	}
}

func (w *Web) wallboard(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, w.hub.board())
}

// events is the Server-Sent Events stream: a "hello" event saying whether
// this client may change agent statuses, then a "board" event (a Board)
// after every change, within a fraction of a second, and every few seconds
// regardless.
func (w *Web) events(rw http.ResponseWriter, r *http.Request) {
	c, ok := w.hub.join()
	if !ok {
		jsonError(rw, http.StatusServiceUnavailable, "too many event streams")
		return
	}
	defer w.hub.leave(c)
	rc := http.NewResponseController(rw)
	h := rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rw.WriteHeader(http.StatusOK)
	send := func(event string, data []byte) bool {
		// A browser that stops reading is dropped after httpWriteTimeout
		// instead of holding a goroutine forever.
		_ = rc.SetWriteDeadline(time.Now().Add(httpWriteTimeout))
		if _, err := fmt.Fprintf(rw, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	hello, _ := json.Marshal(map[string]bool{"can_write": w.canWrite(r)})
	if !send("hello", hello) {
		return
	}
	for {
		select {
		case b, ok := <-c.box:
			if !ok || !send("board", b) {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
