package testphone

// Calls. A phone places calls with Dial (as its registered user, answering
// 407 with the registration's password) or Invite (as anyone, like a trunk),
// and is offered calls according to its Plan: rings, final status, early
// media, or left to the test (Status 0: Incoming, then Ring / Answer /
// Reject). A Call follows one INVITE dialog: WaitProvisional, WaitFinal,
// WaitAcked, WaitEnded, Hangup (BYE), Cancel, Reinvite, SendInfoDTMF, and
// its Audio sends and checks RTP markers.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
)

// Plan is how a phone treats incoming INVITEs.
type Plan struct {
	// Rings is the number of 180 Ringing (183 with Early) sent before the
	// final response, RingEvery apart.
	Rings     int
	RingEvery time.Duration
	Early     bool
	// Status is the final response sent after the rings; 0 leaves the
	// call to the test (Call.Answer, Call.Reject).
	Status int
	// AnswerOnCancel answers 200 OK at the moment a CANCEL arrives, before
	// the 487: the PBX sees a 200 racing its CANCEL.
	AnswerOnCancel bool
	// HoldCancel holds the 487 to a CANCELed INVITE this long (a slow
	// phone, or a proxy in between): sipgo sends it when OnCancel returns.
	HoldCancel time.Duration
}

// AutoAnswer is the plan of a phone that rings once and answers.
var AutoAnswer = Plan{Rings: 1, Status: 200}

// phoneCalls is a phone's call state, kept beside Phone so the register
// side of the package stays untouched.
type phoneCalls struct {
	mu       sync.Mutex
	plan     Plan
	calls    map[string]*Call // by Call-ID
	incoming chan *Call
	pcma     bool
	skipAcks int
	bareAcks bool
}

var callStates sync.Map // *Phone → *phoneCalls

func init() {
	onNewPhone(func(p *Phone) {
		pc := &phoneCalls{calls: map[string]*Call{}, incoming: make(chan *Call, 16), plan: Plan{Rings: 1}}
		callStates.Store(p, pc)
		p.Handle(sipmsg.INVITE, p.onInvite)
		p.Handle(sipmsg.ACK, p.onAck)
		p.Handle(sipmsg.BYE, p.onBye)
		p.Handle(sipmsg.INFO, p.onInfo)
		go func() {
			<-p.ctx.Done()
			callStates.Delete(p)
			// A closed phone's calls are over: release their audio.
			pc.mu.Lock()
			calls := make([]*Call, 0, len(pc.calls))
			for _, c := range pc.calls {
				calls = append(calls, c)
			}
			pc.mu.Unlock()
			for _, c := range calls {
				c.markEnded()
			}
		}()
	})
}

func (p *Phone) calls() *phoneCalls {
	v, ok := callStates.Load(p)
	if !ok {
		return &phoneCalls{calls: map[string]*Call{}, incoming: make(chan *Call, 16)}
	}
	return v.(*phoneCalls)
}

// SetPlan sets how the phone treats incoming INVITEs from now on.
func (p *Phone) SetPlan(pl Plan) {
	pc := p.calls()
	pc.mu.Lock()
	pc.plan = pl
	pc.mu.Unlock()
}

// UsePCMA makes the phone's future calls use PCMA instead of PCMU.
func (p *Phone) UsePCMA() {
	pc := p.calls()
	pc.mu.Lock()
	pc.pcma = true
	pc.mu.Unlock()
}

// SkipAcks makes the phone "lose" its next n ACKs for 2xx responses, so
// tests can watch the far side retransmit its 200.
func (p *Phone) SkipAcks(n int) {
	pc := p.calls()
	pc.mu.Lock()
	pc.skipAcks = n
	pc.mu.Unlock()
}

// BareAcks makes the phone send the ACK of a call it placed without SDP
// bodiless too, so the call has no SDP at all (a late offer never
// answered: issue 10's calls that never end).
func (p *Phone) BareAcks() {
	pc := p.calls()
	pc.mu.Lock()
	pc.bareAcks = true
	pc.mu.Unlock()
}

