package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ccpbx/call"
	"ccpbx/config"
)

// Web is ccpbx's HTTP server: the REST API under /api/v1/, its OpenAPI
// description, the Server-Sent Events feed and the wallboard that reads it,
// Prometheus /metrics and /healthz. It is standard-library net/http with
// Go 1.22 routing patterns.
//
// It is meant to face a network: header and body sizes, read and write
// times and SSE clients are bounded; credentials are compared in constant
// time; writes from another site's page are refused
// (http.CrossOriginProtection); without credentials (loopback only, which
// config enforces) a request must name a loopback host, so a DNS-rebinding
// page cannot reach the API.
type Web struct {
	o    WebOptions
	log  *slog.Logger
	mux  *http.ServeMux
	hub  *hub
	srv  *http.Server
	ln   net.Listener
	errc chan error

	shutOnce sync.Once
	shutErr  error
}

// HealthCheck is one line of /healthz.
type HealthCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// WebOptions are what the web server serves; Core and Config are required.
type WebOptions struct {
	Config        config.HTTP
	Core          *call.Core
	Callcenter    Callcenter
	Registrations Registrations
	Metrics       *Metrics // nil: no /metrics, no service level
	// Health runs the checks of /healthz.
	Health func(ctx context.Context) []HealthCheck
	Log    *slog.Logger
	// Hostname is the `show registrations`/`show channels` hostname column.
	Hostname string
}

// Limits of the web server.
const (
	maxBodyBytes      = 64 << 10
	maxHeaderBytes    = 16 << 10
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	httpWriteTimeout  = 30 * time.Second // every response but the event stream
	idleTimeout       = 120 * time.Second
	maxSSEClients     = 256
)

//go:embed web
var webFS embed.FS

// NewWeb builds the server; Start listens.
func NewWeb(o WebOptions) *Web {
	if o.Log == nil {
		o.Log = o.Core.Log
	}
	if o.Hostname == "" {
		o.Hostname = o.Core.Hostname
	}
	w := &Web{o: o, log: o.Log, mux: http.NewServeMux()}
	w.hub = newHub(o.Core, o.Callcenter, o.Metrics, o.Log)
	w.routes()
	return w
}

// route is one entry of the API; the OpenAPI test checks each is described.
type route struct {
	pattern string
	h       http.HandlerFunc
}

func (w *Web) routeTable() []route {
	return []route{
		{"GET /{$}", w.index},
		{"GET /static/{file}", w.static},
		{"GET /healthz", w.healthz},
		{"GET /metrics", w.metrics},
		{"GET /api/v1/openapi.json", w.openapi},
		{"GET /api/v1/events", w.events},
		{"GET /api/v1/wallboard", w.wallboard},
		{"GET /api/v1/queues", w.listQueues},
		{"GET /api/v1/queues/{queue}/members", w.listQueueMembers},
		{"GET /api/v1/queues/{queue}/agents", w.listQueueAgents},
		{"GET /api/v1/queues/{queue}/tiers", w.listQueueTiers},
		{"GET /api/v1/queues/{queue}/stats", w.queueStats},
		{"GET /api/v1/agents", w.listAgents},
		{"PUT /api/v1/agents/{agent}/status", w.setAgentStatus},
		{"POST /api/v1/agents/{agent}/login", w.agentAction("Available")},
		{"POST /api/v1/agents/{agent}/logout", w.agentAction("Logged Out")},
		{"POST /api/v1/agents/{agent}/break", w.agentAction("On Break")},
		{"GET /api/v1/tiers", w.listTiers},
		{"POST /api/v1/tiers", w.addTier},
		{"DELETE /api/v1/tiers/{queue}/{agent}", w.delTier},
		{"GET /api/v1/members", w.listMembers},
		{"GET /api/v1/registrations", w.listRegistrations},
		{"GET /api/v1/channels", w.listChannels},
		{"DELETE /api/v1/channels/{uuid}", w.hangupChannel},
	}
}

func (w *Web) routes() {
	for _, r := range w.routeTable() {
		w.mux.HandleFunc(r.pattern, r.h)
	}
	if w.o.Config.Pprof {
		w.pprofRoutes()
	}
}

// Handler is the whole server with its protections, for tests and Start.
func (w *Web) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	return w.guard(cop.Handler(w.mux))
}

