package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"ccpbx/acd"
	"ccpbx/api"
	"ccpbx/config"
)

// callcenterView adapts the ACD's View to api's read model (api does not
// import acd).
type callcenterView struct{ a *acd.ACD }

func (c callcenterView) CallcenterView() (api.CallcenterView, error) {
	v, err := c.a.View()
	if err != nil {
		return api.CallcenterView{}, err
	}
	out := api.CallcenterView{
		Time:    v.Time,
		Queues:  make([]api.QueueRow, 0, len(v.Queues)),
		Agents:  make([]api.AgentRow, 0, len(v.Agents)),
		Tiers:   make([]api.TierRow, 0, len(v.Tiers)),
		Members: make([]api.MemberRow, 0, len(v.Members)),
	}
	for _, q := range v.Queues {
		out.Queues = append(out.Queues, api.QueueRow{Name: q.Name, Strategy: q.Strategy})
	}
	for _, a := range v.Agents {
		out.Agents = append(out.Agents, api.AgentRow{Name: a.Name, Status: a.Status, State: a.State,
			LastStatusChange: a.LastStatusChange, LastBridgeStart: a.LastBridgeStart, LastBridgeEnd: a.LastBridgeEnd,
			CallsAnswered: a.CallsAnswered})
	}
	for _, t := range v.Tiers {
		out.Tiers = append(out.Tiers, api.TierRow{Queue: t.Queue, Agent: t.Agent, State: t.State, Level: t.Level, Position: t.Position})
	}
	for _, m := range v.Members {
		out.Members = append(out.Members, api.MemberRow{Queue: m.Queue, UUID: m.UUID, SessionUUID: m.SessionUUID,
			CIDNumber: m.CIDNumber, CIDName: m.CIDName, State: m.State, JoinedEpoch: m.JoinedEpoch,
			ServingAgent: m.ServingAgent})
	}
	return out, nil
}

// health is what /healthz checks: every configured SIP profile has its
// listener, and the database takes a write (a read-only or full disk,
// or a lost volume, fails here before registrations are lost).
func (p *pbx) health(cfg *config.Config) func(ctx context.Context) []api.HealthCheck {
	return func(ctx context.Context) []api.HealthCheck {
		var out []api.HealthCheck
		for _, pr := range cfg.Profiles {
			c := api.HealthCheck{Name: "sip profile " + pr.Name, OK: p.sip != nil && p.sip.Addr(pr.Name).IsValid()}
			if c.OK {
				c.Detail = p.sip.Addr(pr.Name).String()
			} else {
				c.Detail = "not listening"
			}
			out = append(out, c)
		}
		db := api.HealthCheck{Name: "database", OK: true, Detail: "writable"}
		if err := dbWritable(ctx, p); err != nil {
			db.OK, db.Detail = false, err.Error()
		}
		return append(out, db)
	}
}

// dbWritable asks the store to take a write it rolls back.
func dbWritable(ctx context.Context, p *pbx) error {
	if p.store == nil {
		return errors.New("not open")
	}
	return p.store.Writable(ctx)
}

// startWeb starts the HTTP server. When the file did not write [http]
// listen and the default port is taken, the PBX runs on without it (logged
// as an error, and the health check fails): the wallboard's port must not
// stop phones from calling. A listen address the admin wrote is fatal.
func (p *pbx) startWeb(cfg *config.Config, regs api.Registrations) error {
	if !cfg.HTTP.Enabled {
		return nil
	}
	p.web = api.NewWeb(api.WebOptions{
		Config:        cfg.HTTP,
		Core:          p.core,
		Callcenter:    callcenterView{p.acd},
		Registrations: regs,
		Metrics:       p.metrics,
		Health:        p.health(cfg),
		Log:           p.log.With("component", "http"),
	})
	if err := p.web.Start(); err != nil {
		p.web = nil
		if cfg.HTTP.ListenDefault {
			p.log.Error("web server not started: the default [http] listen address is unavailable; set [http] listen (or enabled = false)",
				"listen", cfg.HTTP.Listen, "err", err)
			return nil
		}
		return fmt.Errorf("http %s: %w", cfg.HTTP.Listen, err)
	}
	p.log.Info("web server listening", "addr", p.web.Addr().String(), "tls", cfg.HTTP.TLSCert != "")
	return nil
}

// healthCmd is `ccpbx health`: GET /healthz of the running PBX the
// configuration describes; exit 0 when healthy. It is the Docker
// HEALTHCHECK (distroless has no curl).
func healthCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	url := fs.String("url", "", "healthz URL (default from [http] listen)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	target := *url
	if target == "" {
		cfg, err := loadConfig(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if !cfg.HTTP.Enabled {
			fmt.Fprintln(stderr, "health: [http] is disabled, nothing to ask")
			return 1
		}
		target = healthURL(cfg.HTTP)
	}
	// The server's certificate names its public name, not the loopback
	// address asked here; the check is of this machine's own daemon.
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback self-check
	}}
	resp, err := client.Get(target)
	if err != nil {
		fmt.Fprintf(stderr, "health: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	stdout.Write(body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "health: %s\n", resp.Status)
		return 1
	}
	return 0
}

// healthURL is /healthz on the listen address, with a wildcard host
// replaced by loopback.
func healthURL(h config.HTTP) string {
	host, port, err := net.SplitHostPort(h.Listen)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if h.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
}