// Call is one INVITE dialog of the phone, placed (Dial, Invite) or received
// (Incoming).
type Call struct {
	p        *Phone
	Audio    *Audio
	Incoming bool

	mu           sync.Mutex
	inv          *sipmsg.Request
	tx           sipmsg.ServerTransaction
	callID       string
	localTag     string
	remoteTag    string
	local        sipmsg.Uri
	remote       sipmsg.Uri
	remoteTarget sipmsg.Uri
	cseq         uint32
	codes        []int
	final        *sipmsg.Response
	finalCode    int
	bye          *sipmsg.Request
	infos        []string
	// reoffers are the SDP offers of the re-INVITEs received (hold.go).
	reoffers []string
	// refuse is the status answering re-INVITEs (0: accept them).
	refuse     int
	localSDP   []byte
	cancelled  bool
	held487    bool // HoldCancel's wait is over: the 487 is on its way
	retrans200 int

	provisional chan struct{}
	finalCh     chan struct{}
	acked       chan struct{}
	ended       chan struct{}
	provOnce    sync.Once
	finalOnce   sync.Once
	ackOnce     sync.Once
	endOnce     sync.Once
}

func newCall(p *Phone, incoming bool) (*Call, error) {
	a, err := NewAudio(p.addr.Addr())
	if err != nil {
		return nil, err
	}
	pc := p.calls()
	pc.mu.Lock()
	if pc.pcma {
		a.UsePCMA()
	}
	pc.mu.Unlock()
	return &Call{
		p: p, Audio: a, Incoming: incoming,
		provisional: make(chan struct{}),
		finalCh:     make(chan struct{}),
		acked:       make(chan struct{}),
		ended:       make(chan struct{}),
	}, nil
}

func (c *Call) markProvisional() { c.provOnce.Do(func() { close(c.provisional) }) }
func (c *Call) markFinal()       { c.finalOnce.Do(func() { close(c.finalCh) }) }
func (c *Call) markAcked()       { c.ackOnce.Do(func() { close(c.acked) }) }
func (c *Call) markEnded() {
	c.endOnce.Do(func() {
		close(c.ended)
		c.Audio.Close()
	})
}

// CallOption adjusts an outgoing INVITE.
type CallOption func(*sipmsg.Request)

// WithHeader adds a header to the INVITE.
func WithHeader(name, value string) CallOption {
	return func(r *sipmsg.Request) { r.AppendHeader(sipmsg.NewHeader(name, value)) }
}

// WithFromName sets the From display name.
func WithFromName(name string) CallOption {
	return func(r *sipmsg.Request) { r.From().DisplayName = name }
}

// WithoutSDP sends the INVITE without an offer (the PBX offers in its 200).
func WithoutSDP() CallOption {
	return func(r *sipmsg.Request) {
		r.RemoveHeader("Content-Type")
		r.SetBody(nil)
	}
}

// Dial calls dest through the server the phone registered with, as the
// registered user, answering a 407 with the registration's credentials.
// It returns once the INVITE is sent; the Call follows the responses.
func (p *Phone) Dial(ctx context.Context, dest string, opts ...CallOption) (*Call, error) {
	p.mu.Lock()
	server, user, pass := p.reg.server, p.reg.user, p.reg.password
	p.mu.Unlock()
	if server == "" {
		return nil, errors.New("testphone: Dial before Register")
	}
	return p.invite(ctx, server, user, dest, user, pass, opts)
}

// Invite calls toUser at server ("127.0.0.1:5080") as fromUser without
// credentials, as a trunk would.
func (p *Phone) Invite(ctx context.Context, server, fromUser, toUser string, opts ...CallOption) (*Call, error) {
	return p.invite(ctx, server, fromUser, toUser, "", "", opts)
}

