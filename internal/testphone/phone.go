// Package testphone is a small SIP phone on sipgo for in-process tests of
// ccpbx: it owns a UDP (or TCP) socket on 127.0.0.1 with an ephemeral
// port, registers with digest authentication (register.go), and lets
// other files of this package and tests answer incoming requests through
// Handle. It is test infrastructure: it must not be imported by
// production code, and it must not reach anything but 127.0.0.1.
//
// Extending it: other files of this package add behaviour as methods on
// Phone, register per-phone setup with onNewPhone from init(), and route
// incoming methods with Handle (handlers can be added at any time, unlike
// sipgo's server map, which must be complete before serving).
package testphone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/internal/pbxtest"
)

// Phone is one test phone with its own user agent and socket.
type Phone struct {
	tb        testing.TB
	name      string
	transport string // "udp", "tcp" or "tls"
	sips      bool   // Contact is a sips: URI
	log       *slog.Logger

	UA     *sipgo.UserAgent
	Server *sipgo.Server
	Client *sipgo.Client

	addr   netip.AddrPort
	ctx    context.Context
	cancel context.CancelFunc
	closed sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	handlers map[sipmsg.RequestMethod]sipgo.RequestHandler
	last     *sipmsg.Response
	lastReq  *sipmsg.Request
	reg      *registration
}

// Option configures New.
type Option func(*options)

type options struct {
	transport string
	name      string
	log       *slog.Logger
	algorithm string
	tls       *tls.Config
	sips      bool
}

// WithTCP makes the phone listen and send over TCP instead of UDP.
func WithTCP() Option { return func(o *options) { o.transport = "tcp" } }

// WithSIPS makes a TLS phone's Contact a sips: URI (RFC 3261 §19.1).
func WithSIPS() Option { return func(o *options) { o.sips = true } }

// WithTLS makes the phone listen and send over TLS: conf's Certificates
// serve its listener, its RootCAs check the PBX's certificate.
func WithTLS(conf *tls.Config) Option {
	return func(o *options) { o.transport, o.tls = "tls", conf }
}

// WithUserAgent sets the User-Agent header (default "ccpbx-testphone").
func WithUserAgent(name string) Option { return func(o *options) { o.name = name } }

// WithLogger sets the phone's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithAlgorithm makes the phone answer the challenge with this digest
// algorithm ("MD5", "SHA-256") when offered; default: the first one.
func WithAlgorithm(alg string) Option { return func(o *options) { o.algorithm = alg } }

// newPhoneHooks run at the end of New; files of this package append to it
// from init() to set up their per-phone state and handlers.
var newPhoneHooks []func(*Phone)

// onNewPhone registers a hook run for every new phone.
func onNewPhone(f func(*Phone)) { newPhoneHooks = append(newPhoneHooks, f) }

// New starts a phone on 127.0.0.1:0. It fails tb on error and closes the
// phone in tb.Cleanup.
func New(tb testing.TB, opts ...Option) *Phone {
	tb.Helper()
	p, err := Start(opts...)
	if err != nil {
		tb.Fatalf("testphone: %v", err)
	}
	p.tb = tb
	tb.Cleanup(p.Close)
	return p
}

// Start is New without a testing.TB (for benchmarks' helpers and tools).
func Start(opts ...Option) (*Phone, error) {
	o := options{transport: "udp", name: "ccpbx-testphone"}
	for _, f := range opts {
		f(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	uaOpts := []sipgo.UserAgentOption{sipgo.WithUserAgent(o.name), sipgo.WithUserAgentHostname("127.0.0.1")}
	if o.tls != nil {
		uaOpts = append(uaOpts, sipgo.WithUserAgenTLSConfig(o.tls))
	}
	ua, err := sipgo.NewUA(uaOpts...)
	if err != nil {
		return nil, fmt.Errorf("user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(o.log))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	p := &Phone{
		name:      o.name,
		transport: o.transport,
		sips:      o.sips,
		log:       o.log,
		UA:        ua,
		Server:    srv,
		handlers:  map[sipmsg.RequestMethod]sipgo.RequestHandler{},
		reg:       &registration{algorithm: o.algorithm},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	srv.OnNoRoute(p.dispatch)

	var serve func() error
	switch o.transport {
	case "udp":
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("listen udp: %w", err)
		}
		p.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
		serve = func() error { return srv.ServeUDP(conn) }
		// Requests leave from the listening socket, as a real phone's do,
		// so the PBX sees the same source for REGISTER and for calls.
		p.Client, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(p.addr.String()),
			sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(int(p.addr.Port())), sipgo.WithClientLogger(o.log))
		if err != nil {
			conn.Close()
			ua.Close()
			return nil, fmt.Errorf("client: %w", err)
		}
		p.closed.Add(1)
		go func() {
			defer p.closed.Done()
			<-p.ctx.Done()
			conn.Close()
		}()
	case "tcp", "tls":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			ua.Close()
			return nil, fmt.Errorf("listen tcp: %w", err)
		}
		p.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		serve = func() error { return srv.ServeTCP(ln) }
		if o.transport == "tls" {
			tl := tls.NewListener(ln, o.tls)
			serve = func() error { return srv.ServeTLS(tl) }
		}
		// Outgoing TCP connections come from an ephemeral port; the PBX must
		// answer and call back over that connection.
		p.Client, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(o.log))
		if err != nil {
			ln.Close()
			ua.Close()
			return nil, fmt.Errorf("client: %w", err)
		}
		p.closed.Add(1)
		go func() {
			defer p.closed.Done()
			<-p.ctx.Done()
			ln.Close()
		}()
	default:
		ua.Close()
		return nil, fmt.Errorf("unsupported transport %q", o.transport)
	}
	p.closed.Add(1)
	go func() {
		defer p.closed.Done()
		if err := serve(); err != nil && p.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
			p.log.Warn("testphone: serve", "err", err)
		}
	}()
	if o.transport == "udp" {
		// ServeUDP adds the socket to sipgo's connection pool from its own
		// goroutine; a request sent before that would try to bind the same
		// port again (EADDRINUSE). Wait until the pool has it.
		if err := p.waitPooled(); err != nil {
			p.Close()
			return nil, err
		}
	}
	for _, h := range newPhoneHooks {
		h(p)
	}
	return p, nil
}

