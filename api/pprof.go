package api

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofRoutes serves Go's runtime profiles under /debug/pprof/ ([http]
// pprof = true, off by default). They reveal internals (stacks, heap
// contents' call sites), so unlike the other reads public_read does not
// open them: with credentials configured a request must carry them.
func (w *Web) pprofRoutes() {
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
