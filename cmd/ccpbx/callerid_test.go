package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/config"
)

// TestSpoofedFromShowsAccount is issue 11's caller-ID attack: 1002,
// authenticated as 1002, writes 1001 in its From. The call shows 1002's
// own caller ID, and 300 logs in agent 1002, not 1001.
func TestSpoofedFromShowsAccount(t *testing.T) {
	p := testPBX(t, nil)
	ph := agentPhone(t, p, "1002")
	events, cancel := p.core.Bus.Subscribe(16, func(e *call.Event) bool {
		return e.Name == "CHANNEL_CREATE" && e.Get("Call-Direction") == "inbound"
	})
	defer cancel()
	spoof := func(r *sipmsg.Request) {
		r.From().Address.User = "1001"
		r.From().DisplayName = "Extension 1001"
	}
	dialAndWaitHangup(t, ph, "300", spoof)
	select {
	case e := <-events:
		if n, name := e.Get("Caller-Caller-ID-Number"), e.Get("Caller-Caller-ID-Name"); n != "1002" || name != "Extension 1002" {
			t.Fatalf("spoofed From shows %q <%s>, want the account's \"Extension 1002\" <1002>", name, n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no CHANNEL_CREATE for the call")
	}
	if got := agentField(t, p, "1002", "status"); got != "Available" {
		t.Fatalf("agent 1002 status after its 300 = %q", got)
	}
	if got := agentField(t, p, "1001", "status"); got != "Logged Out" {
		t.Fatalf("agent 1001 status after 1002's spoofed 300 = %q", got)
	}
}

// TestAgentNameThatCorruptsListingsRefused: over the event socket, as
// `ccpbx cli -x` sends it, an agent name with a listing separator is
// refused and `agent list` stays parsable.
func TestAgentNameThatCorruptsListingsRefused(t *testing.T) {
	p := testPBX(t, nil)
	cli := func(cmd string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := runCLI([]string{"-H", p.esl.Addr().String(), "-p", config.ShippedEventSocketPassword, "-x", cmd},
			strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("cli %q: exit %d %q", cmd, code, errb.String())
		}
		return out.String()
	}
	if got := cli("callcenter_config agent add 'a|b' callback"); !strings.HasPrefix(got, "-ERR Invalid Agent Name!") {
		t.Fatalf("agent add 'a|b' = %q", got)
	}
	for _, line := range strings.Split(strings.TrimSpace(cli("callcenter_config agent list")), "\n") {
		if line != "+OK" && strings.Count(line, "|") != 20 {
			t.Fatalf("agent list line %q has %d separators, want 20", line, strings.Count(line, "|"))
		}
	}
}
