package testphone

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// registration is the phone's REGISTER dialog state: one Call-ID per
// server and user, an increasing CSeq, and the last challenge, which it
// reuses pre-emptively with an increasing nc as real phones do.
type registration struct {
	algorithm string // preferred digest algorithm ("" = first offered)

	server   string
	host     string
	port     int
	user     string
	password string
	callID   string
	fromTag  string
	cseq     uint32
	expires  time.Duration

	chal      *digest.Challenge
	chalHdr   string // "Authorization" or "Proxy-Authorization"
	nc        int
	attempts  int                // requests sent by the last Register call
	responses []*sipmsg.Response // final responses seen by the last Register call
}

// NoExpires passed as expires omits the Expires header, so the registrar's
// default applies.
const NoExpires time.Duration = -1

// maxAuthRounds bounds the 401 dance: the first challenge plus one stale
// re-challenge, as phones do.
const maxAuthRounds = 3

// Register registers user with password at server ("127.0.0.1:5060") for
// expires, answering 401/407 challenges. It returns the final response
// (200 on success; a second non-stale 401 means wrong credentials). The
// error is for transport failures only.
func (p *Phone) Register(ctx context.Context, server, user, password string, expires time.Duration) (*sipmsg.Response, error) {
	if err := p.setRegistration(server, user, password); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.reg.expires = expires
	p.mu.Unlock()
	c := sipmsg.ContactHeader{Address: p.ContactURI(user)}
	return p.register(ctx, []sipmsg.Header{&c}, expires)
}

// RegisterContact is Register with another Contact than the phone's own
// (a third-party registration, a phone behind NAT that names its private
// address).
func (p *Phone) RegisterContact(ctx context.Context, server, user, password string, contact sipmsg.Uri, expires time.Duration) (*sipmsg.Response, error) {
	if err := p.setRegistration(server, user, password); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.reg.expires = expires
	p.mu.Unlock()
	c := sipmsg.ContactHeader{Address: contact}
	return p.register(ctx, []sipmsg.Header{&c}, expires)
}

// Refresh repeats the last Register with the same Call-ID and a higher
// CSeq.
func (p *Phone) Refresh(ctx context.Context) (*sipmsg.Response, error) {
	p.mu.Lock()
	user, exp, ok := p.reg.user, p.reg.expires, p.reg.server != ""
	p.mu.Unlock()
	if !ok {
		return nil, errors.New("testphone: Refresh before Register")
	}
	c := sipmsg.ContactHeader{Address: p.ContactURI(user)}
	return p.register(ctx, []sipmsg.Header{&c}, exp)
}

// Unregister removes this phone's contact (Expires: 0).
func (p *Phone) Unregister(ctx context.Context) (*sipmsg.Response, error) {
	p.mu.Lock()
	user, ok := p.reg.user, p.reg.server != ""
	p.mu.Unlock()
	if !ok {
		return nil, errors.New("testphone: Unregister before Register")
	}
	c := sipmsg.ContactHeader{Address: p.ContactURI(user)}
	return p.register(ctx, []sipmsg.Header{&c}, 0)
}

// UnregisterAll removes every contact of the user (Contact: *, Expires: 0).
func (p *Phone) UnregisterAll(ctx context.Context) (*sipmsg.Response, error) {
	p.mu.Lock()
	ok := p.reg.server != ""
	p.mu.Unlock()
	if !ok {
		return nil, errors.New("testphone: UnregisterAll before Register")
	}
	c := sipmsg.ContactHeader{Address: sipmsg.Uri{Wildcard: true}}
	return p.register(ctx, []sipmsg.Header{&c}, 0)
}

// Query sends a REGISTER without Contact: the 200 lists the bindings.
func (p *Phone) Query(ctx context.Context) (*sipmsg.Response, error) {
	p.mu.Lock()
	ok := p.reg.server != ""
	p.mu.Unlock()
	if !ok {
		return nil, errors.New("testphone: Query before Register")
	}
	return p.register(ctx, nil, NoExpires)
}

// RegisterRequests is how many REGISTERs the last Register/Refresh/… sent
// (1 with pre-emptive credentials, 2 after a challenge, 3 after a stale
// re-challenge).
func (p *Phone) RegisterRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reg.attempts
}

// RegisterResponses are the final responses the last Register/Refresh/…
// received, in order (e.g. 401 then 200).
func (p *Phone) RegisterResponses() []*sipmsg.Response {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*sipmsg.Response(nil), p.reg.responses...)
}

// ForgetChallenge drops the cached challenge, so the next REGISTER goes
// out without credentials.
func (p *Phone) ForgetChallenge() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reg.chal = nil
}

