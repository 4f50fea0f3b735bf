package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
)

// fakeCC is a Callcenter whose view the test sets.
type fakeCC struct {
	mu sync.Mutex
	v  CallcenterView
}

func (f *fakeCC) CallcenterView() (CallcenterView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.v
	v.Time = time.Unix(1_700_000_100, 0)
	v.Members = append([]MemberRow(nil), f.v.Members...)
	v.Agents = append([]AgentRow(nil), f.v.Agents...)
	return v, nil
}

func (f *fakeCC) set(mod func(v *CallcenterView)) {
	f.mu.Lock()
	mod(&f.v)
	f.mu.Unlock()
}

type webFixture struct {
	core  *call.Core
	cc    *fakeCC
	m     *Metrics
	web   *Web
	lines []string // API lines the fake callcenter_config received
	mu    sync.Mutex
}

func newWebFixture(t *testing.T, hc config.HTTP) *webFixture {
	t.Helper()
	f := &webFixture{core: call.NewCore("test", slog.New(slog.NewTextHandler(io.Discard, nil))), cc: &fakeCC{}}
	f.cc.v = CallcenterView{
		Queues: []QueueRow{{Name: "3000@default", Strategy: "longest-idle-agent"}},
		Agents: []AgentRow{{Name: "1001", Status: "Available", State: "Waiting", LastStatusChange: 1_700_000_000}},
		Tiers:  []TierRow{{Queue: "3000@default", Agent: "1001", State: "Ready", Level: 1, Position: 1}},
	}
	f.core.RegisterAPI("callcenter_config", "fake", func(_ context.Context, args string, _ *call.Channel) string {
		f.mu.Lock()
		f.lines = append(f.lines, args)
		f.mu.Unlock()
		if strings.HasPrefix(args, "queue stats 3000@default ") {
			return "{\n  \"queue\": \"3000@default\"\n}\n"
		}
		if strings.HasPrefix(args, "queue stats ") {
			return "-ERR Queue not found!\n"
		}
		if strings.Contains(args, "nobody") {
			return "-ERR Agent not found!\n"
		}
		if strings.Contains(args, "'Sleeping'") || strings.HasSuffix(args, " Sleeping") {
			return "-ERR Invalid Agent Status!\n"
		}
		return "+OK\n"
	})
	f.core.RegisterAPI("json", "fake", func(_ context.Context, args string, _ *call.Channel) string {
		return `{"command":"callcenter_config","status":"success","response":[{"name":"1001","status":"Available"}]}`
	})
	f.m = NewMetrics(f.core, MetricsOptions{Callcenter: f.cc})
	if hc.Listen == "" {
		hc.Listen = "127.0.0.1:0"
	}
	f.web = NewWeb(WebOptions{Config: hc, Core: f.core, Callcenter: f.cc, Metrics: f.m,
		Health: func(context.Context) []HealthCheck { return []HealthCheck{{Name: "sip", OK: true}} }})
	return f
}

func (f *webFixture) do(t *testing.T, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	rw := httptest.NewRecorder()
	f.web.Handler().ServeHTTP(rw, r)
	return rw
}

// TestOpenAPIDescribesEveryRoute parses the embedded OpenAPI document and
// checks that every route the server has (but the wallboard's own files) is
// described with its method, and nothing described is missing.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	f := newWebFixture(t, config.HTTP{})
	served := map[string]bool{}
	for _, r := range f.web.routeTable() {
		method, path, _ := strings.Cut(r.pattern, " ")
		if path == "/{$}" || strings.HasPrefix(path, "/static/") {
			continue
		}
		key := strings.ToLower(method) + " " + path
		served[key] = true
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", r.pattern)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if !served[m+" "+p] {
				t.Errorf("openapi.json describes %s %s, which the server does not route", m, p)
			}
		}
	}
	rw := f.do(t, "GET", "/api/v1/openapi.json", "")
	if rw.Code != 200 || !json.Valid(rw.Body.Bytes()) {
		t.Fatalf("GET openapi.json: %d", rw.Code)
	}
}

