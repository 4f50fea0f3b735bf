package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/guard"
	"ccpbx/media"
	"ccpbx/registrar"
)

// Options wires a Stack to the rest of the switch.
type Options struct {
	Profiles  []config.Profile
	Core      *call.Core
	Registrar *registrar.Registrar
	Media     *media.Engine
	Log       *slog.Logger
	// UserAgent is the User-Agent header value ("ccpbx/1.0").
	UserAgent string
	// Bans, if set, counts digest failures and drops banned sources
	// (sip/register.go).
	Bans *guard.Bans
	// Limits are the switch-wide admission limits; the zero value limits
	// nothing.
	Limits Limits
	// Metrics, if set, counts requests received, responses sent, auth
	// failures and bans (metrics.go).
	Metrics Metrics
}

// ProfileInfo is one row of `sofia status`.
type ProfileInfo struct {
	Name, Type, Data, State string
}

// Stack is the set of SIP profiles and the dialogs living on them.
type Stack struct {
	core  *call.Core
	reg   *registrar.Registrar
	media *media.Engine
	log   *slog.Logger
	agent string
	bans  *guard.Bans
	// metrics is nil when nothing counts.
	metrics Metrics

	profiles []*profile
	byName   map[string]*profile

	dialogs dialogTable
	// late holds outbound INVITEs we cancelled, by Call-ID, so a 2xx that
	// arrives after their transaction ended is still ACKed and BYEd.
	late sync.Map

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	serveWG sync.WaitGroup
	pending inflight // BYEs, CANCELs and 200 retransmissions still going
	gate    sendGate // shut by Close before the listeners (sendgate.go)
	legs    map[*leg]struct{}
	// legSource is the source address each inbound leg counts against
	// (its profile's max_calls_per_ip).
	legSource map[*leg]netip.Addr

	limits      Limits
	sessionRate *rate     // nil: no sessions_per_second
	overload    *overload // nil: no shedding
	// limited counts new calls refused by a limit.
	limited atomic.Uint64
}

// profile is one sofia-style listener with its own UserAgent, so requests
// and responses always leave from the socket the peer talks to (go-sip-stack
// §1.3: one UA shared by two listeners answers from the wrong port).
type profile struct {
	stack *Stack
	cfg   config.Profile
	name  string
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	cli   *sipgo.Client
	log   *slog.Logger
	// guard drops input that is not SIP before sipgo parses it.
	guard *inputGuard
	// limits: what the profile admits (admit, limits.go).
	limits profileLimits
	// udpConn is the profile's UDP socket once bound, for the answers
	// shedEarly sends without a transaction.
	udpConn atomic.Pointer[net.PacketConn]

	listenIP netip.Addr
	advIP    netip.Addr
	port     int
	udp      bool
	tcp      bool
	tlsl     tlsListener // tls.go
}

