package sip

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// dialog is our side of one SIP dialog (RFC 3261 §12): what we need to
// build in-dialog requests and to match the peer's. sipgo's dialog helpers
// stop short of a PBX's needs (go-sip-stack §1.6), so this is our own.
type dialog struct {
	p         *profile
	callID    string
	localTag  string
	remoteTag string
	local     sipmsg.Uri // our URI (From of our requests)
	localName string
	remote    sipmsg.Uri // peer's URI (To of our requests)
	// remoteTarget is the peer's Contact: the Request-URI of our requests.
	remoteTarget sipmsg.Uri
	routeSet     []sipmsg.Uri
	// dest is where requests go: the peer's observed source address, so a
	// phone behind NAT (or on TCP) is reached through its own pinhole.
	dest      string
	transport string

	mu        sync.Mutex
	localSeq  uint32
	remoteSeq uint32
	// ack is the ACK we sent for the 2xx of our INVITE, kept to answer a
	// retransmitted 2xx (our ACK was lost).
	ack *sipmsg.Request
	leg dialogLeg
	// key is the table key once the dialog is in the table (guarded by
	// the table's lock).
	key string
}

// dialogTable finds dialogs by (Call-ID, local tag, remote tag).
type dialogTable struct {
	mu sync.RWMutex
	m  map[string]*dialog
}

func (t *dialogTable) init() { t.m = make(map[string]*dialog) }

func dialogKey(callID, local, remote string) string {
	return callID + "\x00" + local + "\x00" + remote
}

// splitDialogID undoes sipgo's DialogIDMake ("callid__tag1__tag2").
func splitDialogID(id string) (callID, a, b string) {
	parts := strings.Split(id, sipmsg.TxSeperator)
	if len(parts) != 3 {
		return id, "", ""
	}
	return parts[0], parts[1], parts[2]
}

func (t *dialogTable) put(d *dialog) {
	t.mu.Lock()
	d.key = dialogKey(d.callID, d.localTag, d.remoteTag)
	t.m[d.key] = d
	t.mu.Unlock()
}

func (t *dialogTable) remove(d *dialog) {
	t.mu.Lock()
	if d.key != "" && t.m[d.key] == d {
		delete(t.m, d.key)
	}
	t.mu.Unlock()
}

func (t *dialogTable) get(callID, local, remote string) *dialog {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[dialogKey(callID, local, remote)]
}

// lookup finds the dialog an incoming in-dialog request belongs to: its To
// tag is ours, its From tag the peer's.
func (t *dialogTable) lookup(req *sipmsg.Request) *dialog {
	callID, from, to := req.CallID(), req.From(), req.To()
	if callID == nil || from == nil || to == nil {
		return nil
	}
	local, _ := to.Params.Get("tag")
	remote, _ := from.Params.Get("tag")
	if local == "" {
		return nil
	}
	return t.get(callID.Value(), local, remote)
}

// newRequest builds an in-dialog request (RFC 3261 §12.2.1.1) with the
// next local CSeq.
func (d *dialog) newRequest(method sipmsg.RequestMethod) *sipmsg.Request {
	d.mu.Lock()
	d.localSeq++
	seq := d.localSeq
	d.mu.Unlock()
	return d.buildRequest(method, seq)
}

func (d *dialog) buildRequest(method sipmsg.RequestMethod, seq uint32) *sipmsg.Request {
	req := sipmsg.NewRequest(method, *d.remoteTarget.Clone())
	req.AppendHeader(d.p.via(d.transport))
	for _, r := range d.routeSet {
		req.AppendHeader(&sipmsg.RouteHeader{Address: *r.Clone()})
	}
	mf := sipmsg.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	from := &sipmsg.FromHeader{DisplayName: d.localName, Address: *d.local.Clone(), Params: sipmsg.NewParams()}
	from.Params.Add("tag", d.localTag)
	req.AppendHeader(from)
	to := &sipmsg.ToHeader{Address: *d.remote.Clone(), Params: sipmsg.NewParams()}
	if d.remoteTag != "" {
		to.Params.Add("tag", d.remoteTag)
	}
	req.AppendHeader(to)
	cid := sipmsg.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: seq, MethodName: method})
	if method != sipmsg.BYE && method != sipmsg.CANCEL {
		req.AppendHeader(d.p.contact(d.transport))
	}
	req.AppendHeader(sipmsg.NewHeader("User-Agent", d.p.stack.agent))
	req.SetTransport(strings.ToUpper(d.transport))
	// Content-Length is mandatory on stream transports; an INVITE gets
	// its body (and the header, after Content-Type) from the caller.
	if method != sipmsg.INVITE {
		req.SetBody(nil)
	}
	req.SetDestination(d.dest)
	req.Laddr = d.p.laddr(d.transport)
	return req
}

// do sends an in-dialog request and waits (bounded by ctx) for its final
// response.
func (d *dialog) do(ctx context.Context, req *sipmsg.Request) (*sipmsg.Response, error) {
	var tx sipmsg.ClientTransaction
	err := d.p.sending(func() (err error) {
		tx, err = d.p.cli.TransactionRequest(ctx, req, prebuilt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			return nil, fmt.Errorf("%s: %w", req.Method, tx.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", req.Method, ctx.Err())
		}
	}
}

// bye ends the dialog with BYE carrying reason, waiting at most a few
// seconds for the 200.
func (d *dialog) bye(reason string) error {
	req := d.newRequest(sipmsg.BYE)
	if reason != "" {
		req.AppendHeader(sipmsg.NewHeader("Reason", reason))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := d.do(ctx, req)
	return err
}

func (d *dialog) resendAck() {
	d.mu.Lock()
	ack := d.ack
	d.mu.Unlock()
	if ack != nil {
		if err := d.p.sending(func() error { return d.p.cli.WriteRequest(ack, prebuilt) }); err != nil {
			d.p.log.Debug("re-ACK failed", "err", err)
		}
	}
}

// checkRemoteSeq enforces RFC 3261 §12.2.2: a request with a CSeq lower
// than the last one seen is out of order.
func (d *dialog) checkRemoteSeq(req *sipmsg.Request) bool {
	cs := req.CSeq()
	if cs == nil {
		return false
	}
	if req.IsAck() || req.IsCancel() {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.remoteSeq != 0 && cs.SeqNo < d.remoteSeq {
		return false
	}
	d.remoteSeq = cs.SeqNo
	return true
}

// prebuilt tells sipgo's client the request is complete, so it adds nothing.
func prebuilt(*sipgo.Client, *sipmsg.Request) error { return nil }

// via builds our Via for a new request on transport.
func (p *profile) via(transport string) *sipmsg.ViaHeader {
	v := &sipmsg.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       strings.ToUpper(transport),
		Host:            p.advIP.String(),
		Port:            p.port,
		Params:          sipmsg.NewParams(),
	}
	v.Params.Add("branch", sipmsg.GenerateBranchN(16))
	v.Params.Add("rport", "")
	return v
}

// routeSetFrom returns the Record-Route URIs of msg in header order.
func routeSetFrom(hs []sipmsg.Header) []sipmsg.Uri {
	var out []sipmsg.Uri
	for _, h := range hs {
		if rr, ok := h.(*sipmsg.RecordRouteHeader); ok {
			out = append(out, *rr.Address.Clone())
		}
	}
	return out
}

// timerH is how long a 2xx we sent waits for its ACK: the profile's
// timer_t1x64, 64*T1 (32 s) when unset.
func (p *profile) timerH() time.Duration {
	if d := p.cfg.TimerT1X64.Duration; d > 0 {
		return d
	}
	return 64 * sipmsg.T1
}
