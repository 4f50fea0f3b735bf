package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/testphone"
)

// TestSIPBanListedLiftedAndPersisted is issue 11's done-when for password
// guessing, over real sockets: three wrong passwords ban 127.0.0.1 (the
// test's limit), so the right password is refused; `ccpbx cli -x 'ban
// list'` shows the ban with its source, it survives a restart, and after
// `ban del` the right password registers.
func TestSIPBanListedLiftedAndPersisted(t *testing.T) {
	dir := t.TempDir()
	edit := func(c *config.Config) {
		c.Core.DataDir = dir
		c.SIPSecurity.AuthFailures = 3
	}
	p := testPBX(t, edit)
	server := p.sip.Addr("internal").String()
	for i := 1; i <= 3; i++ {
		res, err := testphone.New(t).Register(context.Background(), server, "1001", "guess", time.Hour)
		if err != nil || res.StatusCode != 401 {
			t.Fatalf("guess %d: %v %v", i, res, err)
		}
		// core.user_agent's default: no version for scanners.
		if ua := res.GetHeader("User-Agent"); ua == nil || ua.Value() != "ccpbx" {
			t.Fatalf("User-Agent = %v, want ccpbx", ua)
		}
	}
	var out, errb bytes.Buffer
	if code := runCLI([]string{"-H", p.esl.Addr().String(), "-p", config.ShippedEventSocketPassword, "-x", "ban list"},
		strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("cli: exit %d %q", code, errb.String())
	}
	if !strings.Contains(out.String(), "source|ip|until|seconds_left|failures\n") || !strings.Contains(out.String(), "\nsip|127.0.0.1|") {
		t.Fatalf("ban list = %q", out.String())
	}
	refused := func(p *pbx) {
		t.Helper()
		// Dropped unanswered: the phone gives up at our deadline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if res, err := testphone.New(t).Register(ctx, p.sip.Addr("internal").String(), "1001", "1234", time.Hour); err == nil {
			t.Fatalf("banned source answered %v", res)
		}
	}
	refused(p)

	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	p.shutdown(sctx)
	cancel()
	p = testPBX(t, edit)
	if got := p.api(t, "ban list"); !strings.Contains(got, "\nsip|127.0.0.1|") {
		t.Fatalf("after restart: ban list = %q", got)
	}
	refused(p)
	if got := p.api(t, "ban del 127.0.0.1"); got != "+OK 127.0.0.1 lifted (sip)\n" {
		t.Fatalf("ban del = %q", got)
	}
	agentPhone(t, p, "1001")
	if got := p.api(t, "ban list"); got != "+OK\n" {
		t.Fatalf("after del: ban list = %q", got)
	}
}

// TestEventSocketBansListedAndLifted: the event socket's bans are in the
// same list, with their source. Loopback is on the default allow-list, so
// wrong passwords from this machine never lock `ccpbx cli` out; with the
// allow-list emptied, two wrong passwords ban 127.0.0.1 (the test's limit)
// and `ban del` lets the right password in again.
func TestEventSocketBansListedAndLifted(t *testing.T) {
	cli := func(p *pbx, pass, cmd string) (string, int) {
		var out, errb bytes.Buffer
		code := runCLI([]string{"-H", p.esl.Addr().String(), "-p", pass, "-x", cmd}, strings.NewReader(""), &out, &errb)
		return out.String() + errb.String(), code
	}
	open := testPBX(t, func(c *config.Config) { c.EventSocket.AuthFailures = 2 })
	for i := 0; i < 3; i++ {
		cli(open, "wrong", "status")
	}
	if out, code := cli(open, config.ShippedEventSocketPassword, "ban list"); code != 0 || strings.TrimSpace(out) != "+OK" {
		t.Fatalf("loopback banned by default: exit %d %q", code, out)
	}

	p := testPBX(t, func(c *config.Config) {
		c.EventSocket.AuthFailures = 2
		c.EventSocket.BanAllow = nil
	})
	for i := 0; i < 2; i++ {
		if _, code := cli(p, "wrong", "status"); code == 0 {
			t.Fatal("wrong password accepted")
		}
	}
	if _, code := cli(p, config.ShippedEventSocketPassword, "status"); code == 0 {
		t.Fatal("banned address logged in")
	}
	if got := p.api(t, "ban list"); !strings.Contains(got, "\nevent_socket|127.0.0.1|") {
		t.Fatalf("ban list = %q", got)
	}
	if got := p.api(t, "ban del 127.0.0.1"); got != "+OK 127.0.0.1 lifted (event_socket)\n" {
		t.Fatalf("ban del = %q", got)
	}
	if out, code := cli(p, config.ShippedEventSocketPassword, "ban list"); code != 0 || strings.TrimSpace(out) != "+OK" {
		t.Fatalf("after ban del: exit %d %q", code, out)
	}
}