// New builds the profiles and registers the call endpoints with the core.
// Nothing listens until Start.
func New(o Options) (*Stack, error) {
	if o.Core == nil {
		return nil, errors.New("sip: Options.Core is required")
	}
	if o.Media == nil {
		return nil, errors.New("sip: Options.Media is required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.UserAgent == "" {
		o.UserAgent = "ccpbx"
	}
	s := &Stack{
		core:      o.Core,
		reg:       o.Registrar,
		media:     o.Media,
		log:       o.Log.With("component", "sip"),
		agent:     o.UserAgent,
		bans:      o.Bans,
		metrics:   o.Metrics,
		byName:    make(map[string]*profile),
		legs:      make(map[*leg]struct{}),
		legSource: make(map[*leg]netip.Addr),
		limits:    o.Limits,
	}
	if o.Limits.SessionsPerSecond > 0 {
		s.sessionRate = newRate(o.Limits.SessionsPerSecond)
	}
	if o.Limits.OverloadDelay > 0 {
		s.overload = newOverload(o.Limits.OverloadDelay)
	}
	s.dialogs.init()
	fail := func(err error) (*Stack, error) {
		for _, p := range s.profiles {
			p.ua.Close()
		}
		return nil, err
	}
	for _, pc := range o.Profiles {
		if _, dup := s.byName[pc.Name]; dup {
			return fail(fmt.Errorf("sip: duplicate profile %q", pc.Name))
		}
		p, err := s.newProfile(pc)
		if err != nil {
			return fail(fmt.Errorf("sip: profile %s: %w", pc.Name, err))
		}
		s.profiles = append(s.profiles, p)
		s.byName[p.name] = p
	}
	o.Core.RegisterEndpoint("user", userEndpoint{s})
	o.Core.RegisterEndpoint("sofia", sofiaEndpoint{s})
	return s, nil
}

func (s *Stack) newProfile(pc config.Profile) (*profile, error) {
	p := &profile{stack: s, cfg: pc, name: pc.Name, port: pc.Port}
	p.log = s.log.With("profile", pc.Name)
	lim, err := newProfileLimits(pc)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	p.limits = lim
	if len(pc.Transports) == 0 {
		p.udp, p.tcp = true, true
	}
	for _, t := range pc.Transports {
		switch strings.ToLower(t) {
		case "udp":
			p.udp = true
		case "tcp":
			p.tcp = true
		case "tls":
			p.tlsl.on = true
		default:
			return nil, fmt.Errorf("unsupported transport %q", t)
		}
	}
	listen := pc.ListenIP
	if listen == "" {
		listen = "0.0.0.0"
	}
	ip, err := netip.ParseAddr(listen)
	if err != nil || !ip.Is4() {
		return nil, fmt.Errorf("listen_ip %q: need an IPv4 address", pc.ListenIP)
	}
	p.listenIP = ip
	switch {
	case pc.AdvertiseIP != "":
		adv, err := netip.ParseAddr(pc.AdvertiseIP)
		if err != nil {
			return nil, fmt.Errorf("advertise_ip %q: %w", pc.AdvertiseIP, err)
		}
		p.advIP = adv
	case !ip.IsUnspecified():
		p.advIP = ip
	default:
		p.advIP = detectAdvertiseIP()
	}
	if err := p.setupTLS(); err != nil {
		return nil, err
	}
	p.guard = newInputGuard(p.log.With("layer", "transport"), tcpLimits{
		conns:   guard.ConnLimits{Max: pc.TCPMaxConnections, PerIP: pc.TCPMaxConnectionsPerIP},
		idle:    pc.TCPIdleTimeout.Duration,
		message: pc.TCPMessageTimeout.Duration,
	})
	p.guard.shed = p.shedEarly
	p.guard.closed = p.connClosed
	p.guard.banned = s.bannedAddr
	p.guard.shedding = s.overload.shedding
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(s.agent),
		sipgo.WithUserAgentHostname(p.advIP.String()),
		sipgo.WithUserAgentTransactionLayerOptions(
			sipmsg.WithTransactionLayerUnhandledResponseHandler(s.unhandledResponse),
			sipmsg.WithTransactionLayerLogger(p.log.With("layer", "transaction")),
		),
		sipgo.WithUserAgentTransportLayerOptions(
			sipmsg.WithTransportLayerLogger(slog.New(p.guard.sipgoLog(p.log.With("layer", "transport").Handler()))),
			sipmsg.WithTransportLayerReadFilter(p.guard.filterUDP),
		),
	)
	if err != nil {
		return nil, err
	}
	p.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(p.log))
	if err != nil {
		ua.Close()
		return nil, err
	}
	p.srv = srv
	p.routes()
	return p, nil
}

// detectAdvertiseIP picks the non-loopback IPv4 address of the default
// route: the address a UDP socket "connected" to a public address would use
// (no packet is sent), else the first non-loopback interface address, else
// loopback.
func detectAdvertiseIP() netip.Addr {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		defer c.Close()
		if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
			if ip, ok := netip.AddrFromSlice(ua.IP.To4()); ok && !ip.IsLoopback() && !ip.IsUnspecified() {
				return ip
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP.To4()); ok && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					return ip
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// Start binds every profile's sockets and serves them. It returns once all
// listeners are bound; port 0 picks an ephemeral port (tests), shared by the
// profile's UDP and TCP listeners.
func (s *Stack) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("sip: stack already started")
	}
	s.started = true
	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.mu.Unlock()
	for _, p := range s.profiles {
		if err := p.listen(ctx); err != nil {
			cancel()
			return fmt.Errorf("sip: profile %s: %w", p.name, err)
		}
	}
	if s.overload != nil {
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			s.overload.run(ctx, func(on bool, d time.Duration) {
				if on {
					s.log.Warn("overload: shedding new calls and registrations with 503", "sched_delay", d)
				} else {
					s.log.Info("overload over: serving new calls and registrations again", "sched_delay", d)
				}
			})
		}()
	}
	return nil
}

// udpReadBuffer is the receive buffer asked for each profile's UDP socket.
// The one read loop drains it; while it waits for a CPU (a busy box, a GC
// pause) datagrams queue there, and with Linux's default of 208 KB (about
// 150 REGISTERs) a 3,200 REGISTER/s load lost tens of thousands to
// overflow, each costing the phone a retransmission 500 ms later. 4 MB
// holds about half a second at that rate; the kernel grants at most
// net.core.rmem_max (README, "Limits and overload").
const udpReadBuffer = 4 << 20