func TestRESTWritesRunTheCommands(t *testing.T) {
	f := newWebFixture(t, config.HTTP{})
	for _, tc := range []struct {
		method, path, body string
		code               int
		line, reply        string
	}{
		{"PUT", "/api/v1/agents/1001/status", `{"status":"On Break"}`, 200, "agent set status 1001 'On Break'", `"reply":"+OK"`},
		{"POST", "/api/v1/agents/1001/login", "", 200, "agent set status 1001 Available", `"reply":"+OK"`},
		{"POST", "/api/v1/agents/1001/logout", "", 200, "agent set status 1001 'Logged Out'", `"reply":"+OK"`},
		{"PUT", "/api/v1/agents/nobody/status", `{"status":"Available"}`, 404, "agent set status nobody Available",
			`{"error":"Agent not found!","reply":"-ERR Agent not found!"}`},
		{"PUT", "/api/v1/agents/1001/status", `{"status":"Sleeping"}`, 400, "agent set status 1001 Sleeping",
			`{"error":"Invalid Agent Status!","reply":"-ERR Invalid Agent Status!"}`},
		{"POST", "/api/v1/tiers", `{"queue":"3000@default","agent":"1002","level":2,"position":"3"}`, 200,
			"tier add 3000@default 1002 2 3", `"reply":"+OK"`},
		{"DELETE", "/api/v1/tiers/3000@default/1002", "", 200, "tier del 3000@default 1002", `"reply":"+OK"`},
	} {
		rw := f.do(t, tc.method, tc.path, tc.body)
		if rw.Code != tc.code || !strings.Contains(rw.Body.String(), tc.reply) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, rw.Code, rw.Body, tc.code, tc.reply)
		}
		f.mu.Lock()
		last := f.lines[len(f.lines)-1]
		f.mu.Unlock()
		if last != tc.line {
			t.Errorf("%s %s ran %q, want %q", tc.method, tc.path, last, tc.line)
		}
	}
	// What the command line could not carry is refused before it runs.
	if rw := f.do(t, "PUT", "/api/v1/agents/1001/status", `{"status":"x' 'y"}`); rw.Code != 400 {
		t.Errorf("quote in status: %d", rw.Code)
	}
	if rw := f.do(t, "PUT", "/api/v1/agents/1001/status", `{"status":"Available","x":1}`); rw.Code != 400 {
		t.Errorf("unknown field: %d", rw.Code)
	}
	r := httptest.NewRequest("PUT", "http://127.0.0.1/api/v1/agents/1001/status", strings.NewReader(`{"status":"Available"}`))
	rw := httptest.NewRecorder()
	f.web.Handler().ServeHTTP(rw, r)
	if rw.Code != http.StatusUnsupportedMediaType {
		t.Errorf("no content type: %d", rw.Code)
	}
	// uuid_kill is not registered in this core: the core's own text.
	if rw := f.do(t, "DELETE", "/api/v1/channels/no-such-uuid", ""); rw.Code != 404 || !strings.Contains(rw.Body.String(), "uuid_kill Command not found!") {
		t.Errorf("hangup: %d %s", rw.Code, rw.Body)
	}
	if rw := f.do(t, "GET", "/api/v1/queues/3000@default/stats?period=interval", ""); rw.Code != 200 || !strings.Contains(rw.Body.String(), `"queue": "3000@default"`) {
		t.Errorf("queue stats: %d %s", rw.Code, rw.Body)
	}
	f.mu.Lock()
	last := f.lines[len(f.lines)-1]
	f.mu.Unlock()
	if last != "queue stats 3000@default interval json" {
		t.Errorf("queue stats ran %q", last)
	}
	if rw := f.do(t, "GET", "/api/v1/queues/nope/stats", ""); rw.Code != 404 || !strings.Contains(rw.Body.String(), `"error":"Queue not found!"`) {
		t.Errorf("queue stats of an unknown queue: %d %s", rw.Code, rw.Body)
	}
	if rw := f.do(t, "GET", "/api/v1/queues/3000@default/stats?period=week", ""); rw.Code != 400 {
		t.Errorf("queue stats period=week: %d", rw.Code)
	}
	if rw := f.do(t, "GET", "/api/v1/agents", ""); rw.Code != 200 || !strings.Contains(rw.Body.String(), `"name":"1001"`) {
		t.Errorf("agent list: %d %s", rw.Code, rw.Body)
	}
}

