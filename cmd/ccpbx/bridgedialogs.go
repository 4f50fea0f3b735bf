package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"ccpbx/call"
	"ccpbx/cluster"
	"ccpbx/sip"
	"ccpbx/store"
)

// Stage 1 of a dead node's bridged calls (scale-out §4.4): each node
// records the two SIP dialogs of its bridged queue calls in cc_dialogs
// while they last (bridgeRecorder), and the node that adopts a dead one
// sends BYE on each (bridgeReaper), so the agent's phone and the caller
// are freed instead of sitting in a call with nobody.

// adoptedByeReason is the Reason of those BYEs: NORMAL_TEMPORARY_FAILURE.
const adoptedByeReason = "Q.850;cause=41;text=\"NORMAL_TEMPORARY_FAILURE\""

// bridgeDialogTimeout bounds each cc_dialogs write and each BYE.
const bridgeDialogTimeout = 2 * time.Second

// bridgeRecorder is the ACD's switch on a cluster node: Bridge records
// the two legs' dialogs before relaying and forgets them once it ends.
type bridgeRecorder struct {
	*call.Core
	node *cluster.Node
	st   *store.Store
	log  *slog.Logger
}

func (r bridgeRecorder) Bridge(a, b *call.Channel) error {
	if r.record(a, b) {
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), bridgeDialogTimeout)
			defer cancel()
			if err := r.st.DropBridgeDialogs(ctx, r.node.Fence(), a.UUID()); err != nil {
				r.log.Warn("cluster: forgetting a bridge's dialogs failed", "bridge", a.UUID(), "err", err)
			}
		}()
	}
	return r.Core.Bridge(a, b)
}

// record writes a (caller) and b's (agent) dialogs; false when there was
// nothing to write or the write failed (the bridge goes on regardless).
func (r bridgeRecorder) record(a, b *call.Channel) bool {
	agent := b.Var("cc_agent")
	var ds []store.BridgeDialog
	for _, l := range []struct {
		name string
		ch   *call.Channel
	}{{"caller", a}, {"agent", b}} {
		d, ok := sip.DialogOf(l.ch)
		if !ok {
			continue
		}
		js, err := json.Marshal(d)
		if err != nil {
			continue
		}
		ds = append(ds, store.BridgeDialog{Bridge: a.UUID(), Leg: l.name, Agent: agent, Dialog: string(js)})
	}
	if len(ds) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), bridgeDialogTimeout)
	defer cancel()
	if err := r.st.SaveBridgeDialogs(ctx, r.node.Fence(), ds); err != nil {
		r.log.Warn("cluster: recording a bridge's dialogs failed", "bridge", a.UUID(), "agent", agent, "err", err)
		return false
	}
	return true
}

// bridgeReaper ends an adopted node's dialogs from this node's SIP stack
// (set once it exists; adoptions before that find none to use).
type bridgeReaper struct {
	stack atomic.Pointer[sip.Stack]
	log   *slog.Logger
	wg    sync.WaitGroup
}

// reap sends BYE on each dialog in the background, logging the outcome.
func (r *bridgeReaper) reap(dead string, ds []store.BridgeDialog) {
	s := r.stack.Load()
	for _, d := range ds {
		if s == nil {
			r.log.Warn("cluster: no SIP stack yet to end a dead node's dialog", "dead", dead, "bridge", d.Bridge, "leg", d.Leg)
			continue
		}
		var st sip.DialogState
		if err := json.Unmarshal([]byte(d.Dialog), &st); err != nil {
			r.log.Warn("cluster: a dead node's dialog is unreadable", "dead", dead, "bridge", d.Bridge, "leg", d.Leg, "err", err)
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), bridgeDialogTimeout)
			defer cancel()
			err := s.ByeDialog(ctx, st, adoptedByeReason)
			r.log.Warn("cluster: ended a dead node's bridged call leg", "dead", dead, "bridge", d.Bridge, "leg", d.Leg,
				"agent", d.Agent, "call_id", st.CallID, "reason", adoptedByeReason, "err", err)
		}()
	}
}