func (p *Phone) waitPooled() error {
	pooled := func() bool {
		c, err := p.UA.TransportLayer().GetConnection("udp", p.addr.String())
		return err == nil && c != nil
	}
	if !pbxtest.Until(5*time.Second, pooled) {
		return fmt.Errorf("udp socket %v never became ready", p.addr)
	}
	return nil
}

// Close stops the phone and waits for its goroutines.
func (p *Phone) Close() {
	p.once.Do(func() {
		p.cancel()
		p.UA.Close()
		p.closed.Wait()
		// A response or request the phone's goroutines sent while the first
		// Close ran finds its listener gone, and sipgo then opens a fresh
		// socket with a reader nobody stops; closing the transports again
		// once those goroutines are done closes such sockets too.
		p.UA.TransportLayer().Close()
	})
}

// Addr is the phone's listening address (also the source of its UDP
// requests).
func (p *Phone) Addr() netip.AddrPort { return p.addr }

// Transport is "udp" or "tcp".
func (p *Phone) Transport() string { return p.transport }

// Name is the User-Agent string.
func (p *Phone) Name() string { return p.name }

// Context ends when the phone closes.
func (p *Phone) Context() context.Context { return p.ctx }

// ContactURI is the phone's Contact for user.
func (p *Phone) ContactURI(user string) sipmsg.Uri {
	u := sipmsg.Uri{Scheme: "sip", User: user, Host: p.addr.Addr().String(), Port: int(p.addr.Port())}
	if p.sips {
		u.Scheme = "sips"
	}
	if p.transport != "udp" {
		u.UriParams = sipmsg.NewParams()
		u.UriParams.Add("transport", p.transport)
	}
	return u
}

// Handle routes incoming requests of method to h (replacing any earlier
// handler). Safe to call at any time.
func (p *Phone) Handle(method sipmsg.RequestMethod, h sipgo.RequestHandler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handlers[method] = h
}

func (p *Phone) dispatch(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("testphone: handler panic", "method", req.Method.String(), "panic", r)
			if tx != nil {
				_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
			}
		}
	}()
	if p.ctx.Err() != nil && dropStray(tx) {
		return
	}
	p.mu.Lock()
	h := p.handlers[req.Method]
	p.mu.Unlock()
	if h != nil {
		h(req, tx)
		return
	}
	if req.IsAck() || tx == nil {
		return
	}
	code, reason := 405, "Method Not Allowed"
	if req.Method == sipmsg.OPTIONS {
		code, reason = 200, "OK"
	}
	if err := tx.Respond(sipmsg.NewResponseFromRequest(req, code, reason, nil)); err != nil {
		p.log.Warn("testphone: respond", "err", err)
	}
}

// dropStray closes the socket sipgo opened for a request read just as the
// phone closed: sipgo handles each request in a goroutine of its own, so
// one may reach the transaction layer after Close emptied the pool, and
// sipgo then binds a fresh UDP socket for the answer with a reader nothing
// stops. Such a request is not answered. It reports whether tx had one.
func dropStray(tx sipmsg.ServerTransaction) bool {
	stx, ok := tx.(*sipmsg.ServerTx)
	if !ok {
		return false
	}
	uc, ok := stx.Connection().(*sipmsg.UDPConnection)
	if !ok || uc.Listener {
		return false
	}
	_ = uc.Close()
	stx.Terminate()
	return true
}

// LastResponse is the final response to the phone's most recent request.
func (p *Phone) LastResponse() *sipmsg.Response {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// LastRequest is the most recent request the phone sent (a clone).
func (p *Phone) LastRequest() *sipmsg.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastReq == nil {
		return nil
	}
	return p.lastReq.Clone()
}

// Do sends req in a new client transaction and returns the final response
// (provisional ones are skipped). Missing Via/Max-Forwards are filled in.
func (p *Phone) Do(ctx context.Context, req *sipmsg.Request) (*sipmsg.Response, error) {
	p.mu.Lock()
	p.lastReq = req.Clone()
	p.mu.Unlock()
	tx, err := p.Client.TransactionRequest(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Method, err)
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			p.mu.Lock()
			p.last = res
			p.mu.Unlock()
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, fmt.Errorf("%s: %w", req.Method, err)
			}
			return nil, fmt.Errorf("%s: transaction ended without a final response", req.Method)
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w", req.Method, ctx.Err())
		}
	}
}

// hostPort splits "host:port" leniently for building URIs.
func hostPort(server string) (string, int, error) {
	ap, err := netip.ParseAddrPort(server)
	if err == nil {
		return ap.Addr().String(), int(ap.Port()), nil
	}
	host, port, err := sipmsg.ParseAddr(server)
	if err != nil {
		return "", 0, fmt.Errorf("server address %q: %w", server, err)
	}
	return strings.Trim(host, "[]"), port, nil
}