func (p *Phone) invite(ctx context.Context, server, fromUser, toUser, authUser, authPass string, opts []CallOption) (*Call, error) {
	host, port, err := hostPort(server)
	if err != nil {
		return nil, err
	}
	c, err := newCall(p, false)
	if err != nil {
		return nil, err
	}
	ruri := sipmsg.Uri{Scheme: "sip", User: toUser, Host: host, Port: port}
	if p.transport != "udp" {
		ruri.UriParams = sipmsg.NewParams()
		ruri.UriParams.Add("transport", p.transport)
	}
	req := sipmsg.NewRequest(sipmsg.INVITE, ruri)
	c.localTag = sipmsg.GenerateTagN(12)
	c.local = sipmsg.Uri{Scheme: "sip", User: fromUser, Host: host}
	c.remote = sipmsg.Uri{Scheme: "sip", User: toUser, Host: host}
	c.remoteTarget = ruri
	from := &sipmsg.FromHeader{Address: c.local, Params: sipmsg.NewParams()}
	from.Params.Add("tag", c.localTag)
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: c.remote})
	c.callID = sipmsg.GenerateTagN(24) + "@testphone"
	cid := sipmsg.CallIDHeader(c.callID)
	req.AppendHeader(&cid)
	c.cseq = 1
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: c.cseq, MethodName: sipmsg.INVITE})
	ct := p.ContactURI(fromUser)
	req.AppendHeader(&sipmsg.ContactHeader{Address: ct})
	req.AppendHeader(sipmsg.NewHeader("User-Agent", p.name))
	ctype := sipmsg.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ctype)
	c.localSDP = c.Audio.SDP()
	req.SetBody(c.localSDP)
	req.SetTransport(strings.ToUpper(p.transport))
	for _, o := range opts {
		o(req)
	}
	c.inv = req
	pc := p.calls()
	pc.mu.Lock()
	pc.calls[c.callID] = c
	pc.mu.Unlock()
	tx, err := p.Client.TransactionRequest(ctx, req)
	if err != nil {
		c.markEnded()
		return nil, fmt.Errorf("testphone: INVITE: %w", err)
	}
	go c.uacLoop(tx, authUser, authPass)
	return c, nil
}

func (c *Call) uacLoop(tx sipmsg.ClientTransaction, user, pass string) {
	authed := false
	for {
		select {
		case res := <-tx.Responses():
			c.mu.Lock()
			c.codes = append(c.codes, res.StatusCode)
			c.mu.Unlock()
			switch {
			case res.StatusCode == 100:
			case res.IsProvisional():
				// An early dialog: remember the far tag, so a BYE can be
				// sent before the answer (as some phones do).
				c.mu.Lock()
				if to := res.To(); to != nil && c.remoteTag == "" {
					c.remoteTag, _ = to.Params.Get("tag")
				}
				c.mu.Unlock()
				c.markProvisional()
			case res.IsSuccess():
				c.established(res)
				tx.OnRetransmission(func(*sipmsg.Response) {
					c.mu.Lock()
					c.retrans200++
					c.mu.Unlock()
					c.sendAck()
				})
				go func() { <-c.ended; tx.Terminate() }()
				return
			case (res.StatusCode == 401 || res.StatusCode == 407) && !authed && user != "":
				authed = true
				tx.Terminate()
				ntx, err := c.p.Client.TransactionDigestAuth(context.Background(), c.inv, res, sipgo.DigestAuth{Username: user, Password: pass})
				if err != nil {
					c.fail(res)
					return
				}
				c.mu.Lock()
				c.cseq = c.inv.CSeq().SeqNo
				c.mu.Unlock()
				tx = ntx
			default:
				tx.Terminate()
				c.fail(res)
				return
			}
		case <-tx.Done():
			c.fail(nil)
			return
		}
	}
}

func (c *Call) fail(res *sipmsg.Response) {
	c.mu.Lock()
	c.final = res
	if res != nil {
		c.finalCode = res.StatusCode
	}
	c.mu.Unlock()
	c.markFinal()
	c.markEnded()
}

func (c *Call) established(res *sipmsg.Response) {
	c.mu.Lock()
	c.final = res
	c.finalCode = res.StatusCode
	if to := res.To(); to != nil {
		if tag, ok := to.Params.Get("tag"); ok {
			c.remoteTag = tag
		}
	}
	if ct := res.Contact(); ct != nil {
		c.remoteTarget = *ct.Address.Clone()
	}
	c.mu.Unlock()
	if body := res.Body(); len(body) > 0 {
		_ = c.Audio.SetRemote(body)
	}
	c.sendAck()
	c.markFinal()
}

