package api

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// Sampling of the block and mutex profiles while pprof is on: one
// blocking event per 10 µs spent blocked and one mutex contention in 10,
// cheap enough to leave on under load and enough to see where goroutines
// wait (a lock in front of the database, a full channel) rather than work.
const (
	pprofBlockRateNS   = 10_000
	pprofMutexFraction = 10
)

// pprofRoutes serves Go's runtime profiles under /debug/pprof/ ([http]
// pprof = true, off by default), with the block and mutex profiles
// sampling (/debug/pprof/block, /debug/pprof/mutex). They reveal internals
// (stacks, heap contents' call sites), so unlike the other reads
// public_read does not open them: with credentials configured a request
// must carry them.
func (w *Web) pprofRoutes() {
	runtime.SetBlockProfileRate(pprofBlockRateNS)
	runtime.SetMutexProfileFraction(pprofMutexFraction)
	only := func(h http.HandlerFunc) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			if w.o.Config.HasAuth() && !w.authorized(r) {
				jsonError(rw, http.StatusUnauthorized, "authentication required")
				return
			}
			// Profiles take seconds; the server's per-request write
			// deadline would cut them.
			_ = http.NewResponseController(rw).SetWriteDeadline(time.Time{})
			h(rw, r)
		}
	}
	w.mux.HandleFunc("GET /debug/pprof/", only(pprof.Index))
	w.mux.HandleFunc("GET /debug/pprof/cmdline", only(pprof.Cmdline))
	w.mux.HandleFunc("GET /debug/pprof/profile", only(pprof.Profile))
	w.mux.HandleFunc("GET /debug/pprof/symbol", only(pprof.Symbol))
	w.mux.HandleFunc("GET /debug/pprof/trace", only(pprof.Trace))
}