func (p *profile) listen(ctx context.Context) error {
	var (
		udp net.PacketConn
		tcp net.Listener
		err error
	)
	// With port 0 the UDP port is chosen first and TCP must get the same
	// number; another process may hold it for TCP, so try a few times.
	for attempt := 0; attempt < 20; attempt++ {
		port := p.port
		if p.udp {
			udp, err = net.ListenPacket("udp4", netip.AddrPortFrom(p.listenIP, uint16(port)).String())
			if err != nil {
				return fmt.Errorf("listen udp: %w", err)
			}
			if uc, ok := udp.(*net.UDPConn); ok {
				// Best effort: the kernel caps it at net.core.rmem_max.
				_ = uc.SetReadBuffer(udpReadBuffer)
			}
			port = udp.LocalAddr().(*net.UDPAddr).Port
		}
		if p.tcp {
			tcp, err = net.Listen("tcp4", netip.AddrPortFrom(p.listenIP, uint16(port)).String())
			if err != nil {
				if udp != nil {
					udp.Close()
				}
				if p.port == 0 {
					continue
				}
				return fmt.Errorf("listen tcp: %w", err)
			}
			port = tcp.Addr().(*net.TCPAddr).Port
		}
		p.port = port
		break
	}
	if err != nil {
		return err
	}
	// Requests leave from the listener's own socket (source port = profile
	// port) with the advertised address in Via, and rport for NAT.
	cli, err := sipgo.NewClient(p.ua,
		sipgo.WithClientHostname(p.advIP.String()),
		sipgo.WithClientPort(p.port),
		sipgo.WithClientNAT(),
		sipgo.WithClientLogger(p.log),
	)
	if err != nil {
		return err
	}
	p.cli = cli
	if err := p.listenTLS(ctx); err != nil {
		for _, c := range []io.Closer{udp, tcp} {
			if c != nil {
				c.Close()
			}
		}
		return err
	}
	s := p.stack
	if udp != nil {
		p.udpConn.Store(&udp)
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			go func() { <-ctx.Done(); udp.Close() }()
			if err := p.srv.ServeUDP(udp); err != nil && ctx.Err() == nil {
				p.log.Error("udp listener stopped", "err", err)
			}
		}()
	}
	if tcp != nil {
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			go func() { <-ctx.Done(); tcp.Close() }()
			// ServeTCP returns only with an error: a closed listener on
			// shutdown, anything else is news.
			err := p.srv.ServeTCP(p.guard.listener(tcp, "tcp"))
			if ctx.Err() == nil {
				p.log.Error("tcp listener stopped", "err", err)
			}
		}()
	}
	p.log.Info("sip profile listening", "listen", netip.AddrPortFrom(p.listenIP, uint16(p.port)).String(),
		"advertise", p.advIP.String(), "udp", p.udp, "tcp", p.tcp)
	return nil
}

// Addr returns the address a peer reaches the profile on: the advertised
// IP and the bound port (zero value for an unknown profile).
func (s *Stack) Addr(profile string) netip.AddrPort {
	p, ok := s.byName[profile]
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(p.advIP, uint16(p.port))
}

// ProfileInfos lists the profiles for `sofia status`.
func (s *Stack) ProfileInfos() []ProfileInfo {
	out := make([]ProfileInfo, 0, len(s.profiles))
	for _, p := range s.profiles {
		out = append(out, ProfileInfo{
			Name:  p.name,
			Type:  "profile",
			Data:  "sip:mod_sofia@" + netip.AddrPortFrom(p.advIP, uint16(p.port)).String(),
			State: "RUNNING (0)",
		})
	}
	return out
}

// Close hangs up the live SIP legs with BYE (or a final response / CANCEL),
// waits briefly for those to go out, and stops the listeners.
func (s *Stack) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	legs := make([]*leg, 0, len(s.legs))
	for l := range s.legs {
		legs = append(legs, l)
	}
	cancel := s.cancel
	s.mu.Unlock()
	for _, l := range legs {
		if ch := l.channel(); ch != nil {
			ch.Hangup(call.SystemShutdown)
		}
	}
	s.pending.wait(3 * time.Second)
	s.gate.shutAndWait(time.Second)
	if cancel != nil {
		cancel()
	}
	// Stop reading before closing the transport pools, so fewer requests
	// are still being answered when the pools go away.
	waitTimeout(&s.serveWG, 2*time.Second)
	for _, p := range s.profiles {
		p.ua.Close()
	}
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// inflight counts background work that Close waits for. Unlike a
// WaitGroup it may gain work while Close waits: a hangup during shutdown
// makes its bridge peer hang up too, from another goroutine.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.zero != nil {
		close(f.zero)
		f.zero = nil
	}
	f.mu.Unlock()
}

