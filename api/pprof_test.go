package api

import (
	"testing"

	"ccpbx/config"
)

// TestPprofOptInAndBehindCredentials: /debug/pprof/ is absent by default;
// with pprof = true it needs the credentials even when public_read opens
// the other reads.
func TestPprofOptInAndBehindCredentials(t *testing.T) {
	f := newWebFixture(t, config.HTTP{})
	if rw := f.do(t, "GET", "/debug/pprof/", ""); rw.Code != 404 {
		t.Errorf("pprof off by default: %d", rw.Code)
	}
	f = newWebFixture(t, config.HTTP{Pprof: true})
	if rw := f.do(t, "GET", "/debug/pprof/goroutine?debug=1", ""); rw.Code != 200 {
		t.Errorf("pprof on, loopback, no credentials configured: %d", rw.Code)
	}
	f = newWebFixture(t, config.HTTP{Pprof: true, Token: "s3cret", PublicRead: true})
	if rw := f.do(t, "GET", "/api/v1/agents", ""); rw.Code != 200 {
		t.Errorf("public read: %d", rw.Code)
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if rw := f.do(t, "GET", p, ""); rw.Code != 401 {
			t.Errorf("%s without credentials under public_read: %d", p, rw.Code)
		}
	}
	if rw := f.do(t, "GET", "/debug/pprof/heap?debug=1", "", "Authorization", "Bearer s3cret"); rw.Code != 200 {
		t.Errorf("pprof with the token: %d", rw.Code)
	}
}