func TestWebAuth(t *testing.T) {
	f := newWebFixture(t, config.HTTP{Token: "s3cret", Username: "sup", Password: "pw"})
	if rw := f.do(t, "GET", "/api/v1/agents", ""); rw.Code != 401 || rw.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: %d", rw.Code)
	}
	if rw := f.do(t, "GET", "/api/v1/agents", "", "Authorization", "Bearer wrong"); rw.Code != 401 {
		t.Errorf("wrong token: %d", rw.Code)
	}
	if rw := f.do(t, "GET", "/api/v1/agents", "", "Authorization", "Bearer s3cret"); rw.Code != 200 {
		t.Errorf("token: %d", rw.Code)
	}
	r := httptest.NewRequest("GET", "http://pbx.example/api/v1/agents", nil)
	r.SetBasicAuth("sup", "pw")
	rw := httptest.NewRecorder()
	f.web.Handler().ServeHTTP(rw, r)
	if rw.Code != 200 {
		t.Errorf("basic auth from a non-loopback host name: %d", rw.Code)
	}
	if rw := f.do(t, "GET", "/healthz", ""); rw.Code != 200 {
		t.Errorf("healthz needs no credentials: %d", rw.Code)
	}
	// A page on another site cannot make the browser write.
	if rw := f.do(t, "POST", "/api/v1/agents/1001/logout", "", "Authorization", "Bearer s3cret", "Sec-Fetch-Site", "cross-site"); rw.Code != 403 {
		t.Errorf("cross-site write: %d", rw.Code)
	}

	f = newWebFixture(t, config.HTTP{Token: "s3cret", PublicRead: true})
	if rw := f.do(t, "GET", "/api/v1/agents", ""); rw.Code != 200 {
		t.Errorf("public read: %d", rw.Code)
	}
	if rw := f.do(t, "POST", "/api/v1/agents/1001/logout", ""); rw.Code != 401 {
		t.Errorf("public read let a write through: %d", rw.Code)
	}

	// Without credentials only a loopback host name is answered (DNS
	// rebinding).
	f = newWebFixture(t, config.HTTP{})
	r = httptest.NewRequest("GET", "http://rebind.example:8080/api/v1/agents", nil)
	rw = httptest.NewRecorder()
	f.web.Handler().ServeHTTP(rw, r)
	if rw.Code != http.StatusMisdirectedRequest {
		t.Errorf("foreign host without auth: %d", rw.Code)
	}
	for _, h := range []string{"localhost:8080", "[::1]:8080", "127.0.0.1"} {
		r = httptest.NewRequest("GET", "http://"+h+"/api/v1/agents", nil)
		rw = httptest.NewRecorder()
		f.web.Handler().ServeHTTP(rw, r)
		if rw.Code != 200 {
			t.Errorf("host %s: %d", h, rw.Code)
		}
	}
}

// fireCC publishes a callcenter::info event as the ACD does.
func fireCC(core *call.Core, kv ...string) {
	e := &call.Event{Name: "CUSTOM", Subclass: "callcenter::info"}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Add(kv[i], kv[i+1])
	}
	core.Fire(e)
}

func TestMetricsCountQueueOutcomes(t *testing.T) {
	f := newWebFixture(t, config.HTTP{})
	q := "3000@default"
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-start")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "bridge-agent-start", "CC-Member-Joined-Time", "1000", "CC-Agent-Answered-Time", "1012")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-start")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "bridge-agent-start", "CC-Member-Joined-Time", "1000", "CC-Agent-Answered-Time", "1045")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-start")
	fireCC(f.core, "CC-Queue", q, "CC-Action", "member-queue-end", "CC-Cause", "Cancel", "CC-Cancel-Reason", "BREAK_OUT",
		"CC-Member-Joined-Time", "1000", "CC-Member-Leaving-Time", "1003")
	f.cc.set(func(v *CallcenterView) {
		v.Members = []MemberRow{{Queue: q, UUID: "m1", CIDNumber: "5551234", State: "Waiting", JoinedEpoch: 1_700_000_070}}
	})
	rw := f.do(t, "GET", "/metrics", "")
	body := rw.Body.String()
	for _, want := range []string{
		`ccpbx_queue_calls_offered_total{queue="3000@default"} 3`,
		`ccpbx_queue_calls_answered_total{queue="3000@default"} 2`,
		`ccpbx_queue_calls_abandoned_total{queue="3000@default"} 1`,
		`ccpbx_queue_calls_cancelled_total{queue="3000@default",reason="BREAK_OUT"} 1`,
		`ccpbx_queue_wait_seconds_bucket{outcome="answered",queue="3000@default",le="20"} 1`,
		`ccpbx_queue_wait_seconds_count{outcome="abandoned",queue="3000@default"} 1`,
		`ccpbx_queue_service_level_ratio{queue="3000@default"} 0.3333333333333333`,
		`ccpbx_queue_members_waiting{queue="3000@default"} 1`,
		`ccpbx_queue_longest_wait_seconds{queue="3000@default"} 30`,
		`ccpbx_agent_status{agent="1001",status="Available"} 1`,
		`ccpbx_agent_status{agent="1001",status="On Break"} 0`,
		`ccpbx_agent_state{agent="1001",state="Waiting"} 1`,
		`ccpbx_channels 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	f.m.SIPRequest("internal", "INVITE", true)
	f.m.SIPRequest("internal", "FOO\nBAR", true)
	f.m.SIPResponse("internal", "INVITE", 200, false)
	f.m.SetRTPSource(func() RTPStats { return RTPStats{PacketsIn: 5} })
	body = f.do(t, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`ccpbx_sip_requests_total{direction="in",method="INVITE",profile="internal"} 1`,
		`ccpbx_sip_requests_total{direction="in",method="OTHER",profile="internal"} 1`,
		`ccpbx_sip_responses_total{code="200",direction="out",method="INVITE",profile="internal"} 1`,
		`ccpbx_rtp_packets_received_total 5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	PromtoolCheck(t, body)
}