// wait returns when nothing is in flight or after d.
func (f *inflight) wait(d time.Duration) {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	if f.zero == nil {
		f.zero = make(chan struct{})
	}
	ch := f.zero
	f.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(d):
	}
}

func (s *Stack) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Stack) track(l *leg) {
	ip, inbound := inboundSource(l)
	s.mu.Lock()
	s.legs[l] = struct{}{}
	if inbound {
		s.legSource[l] = ip
		s.countCallLocked(l, ip, +1)
	}
	s.mu.Unlock()
}

// Live counts the SIP call legs (channels this stack signals) and the
// dialogs in its table: what a finished call must leave behind, nothing.
func (s *Stack) Live() (legs, dialogs int) {
	s.mu.Lock()
	legs = len(s.legs)
	s.mu.Unlock()
	s.dialogs.mu.RLock()
	dialogs = len(s.dialogs.m)
	s.dialogs.mu.RUnlock()
	return legs, dialogs
}

func (s *Stack) untrack(l *leg) {
	s.mu.Lock()
	delete(s.legs, l)
	if ip, ok := s.legSource[l]; ok {
		delete(s.legSource, l)
		s.countCallLocked(l, ip, -1)
	}
	s.mu.Unlock()
}

// unhandledResponse sees responses that match no client transaction: a 2xx
// to our INVITE retransmitted after the transaction ended means our ACK was
// lost, so the dialog re-sends it.
func (s *Stack) unhandledResponse(res *sipmsg.Response) {
	defer s.recoverPanic("unhandled response")
	if !res.IsSuccess() {
		return
	}
	if cs := res.CSeq(); cs == nil || cs.MethodName != sipmsg.INVITE {
		return
	}
	id, err := sipmsg.DialogIDFromResponse(res)
	if err != nil {
		return
	}
	// DialogIDFromResponse orders (Call-ID, To tag, From tag); for a UAC
	// dialog the local tag is the From tag.
	callID, remote, local := splitDialogID(id)
	if d := s.dialogs.get(callID, local, remote); d != nil {
		d.resendAck()
		return
	}
	if v, ok := s.late.LoadAndDelete(callID); ok {
		s.pending.add()
		go func() {
			defer s.pending.done()
			v.(*lateInvite).ackAndBye(res)
		}()
	}
}

func (s *Stack) recoverPanic(what string) {
	if r := recover(); r != nil {
		s.log.Error("panic in sip handler", "handler", what, "panic", r, "stack", string(debug.Stack()))
	}
}

// profileFor picks the profile an outbound call to a registered phone
// leaves from: the one it registered on, else the first that takes
// registrations, else the first.
func (s *Stack) profileFor(name string) *profile {
	if p, ok := s.byName[name]; ok && p.cli != nil {
		return p
	}
	for _, p := range s.profiles {
		if p.cfg.Register && p.cli != nil {
			return p
		}
	}
	for _, p := range s.profiles {
		if p.cli != nil {
			return p
		}
	}
	return nil
}

// contact is the Contact header the profile puts on dialog-forming messages.
func (p *profile) contact(transport string) *sipmsg.ContactHeader {
	u := sipmsg.Uri{Scheme: "sip", User: "mod_sofia", Host: p.advIP.String(), Port: p.port}
	switch {
	case strings.EqualFold(transport, "tcp"):
		u.UriParams = sipmsg.NewParams()
		u.UriParams.Add("transport", "tcp")
	case strings.EqualFold(transport, "tls"):
		u.Port = p.tlsl.port
		u.UriParams = sipmsg.NewParams()
		u.UriParams.Add("transport", "tls")
	}
	return &sipmsg.ContactHeader{Address: u}
}

// laddr is the local address requests on transport must leave from: the
// UDP listener for UDP; for TCP the pooled connection to the peer is found
// by its remote address, so no local address is forced.
func (p *profile) laddr(transport string) sipmsg.Addr {
	if strings.EqualFold(transport, "udp") {
		return sipmsg.Addr{IP: p.listenIP.AsSlice(), Port: p.port, Hostname: p.listenIP.String()}
	}
	return sipmsg.Addr{}
}
