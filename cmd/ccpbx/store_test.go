package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/store/pgtest"
)

// TestServeOnPostgres: with [store] driver = "postgres" the PBX keeps its
// state in the server, not in data_dir: a second PBX on a fresh data_dir
// and the same DSN sees the first one's registration and agent status.
func TestServeOnPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	onPG := func(c *config.Config) {
		c.Store = config.Store{Driver: config.StorePostgres, DSN: dsn}
		for i := range c.Callcenter.Agents {
			c.Callcenter.Agents[i].Status = "" // the stored status stands
		}
	}
	p := testPBX(t, onPG)
	agentPhone(t, p, "1001")
	if r := p.api(t, "callcenter_config agent set status 1001 Available"); r != "+OK\n" {
		t.Fatalf("set status: %q", r)
	}
	if r := p.api(t, "show registrations"); !strings.Contains(r, "1001") {
		t.Fatalf("show registrations:\n%s", r)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	p.shutdown(sctx)

	p2 := testPBX(t, onPG) // another t.TempDir() as data_dir
	if got := agentField(t, p2, "1001", "status"); got != "Available" {
		t.Errorf("1001 after restart: %q, want Available", got)
	}
	if r := p2.api(t, "show registrations"); !strings.Contains(r, "1001") {
		t.Errorf("registration lost over restart:\n%s", r)
	}
}