// newInDialog builds a request inside the call's dialog.
func (c *Call) newInDialog(method sipmsg.RequestMethod, seq uint32) *sipmsg.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	req := sipmsg.NewRequest(method, *c.remoteTarget.Clone())
	from := &sipmsg.FromHeader{Address: c.local, Params: sipmsg.NewParams()}
	from.Params.Add("tag", c.localTag)
	req.AppendHeader(from)
	to := &sipmsg.ToHeader{Address: c.remote, Params: sipmsg.NewParams()}
	if c.remoteTag != "" {
		to.Params.Add("tag", c.remoteTag)
	}
	req.AppendHeader(to)
	cid := sipmsg.CallIDHeader(c.callID)
	req.AppendHeader(&cid)
	if seq == 0 {
		c.cseq++
		seq = c.cseq
	}
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: seq, MethodName: method})
	req.SetTransport(strings.ToUpper(c.p.transport))
	req.SetBody(nil)
	return req
}

func (c *Call) sendAck() {
	pc := c.p.calls()
	pc.mu.Lock()
	skip := pc.skipAcks > 0
	if skip {
		pc.skipAcks--
	}
	bare := pc.bareAcks
	pc.mu.Unlock()
	if skip {
		return
	}
	c.mu.Lock()
	// The ACK of a 2xx carries the INVITE's CSeq, whatever the dialog
	// sent since.
	seq := c.cseq
	if c.inv != nil && !c.Incoming {
		seq = c.inv.CSeq().SeqNo
	}
	// An INVITE without SDP got the offer in the 200: the answer goes in
	// the ACK.
	late := c.inv != nil && !c.Incoming && len(c.inv.Body()) == 0 && !bare
	c.mu.Unlock()
	ack := c.newInDialog(sipmsg.ACK, seq)
	if late {
		ct := sipmsg.ContentTypeHeader("application/sdp")
		ack.AppendHeader(&ct)
		ack.SetBody(c.Audio.SDP())
	}
	if err := c.p.Client.WriteRequest(ack); err != nil {
		c.p.log.Warn("testphone: ACK", "err", err)
	}
}

// Hangup sends BYE and waits for its response.
func (c *Call) Hangup(ctx context.Context) error {
	bye := c.newInDialog(sipmsg.BYE, 0)
	res, err := c.p.Do(ctx, bye)
	c.markEnded()
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("testphone: BYE answered %d", res.StatusCode)
	}
	return nil
}

// SendInfoDTMF sends one digit as INFO application/dtmf-relay.
func (c *Call) SendInfoDTMF(ctx context.Context, digit rune) error {
	req := c.newInDialog(sipmsg.INFO, 0)
	ct := sipmsg.ContentTypeHeader("application/dtmf-relay")
	req.AppendHeader(&ct)
	req.SetBody([]byte("Signal=" + string(digit) + "\r\nDuration=160\r\n"))
	res, err := c.p.Do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("testphone: INFO answered %d", res.StatusCode)
	}
	return nil
}

// Reinvite sends a re-INVITE with sdp (nil = the call's own offer) and
// returns the final status.
func (c *Call) Reinvite(ctx context.Context, sdp []byte) (*sipmsg.Response, error) {
	if sdp == nil {
		sdp = c.Audio.SDP()
	}
	req := c.newInDialog(sipmsg.INVITE, 0)
	req.AppendHeader(&sipmsg.ContactHeader{Address: c.p.ContactURI(c.local.User)})
	ct := sipmsg.ContentTypeHeader("application/sdp")
	req.AppendHeader(&ct)
	req.SetBody(sdp)
	res, err := c.p.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.IsSuccess() {
		c.mu.Lock()
		seq := req.CSeq().SeqNo
		c.mu.Unlock()
		ack := c.newInDialog(sipmsg.ACK, seq)
		if err := c.p.Client.WriteRequest(ack); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Cancel sends CANCEL for a ringing outgoing call.
func (c *Call) Cancel(ctx context.Context) error {
	c.mu.Lock()
	inv := c.inv
	c.mu.Unlock()
	req := sipmsg.NewRequest(sipmsg.CANCEL, *inv.Recipient.Clone())
	req.AppendHeader(inv.Via().Clone())
	req.AppendHeader(sipmsg.HeaderClone(inv.From()))
	req.AppendHeader(sipmsg.HeaderClone(inv.To()))
	req.AppendHeader(sipmsg.HeaderClone(inv.CallID()))
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipmsg.CANCEL})
	mf := sipmsg.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetTransport(inv.Transport())
	req.SetBody(nil)
	req.Laddr = inv.Laddr
	res, err := c.p.Do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("testphone: CANCEL answered %d", res.StatusCode)
	}
	return nil
}

