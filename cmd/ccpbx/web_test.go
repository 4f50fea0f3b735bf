package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/pbxtest"
)

// webTestPBX starts the shipped config in process on loopback and ephemeral
// ports, with the web server as edit leaves it.
func webTestPBX(t *testing.T, edit func(*config.Config)) (*pbx, error) {
	t.Helper()
	cfg, err := config.Load("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Profiles {
		cfg.Profiles[i].ListenIP = "127.0.0.1"
		cfg.Profiles[i].AdvertiseIP = "127.0.0.1"
		cfg.Profiles[i].Port = 0
	}
	cfg.EventSocket.Listen = "127.0.0.1:0"
	cfg.Core.DataDir = t.TempDir()
	cfg.HTTP.Listen, cfg.HTTP.ListenDefault = "127.0.0.1:0", false
	if edit != nil {
		edit(cfg)
	}
	p, err := start(context.Background(), cfg, newLogger(config.Core{LogLevel: "error"}, io.Discard))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		p.shutdown(ctx)
	})
	return p, nil
}

func TestHealthz(t *testing.T) {
	p, err := webTestPBX(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + p.web.Addr().String() + "/healthz"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		OK     bool
		Checks []struct {
			Name string
			OK   bool
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !h.OK {
		t.Fatalf("healthz: %d %+v %v", resp.StatusCode, h, err)
	}
	names := []string{}
	for _, c := range h.Checks {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "sip profile internal,sip profile blueivr,database" {
		t.Errorf("checks = %s", got)
	}
	var out, errb bytes.Buffer
	if rc := healthCmd([]string{"-url", url}, &out, &errb); rc != 0 {
		t.Errorf("ccpbx health = %d: %s", rc, errb.String())
	}

	// The database going away is unhealthy, and so is the exit code.
	p.store.Close()
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("healthz with the database closed: %d", resp.StatusCode)
	}
	if rc := healthCmd([]string{"-url", url}, &out, &errb); rc != 1 {
		t.Errorf("ccpbx health with the database closed = %d", rc)
	}
	p.store = nil // closed above; shutdown must not close it twice
}

// TestHTTPPortTaken: the default port taken leaves the PBX running without
// the web server; a port the admin wrote stops the start.
func TestHTTPPortTaken(t *testing.T) {
	taken := pbxtest.ListenTCP(t)
	p, err := webTestPBX(t, func(c *config.Config) {
		c.HTTP.Listen, c.HTTP.ListenDefault = taken.Addr().String(), true
	})
	if err != nil {
		t.Fatalf("default listen taken: %v", err)
	}
	if p.web != nil {
		t.Fatal("web server running on a taken port")
	}
	_, err = webTestPBX(t, func(c *config.Config) { c.HTTP.Listen = taken.Addr().String() })
	if err == nil || !strings.Contains(err.Error(), "http "+taken.Addr().String()) {
		t.Fatalf("explicit listen taken: %v", err)
	}
}

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct {
		h    config.HTTP
		want string
	}{
		{config.HTTP{Listen: "127.0.0.1:8080"}, "http://127.0.0.1:8080/healthz"},
		{config.HTTP{Listen: "0.0.0.0:9000", TLSCert: "c", TLSKey: "k"}, "https://127.0.0.1:9000/healthz"},
		{config.HTTP{Listen: "[::]:8080"}, "http://[::1]:8080/healthz"},
		{config.HTTP{Listen: ":8080"}, "http://127.0.0.1:8080/healthz"},
		{config.HTTP{Listen: "pbx.example:8080"}, "http://pbx.example:8080/healthz"},
	} {
		if got := healthURL(tc.h); got != tc.want {
			t.Errorf("healthURL(%q) = %q, want %q", tc.h.Listen, got, tc.want)
		}
	}
}