func (p *Phone) setRegistration(server, user, password string) error {
	host, port, err := hostPort(server)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reg
	if r.server != server || r.user != user {
		r.server, r.host, r.port, r.user = server, host, port, user
		r.callID = sipmsg.GenerateTagN(24) + "@testphone"
		r.fromTag = sipmsg.GenerateTagN(12)
		r.cseq = 0
		r.chal = nil
	}
	r.password = password
	return nil
}

// newRegister builds the next REGISTER of the registration dialog.
func (p *Phone) newRegister(contacts []sipmsg.Header, expires time.Duration) *sipmsg.Request {
	r := p.reg
	r.cseq++
	recipient := sipmsg.Uri{Scheme: "sip", Host: r.host, Port: r.port}
	if p.transport != "udp" {
		recipient.UriParams = sipmsg.NewParams()
		recipient.UriParams.Add("transport", p.transport)
	}
	req := sipmsg.NewRequest(sipmsg.REGISTER, recipient)
	aor := sipmsg.Uri{Scheme: "sip", User: r.user, Host: r.host}
	from := &sipmsg.FromHeader{Address: aor, Params: sipmsg.NewParams()}
	from.Params.Add("tag", r.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sipmsg.ToHeader{Address: aor})
	callID := sipmsg.CallIDHeader(r.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: r.cseq, MethodName: sipmsg.REGISTER})
	for _, c := range contacts {
		req.AppendHeader(c)
	}
	if expires >= 0 {
		req.AppendHeader(sipmsg.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	}
	req.AppendHeader(sipmsg.NewHeader("User-Agent", p.name))
	req.SetTransport(strings.ToUpper(p.transport))
	return req
}

// credentials adds an Authorization for the cached challenge (nc+1).
func (p *Phone) credentials(req *sipmsg.Request) error {
	r := p.reg
	if r.chal == nil {
		return nil
	}
	r.nc++
	cred, err := digest.Digest(r.chal, digest.Options{
		Method:   req.Method.String(),
		URI:      req.Recipient.Addr(),
		Username: r.user,
		Password: r.password,
		Count:    r.nc,
	})
	if err != nil {
		return fmt.Errorf("testphone: digest: %w", err)
	}
	req.RemoveHeader(r.chalHdr)
	req.AppendHeader(sipmsg.NewHeader(r.chalHdr, cred.String()))
	return nil
}

func (p *Phone) register(ctx context.Context, contacts []sipmsg.Header, expires time.Duration) (*sipmsg.Response, error) {
	p.mu.Lock()
	p.reg.attempts = 0
	p.reg.responses = nil
	p.mu.Unlock()
	answeredFresh := false
	for round := 0; ; round++ {
		p.mu.Lock()
		req := p.newRegister(contacts, expires)
		err := p.credentials(req)
		p.reg.attempts++
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		res, err := p.Do(ctx, req)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.reg.responses = append(p.reg.responses, res)
		p.mu.Unlock()
		if res.StatusCode != 401 && res.StatusCode != 407 {
			return res, nil
		}
		chal, hdr, err := p.pickChallenge(res)
		if err != nil {
			return res, err
		}
		// A fresh (non-stale) challenge after we already answered one means
		// the password is wrong: give up like a phone would.
		if (answeredFresh && !chal.Stale) || round+1 >= maxAuthRounds {
			return res, nil
		}
		if !chal.Stale {
			answeredFresh = true
		}
		p.mu.Lock()
		p.reg.chal, p.reg.chalHdr, p.reg.nc = chal, hdr, 0
		p.mu.Unlock()
	}
}

// pickChallenge selects the challenge to answer: the preferred algorithm
// if offered, else the first one we can compute.
func (p *Phone) pickChallenge(res *sipmsg.Response) (*digest.Challenge, string, error) {
	name, authz := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		name, authz = "Proxy-Authenticate", "Proxy-Authorization"
	}
	var first *digest.Challenge
	for _, h := range res.GetHeaders(name) {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil || !digest.CanDigest(c) {
			continue
		}
		if p.reg.algorithm != "" && strings.EqualFold(c.Algorithm, p.reg.algorithm) {
			return c, authz, nil
		}
		if first == nil {
			first = c
		}
	}
	if first == nil {
		return nil, "", fmt.Errorf("testphone: %d without a usable %s", res.StatusCode, name)
	}
	if p.reg.algorithm != "" {
		return nil, "", fmt.Errorf("testphone: algorithm %s not offered", p.reg.algorithm)
	}
	return first, authz, nil
}