// WaitProvisional waits for a 180 or 183.
func (c *Call) WaitProvisional(ctx context.Context) error {
	select {
	case <-c.provisional:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testphone: no ringing: %w", ctx.Err())
	}
}

// WaitFinal waits for the final response and returns its status (0 when
// the transaction timed out).
func (c *Call) WaitFinal(ctx context.Context) (int, error) {
	select {
	case <-c.finalCh:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.finalCode, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("testphone: no final response: %w", ctx.Err())
	}
}

// WaitAcked waits for the ACK of our 200 (incoming calls).
func (c *Call) WaitAcked(ctx context.Context) error {
	select {
	case <-c.acked:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testphone: no ACK: %w", ctx.Err())
	}
}

// WaitEnded waits until the call is over (BYE either way, CANCEL, failure).
func (c *Call) WaitEnded(ctx context.Context) error {
	select {
	case <-c.ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testphone: call still up: %w", ctx.Err())
	}
}

// Ended reports whether the call is over.
func (c *Call) Ended() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// Retransmitted200 counts retransmissions of the 200 OK received after
// the first one.
func (c *Call) Retransmitted200() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retrans200
}

// Codes lists the statuses received for the INVITE, in order.
func (c *Call) Codes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.codes...)
}

// Final is the final response to the INVITE (nil while pending).
func (c *Call) Final() *sipmsg.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final
}

// Bye is the BYE that ended the call from the far side (nil otherwise).
func (c *Call) Bye() *sipmsg.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bye
}

// Held487 reports whether the plan's HoldCancel is over for this call:
// its 487 is being sent.
func (c *Call) Held487() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held487
}

// Cancelled reports whether the far side cancelled this incoming call.
func (c *Call) Cancelled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelled
}

// Request is the INVITE: received for incoming calls, sent for outgoing.
func (c *Call) Request() *sipmsg.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inv
}

// Infos lists the bodies of INFO requests received in the dialog.
func (c *Call) Infos() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.infos...)
}

// Incoming returns the next call offered to the phone.
func (p *Phone) Incoming(ctx context.Context) (*Call, error) {
	select {
	case c := <-p.calls().incoming:
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("testphone: no incoming call: %w", ctx.Err())
	}
}

// onInvite is the phone's UAS: it follows the plan and, for a manual plan,
// waits (holding the transaction, as a UAS must) until the test answers,
// rejects, or the caller cancels.
func (p *Phone) onInvite(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	pc := p.calls()
	if to := req.To(); to != nil && to.Params.Has("tag") {
		c := pc.byCallID(req)
		if c == nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		if code := c.refusal(); code != 0 {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, code, "Refused", nil))
			return
		}
		// re-INVITE: accept with our SDP, mirroring a hold (hold.go).
		res := sipmsg.NewSDPResponseFromRequest(req, c.answerReoffer(req.Body()))
		_ = tx.Respond(res)
		return
	}
	c, err := newCall(p, true)
	if err != nil {
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 500, "No Audio", nil))
		return
	}
	c.inv, c.tx = req, tx
	c.callID = req.CallID().Value()
	c.localTag = sipmsg.GenerateTagN(12)
	// The tag goes on each response, not on req: sipgo's automatic
	// 100 Trying reads req's To header from a timer goroutine.
	c.remoteTag, _ = req.From().Params.Get("tag")
	c.local = req.To().Address
	c.remote = req.From().Address
	c.remoteTarget = req.From().Address
	if ct := req.Contact(); ct != nil {
		c.remoteTarget = *ct.Address.Clone()
	}
	c.cseq = 100
	if body := req.Body(); len(body) > 0 {
		_ = c.Audio.SetRemote(body)
	}
	c.localSDP = c.Audio.SDP()
	pc.mu.Lock()
	pc.calls[c.callID] = c
	plan := pc.plan
	pc.mu.Unlock()
	tx.OnCancel(func(*sipmsg.Request) {
		c.mu.Lock()
		c.cancelled = true
		c.mu.Unlock()
		if plan.AnswerOnCancel {
			// Written around the transaction: inside OnCancel the
			// transaction is locked. sipgo sends its 487 when this
			// returns, so hold it until the PBX has ACKed our 200: a real
			// phone whose 200 crossed the CANCEL sends no 487 at all, and
			// the PBX must see the 200 first.
			res := c.okResponse()
			if err := p.Server.WriteResponse(res); err != nil {
				p.log.Warn("testphone: racing 200", "err", err)
			}
			c.markFinal()
			select {
			case <-c.acked:
			case <-time.After(5 * time.Second):
			}
			return
		}
		if plan.HoldCancel > 0 {
			time.Sleep(plan.HoldCancel)
			c.mu.Lock()
			c.held487 = true
			c.mu.Unlock()
		}
		c.markFinal()
		c.markEnded()
	})
	select {
	case pc.incoming <- c:
	default:
	}
	for i := 0; i < plan.Rings; i++ {
		if i > 0 && plan.RingEvery > 0 {
			select {
			case <-time.After(plan.RingEvery):
			case <-c.finalCh:
			}
		}
		if c.isFinal() {
			break
		}
		if err := c.Ring(plan.Early); err != nil {
			break
		}
	}
	if plan.Status != 0 && !c.isFinal() {
		if plan.Status == 200 {
			_ = c.Answer()
		} else {
			_ = c.Reject(plan.Status)
		}
	}
	select {
	case <-c.finalCh:
	case <-tx.Done():
	case <-p.ctx.Done():
	}
}

