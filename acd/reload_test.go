package acd

import (
	"strings"
	"testing"

	"ccpbx/call"
)

// TestReloadAppliesWhatChanged: Reload reloads a changed queue (its new
// strategy shows), loads a new one, keeps a removed queue while a caller
// waits in it, and leaves unchanged agents' live status alone.
func TestReloadAppliesWhatChanged(t *testing.T) {
	h := newHarness(t, observedConfig(), nil, 1795664652)
	h.mustOK("agent set status 1001 'On Break'")
	h.call("5550001", "3000@default", nil)

	cfg := observedConfig()
	cfg.Queues[0].Strategy = "ring-all"
	extra := cfg.Queues[0]
	extra.Name = "4000@default"
	cfg.Queues = append(cfg.Queues, extra)
	changes := h.acd.Reload(cfg)
	if got := strings.Join(changes, "; "); got != "queue 3000@default reloaded; queue 4000@default loaded" {
		t.Errorf("changes: %q", got)
	}
	list := h.api("queue list")
	if !strings.Contains(list, "\n3000@default|ring-all|") || !strings.Contains(list, "\n4000@default|ring-all|") {
		t.Errorf("queue list after reload:\n%s", list)
	}
	if got := h.api("agent get status 1001"); got != "On Break" {
		t.Errorf("an unchanged agent's status after reload: %q", got)
	}
	if got := h.api("queue count members 3000@default"); got != "1\n" {
		t.Errorf("the waiting caller after reload: %q members", got)
	}

	// 3000 leaves the file while its caller waits: it stays loaded.
	cfg.Queues = cfg.Queues[1:]
	changes = h.acd.Reload(cfg)
	if got := strings.Join(changes, "; "); !strings.Contains(got, "queue 3000@default removed from the file; unloaded when its callers are gone") {
		t.Errorf("changes: %q", got)
	}
	if !strings.Contains(h.api("queue list"), "\n3000@default|") {
		t.Error("a queue with a waiting caller was unloaded")
	}
}

// TestCallcenterFindsQueuesWithoutTheLoop: the app's queue check (known,
// read off the loop) follows what lookupQueue would find: a queue loaded
// by Reload is found, one in no configuration is not (the caller is not
// answered), and an unloaded queue still in the file is found and loaded
// again on demand, as mod_callcenter does.
func TestCallcenterFindsQueuesWithoutTheLoop(t *testing.T) {
	h := newHarness(t, observedConfig(), nil, 1795664652)
	ch := h.core.NewChannel(call.ChannelSpec{Name: "sofia/blueivr/5550009@127.0.0.1", Direction: call.Inbound,
		Vars: map[string]string{"caller_id_number": "5550009"}})
	if err := h.core.Execute(ch.Context(), ch, "callcenter", "4000@default"); err != nil {
		t.Fatalf("unknown queue: %v", err)
	}
	if ch.Answered() {
		t.Error("a caller to an unknown queue was answered")
	}
	ch.Hangup(call.NormalClearing)

	cfg := observedConfig()
	extra := cfg.Queues[0]
	extra.Name = "4000@default"
	cfg.Queues = append(cfg.Queues, extra)
	h.acd.Reload(cfg)
	c := h.call("5550001", "4000@default", nil)
	if got := h.api("queue count members 4000@default"); got != "1\n" {
		t.Errorf("the caller in the reloaded queue: %q members", got)
	}
	c.hangup(t, h)

	h.mustOK("queue unload 3000@default")
	c = h.call("5550002", "3000@default", nil)
	if got := h.api("queue count members 3000@default"); got != "1\n" {
		t.Errorf("the caller in the queue loaded on demand: %q members", got)
	}
	c.hangup(t, h)
}