// PromtoolCheck runs `promtool check metrics` on an exposition when promtool
// is installed; in CI (CI=true) it must be.
func PromtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found (Debian package prometheus); CI installs it in .ci/run")
		}
		t.Log("promtool not installed: skipping promtool check metrics")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestEventsStream: a browser gets hello, then a board, then a new board
// after a change; a browser that never reads does not hold anything up.
func TestEventsStream(t *testing.T) {
	f := newWebFixture(t, config.HTTP{})
	if err := f.web.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.web.Shutdown(context.Background())
	// A second Shutdown (the PBX's shutdown may run twice) returns at once.
	defer f.web.Shutdown(context.Background())
	base := "http://" + f.web.Addr().String()

	// A stalled client: connected, never reads.
	stalled, err := http.Get(base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Body.Close()

	resp, err := http.Get(base + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	boards := make(chan Board, 16)
	hello := make(chan string, 1)
	go func() {
		defer close(boards)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "data: ") && event == "hello":
				hello <- line[len("data: "):]
			case strings.HasPrefix(line, "data: ") && event == "board":
				var b Board
				if json.Unmarshal([]byte(line[len("data: "):]), &b) == nil {
					boards <- b
				}
			}
		}
	}()
	select {
	case h := <-hello:
		if h != `{"can_write":true}` {
			t.Errorf("hello = %s", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no hello event")
	}
	next := func(cond func(Board) bool, what string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case b, ok := <-boards:
				if !ok {
					t.Fatalf("stream ended waiting for %s", what)
				}
				if cond(b) {
					return
				}
			case <-deadline:
				t.Fatalf("no board with %s", what)
			}
		}
	}
	next(func(b Board) bool { return len(b.Agents) == 1 && b.Agents[0].State == "Waiting" }, "agent 1001 Waiting")
	f.cc.set(func(v *CallcenterView) {
		v.Members = []MemberRow{{Queue: "3000@default", UUID: "m1", CIDNumber: "5551234", State: "Waiting", JoinedEpoch: 1_700_000_090}}
	})
	fireCC(f.core, "CC-Queue", "3000@default", "CC-Action", "member-queue-start")
	next(func(b Board) bool {
		return len(b.Callers) == 1 && b.Callers[0].CIDNumber == "5551234" && b.Queues[0].Waiting == 1 && b.Queues[0].LongestWait == 10
	}, "the waiting caller")
	// Many changes while the stalled client reads nothing: the hub keeps
	// publishing to the reading one.
	for i := 0; i < 50; i++ {
		fireCC(f.core, "CC-Agent", "1001", "CC-Action", "agent-state-change", "CC-Agent-State", "Receiving")
	}
	f.cc.set(func(v *CallcenterView) { v.Agents[0].State = "In a queue call" })
	fireCC(f.core, "CC-Agent", "1001", "CC-Action", "agent-state-change", "CC-Agent-State", "In a queue call")
	next(func(b Board) bool { return b.Agents[0].State == "In a queue call" }, "agent In a queue call")
}