func (c *Call) isFinal() bool {
	select {
	case <-c.finalCh:
		return true
	default:
		return false
	}
}

func (c *Call) okResponse() *sipmsg.Response {
	res := c.tagged(sipmsg.NewSDPResponseFromRequest(c.inv, c.localSDP))
	res.AppendHeader(&sipmsg.ContactHeader{Address: c.p.ContactURI(c.local.User)})
	return res
}

// tagged puts the call's To tag on a response built from the INVITE.
func (c *Call) tagged(res *sipmsg.Response) *sipmsg.Response {
	if to := res.To(); to != nil {
		to.Params.Remove("tag")
		to.Params.Add("tag", c.localTag)
	}
	return res
}

// Ring sends 180 Ringing (183 with SDP when early).
func (c *Call) Ring(early bool) error {
	res := c.tagged(sipmsg.NewResponseFromRequest(c.inv, 180, "Ringing", nil))
	if early {
		res = c.tagged(sipmsg.NewResponseFromRequest(c.inv, 183, "Session Progress", c.localSDP))
		ct := sipmsg.ContentTypeHeader("application/sdp")
		res.AppendHeader(&ct)
	}
	res.AppendHeader(&sipmsg.ContactHeader{Address: c.p.ContactURI(c.local.User)})
	return c.tx.Respond(res)
}

// Answer sends 200 OK with the phone's SDP.
func (c *Call) Answer() error {
	if c.isFinal() {
		return errors.New("testphone: call already final")
	}
	err := c.tx.Respond(c.okResponse())
	c.mu.Lock()
	c.finalCode = 200
	c.mu.Unlock()
	c.markFinal()
	return err
}

// Reject sends a final error response.
func (c *Call) Reject(code int) error {
	if c.isFinal() {
		return errors.New("testphone: call already final")
	}
	err := c.tx.Respond(c.tagged(sipmsg.NewResponseFromRequest(c.inv, code, "Rejected", nil)))
	c.mu.Lock()
	c.finalCode = code
	c.mu.Unlock()
	c.markFinal()
	c.markEnded()
	return err
}

func (pc *phoneCalls) byCallID(req *sipmsg.Request) *Call {
	cid := req.CallID()
	if cid == nil {
		return nil
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.calls[cid.Value()]
}

func (p *Phone) onAck(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	if c := p.calls().byCallID(req); c != nil {
		c.markAcked()
	}
}

func (p *Phone) onBye(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	c := p.calls().byCallID(req)
	if c == nil {
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.mu.Lock()
	c.bye = req
	c.mu.Unlock()
	_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
	c.markEnded()
}

func (p *Phone) onInfo(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	c := p.calls().byCallID(req)
	if c == nil {
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.mu.Lock()
	c.infos = append(c.infos, string(req.Body()))
	c.mu.Unlock()
	_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
}

// RemoteAudio is the address the far side's SDP named.
func (c *Call) RemoteAudio() netip.AddrPort {
	c.Audio.mu.Lock()
	defer c.Audio.mu.Unlock()
	return c.Audio.remote
}