// guard applies the limits and the authentication every request passes.
func (w *Web) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h := rw.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rw, r.Body, maxBodyBytes)
		}
		if r.URL.Path != "/api/v1/events" {
			// The server has no WriteTimeout, for the event stream's sake;
			// everything else gets one here.
			_ = http.NewResponseController(rw).SetWriteDeadline(time.Now().Add(httpWriteTimeout))
		}
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(rw, r)
			return
		}
		if !w.o.Config.HasAuth() {
			if !loopbackHost(r.Host) {
				jsonError(rw, http.StatusMisdirectedRequest, "this server has no credentials configured and answers only to a loopback host name")
				return
			}
		} else if !w.authorized(r) && !(w.o.Config.PublicRead && isRead(r.Method)) {
			if w.o.Config.Username != "" {
				h.Set("WWW-Authenticate", `Basic realm="ccpbx", charset="UTF-8"`)
			} else {
				h.Set("WWW-Authenticate", `Bearer realm="ccpbx"`)
			}
			jsonError(rw, http.StatusUnauthorized, "authentication required")
			return
		}
		next.ServeHTTP(rw, r)
	})
}

func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// canWrite reports whether r may change things (the wallboard shows the
// agent status controls only then).
func (w *Web) canWrite(r *http.Request) bool { return !w.o.Config.HasAuth() || w.authorized(r) }

// authorized reports whether r carries the configured token or basic
// credentials. Comparisons take constant time.
func (w *Web) authorized(r *http.Request) bool {
	c := w.o.Config
	if c.Token != "" {
		if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(c.Token)) == 1 {
			return true
		}
	}
	if c.Username != "" && c.Password != "" {
		if u, p, ok := r.BasicAuth(); ok &&
			subtle.ConstantTimeCompare([]byte(u), []byte(c.Username))&
				subtle.ConstantTimeCompare([]byte(p), []byte(c.Password)) == 1 {
			return true
		}
	}
	return false
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Start listens on the configured address and serves in the background.
func (w *Web) Start() error {
	ln, err := net.Listen("tcp", w.o.Config.Listen)
	if err != nil {
		return err
	}
	w.srv = &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
	}
	if w.o.Config.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(w.o.Config.TLSCert, w.o.Config.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		w.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, w.srv.TLSConfig)
	}
	w.ln = ln
	w.hub.start()
	w.errc = make(chan error, 1)
	go func() {
		err := w.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		w.errc <- err
	}()
	return nil
}

// Addr is the listening address (after Start).
func (w *Web) Addr() net.Addr {
	if w.ln == nil {
		return nil
	}
	return w.ln.Addr()
}

// Shutdown stops accepting, ends the event streams and waits (bounded by
// ctx) for requests in flight. Later calls return the first one's result.
func (w *Web) Shutdown(ctx context.Context) error {
	if w.srv == nil {
		return nil
	}
	w.shutOnce.Do(func() {
		w.hub.close() // event streams end, so Shutdown need not wait for them
		err := w.srv.Shutdown(ctx)
		if err != nil {
			w.srv.Close()
		}
		if serr := <-w.errc; err == nil {
			err = serr
		}
		w.shutErr = err
	})
	return w.shutErr
}

func (w *Web) metrics(rw http.ResponseWriter, r *http.Request) {
	if w.o.Metrics == nil {
		http.NotFound(rw, r)
		return
	}
	promhttp.HandlerFor(w.o.Metrics.Registry(), promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelWarn)}).ServeHTTP(rw, r)
}

func (w *Web) healthz(rw http.ResponseWriter, r *http.Request) {
	var checks []HealthCheck
	if w.o.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		checks = w.o.Health(ctx)
		cancel()
	}
	ok := true
	for _, c := range checks {
		ok = ok && c.OK
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(rw, status, map[string]any{"ok": ok, "checks": checks})
}

func (w *Web) index(rw http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(rw, "wallboard missing", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(b)
}

func (w *Web) static(rw http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	i := strings.LastIndexByte(name, '.')
	if i < 0 || ct[name[i:]] == "" || strings.ContainsAny(name, "/\\") {
		http.NotFound(rw, r)
		return
	}
	b, err := webFS.ReadFile("web/" + name)
	if err != nil {
		http.NotFound(rw, r)
		return
	}
	rw.Header().Set("Content-Type", ct[name[i:]])
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(b)
}

//go:embed openapi.json
var openapiJSON []byte

func (w *Web) openapi(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Write(openapiJSON)
}
