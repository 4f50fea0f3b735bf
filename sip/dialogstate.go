package sip

import (
	"context"
	"errors"
	"fmt"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
)

// DialogState is an answered leg's dialog as another node can use it: a
// cluster node stores its bridged queue calls' dialogs, and the node that
// adopts it after its death ends them with ByeDialog (stage 1 of
// scale-out §4.4: the phones are freed, not the calls kept).
type DialogState struct {
	Profile      string   `json:"profile"`
	CallID       string   `json:"call_id"`
	LocalTag     string   `json:"local_tag"`
	RemoteTag    string   `json:"remote_tag"`
	Local        string   `json:"local"`
	LocalName    string   `json:"local_name,omitempty"`
	Remote       string   `json:"remote"`
	RemoteTarget string   `json:"remote_target"`
	RouteSet     []string `json:"route_set,omitempty"`
	Dest         string   `json:"dest"`
	Transport    string   `json:"transport"`
	LocalSeq     uint32   `json:"local_seq"`
}

// DialogOf is the dialog of ch's answered SIP leg (false for a channel
// that is not a SIP leg, or not answered).
func DialogOf(ch *call.Channel) (DialogState, bool) {
	var l *leg
	switch s := ch.Signalling().(type) {
	case *uacLeg:
		l = &s.leg
	case *uasLeg:
		l = &s.leg
	default:
		return DialogState{}, false
	}
	l.mu.Lock()
	d, st := l.dlg, l.state
	l.mu.Unlock()
	if d == nil || st != stateAnswered {
		return DialogState{}, false
	}
	d.mu.Lock()
	seq := d.localSeq
	d.mu.Unlock()
	out := DialogState{Profile: d.p.name, CallID: d.callID, LocalTag: d.localTag, RemoteTag: d.remoteTag,
		Local: d.local.String(), LocalName: d.localName, Remote: d.remote.String(),
		RemoteTarget: d.remoteTarget.String(), Dest: d.dest, Transport: d.transport, LocalSeq: seq}
	for _, r := range d.routeSet {
		out.RouteSet = append(out.RouteSet, r.String())
	}
	return out, true
}

// byeSeqMargin is added to a stored dialog's CSeq: requests the dead node
// sent after storing it (a re-INVITE for hold) used some numbers, and a
// BYE must carry a higher one than all of them.
const byeSeqMargin = 100

// ByeDialog ends a dialog another node (now dead) stored: BYE with reason
// (a Reason header value, e.g. `Q.850;cause=41`) from this node's profile
// of the same name, over the stored route set, waiting for the final
// response at most until ctx ends.
func (s *Stack) ByeDialog(ctx context.Context, st DialogState, reason string) error {
	var p *profile
	for _, q := range s.profiles {
		if q.name == st.Profile {
			p = q
		}
	}
	if p == nil {
		return fmt.Errorf("bye %s: no profile %q", st.CallID, st.Profile)
	}
	if st.CallID == "" || st.LocalTag == "" || st.Dest == "" {
		return errors.New("bye: incomplete dialog")
	}
	d := &dialog{p: p, callID: st.CallID, localTag: st.LocalTag, remoteTag: st.RemoteTag,
		localName: st.LocalName, dest: st.Dest, transport: st.Transport, localSeq: st.LocalSeq + byeSeqMargin}
	for _, u := range []struct {
		v   string
		dst *sipmsg.Uri
	}{{st.Local, &d.local}, {st.Remote, &d.remote}, {st.RemoteTarget, &d.remoteTarget}} {
		if err := sipmsg.ParseUri(u.v, u.dst); err != nil {
			return fmt.Errorf("bye %s: uri %q: %w", st.CallID, u.v, err)
		}
	}
	for _, r := range st.RouteSet {
		var u sipmsg.Uri
		if err := sipmsg.ParseUri(r, &u); err != nil {
			return fmt.Errorf("bye %s: route %q: %w", st.CallID, r, err)
		}
		d.routeSet = append(d.routeSet, u)
	}
	req := d.newRequest(sipmsg.BYE)
	if reason != "" {
		req.AppendHeader(sipmsg.NewHeader("Reason", reason))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := d.do(ctx, req)
	if err != nil {
		return fmt.Errorf("bye %s: %w", st.CallID, err)
	}
	if !res.IsSuccess() && res.StatusCode != 481 {
		return fmt.Errorf("bye %s: %d %s", st.CallID, res.StatusCode, res.Reason)
	}
	return nil
}
