package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"ccpbx"
	"ccpbx/acd"
	"ccpbx/api"
	"ccpbx/call"
	"ccpbx/cdr"
	"ccpbx/cluster"
	"ccpbx/config"
	"ccpbx/dialplan"
	"ccpbx/media"
	"ccpbx/queuelog"
	"ccpbx/registrar"
	"ccpbx/sip"
	"ccpbx/sounds"
	"ccpbx/store"
)

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	level := fs.String("log-level", "", "override core.log_level (debug, info, warn, error)")
	format := fs.String("log-format", "", "override core.log_format (text, json)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *level != "" {
		cfg.Core.LogLevel = *level
	}
	if *format != "" {
		cfg.Core.LogFormat = *format
	}
	log := newLogger(cfg.Core, stderr)
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The parts run under their own context, not the signal's: a signal
	// must first let shutdown hang calls up over the still-open sockets,
	// and only then stop the listeners.
	pbx, err := start(context.Background(), cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	// SIGHUP re-reads the configuration, as reloadxml does; it never ends
	// the process or a call.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case <-sig.Done():
			break wait
		case <-hup:
			log.Info("SIGHUP: reloading the configuration", "result", strings.TrimSpace(pbx.reload.reload()))
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	pbx.shutdown(sctx)
	return 0
}

// newLogger builds the process logger. Its handler is wrapped in the event
// socket's log tap, so `log <level>` on the socket (fs_cli's console) follows
// the same records that go to w.
func newLogger(c config.Core, w io.Writer) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.LogLevel)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if strings.EqualFold(c.LogFormat, "json") {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(api.NewLogTap(h))
}

// pbx is the running process: every part, in start order.
type pbx struct {
	log   *slog.Logger
	core  *call.Core
	store *store.Store
	// reg writes its bindings behind; shutdown flushes it before the store
	// closes.
	reg *registrar.Registrar
	// node is this process's cluster membership (nil on a single box);
	// nodeEvents is closed when its events stopped reaching the ACD.
	node       *cluster.Node
	nodeEvents chan struct{}
	// reaper ends the bridged calls of the nodes this one adopts.
	reaper *bridgeReaper
	cdr    *cdr.Writer
	qlog   *queuelog.Writer
	media  *media.Engine
	sip    *sip.Stack
	acd    *acd.ACD
	esl    *api.EventSocket
	// metrics and web: the Prometheus registry and the HTTP server (nil
	// when [http] is disabled or its default port was taken).
	metrics *api.Metrics
	web     *api.Web
	stop    context.CancelFunc
	// reload re-reads the configuration (reloadxml, reload, SIGHUP).
	reload *reloader
}

func hostname(c config.Core) string {
	if c.Hostname != "" {
		return c.Hostname
	}
	h, err := os.Hostname()
	if err != nil {
		return "ccpbx"
	}
	return h
}

// start wires and starts every part; on error what was started is stopped.
func start(parent context.Context, cfg *config.Config, log *slog.Logger) (p *pbx, err error) {
	ctx, cancel := context.WithCancel(parent)
	p = &pbx{log: log, stop: cancel}
	defer func() {
		if err != nil {
			p.shutdown(context.Background())
		}
	}()
	host := hostname(cfg.Core)
	p.core = call.NewCore(host, log)
	p.core.IPv4 = switchIPv4(cfg)

	if p.store, err = store.OpenConfig(ctx, store.Config{
		Driver:  store.Driver(cfg.Store.Driver),
		DSN:     cfg.Store.DSN,
		DataDir: cfg.Core.DataDir,
	}); err != nil {
		if errors.Is(err, store.ErrInUse) {
			return p, err // it names the directory and the pid already
		}
		if cfg.Store.Driver == config.StorePostgres {
			return p, err // it names the server(s) and database
		}
		return p, fmt.Errorf("data dir %s: %w", cfg.Core.DataDir, err)
	}
	// A cluster node joins before the ACD loads: joining releases the
	// claims of this node's previous incarnation, so the ACD reads its
	// agents as they are now.
	if p.node, err = startCluster(ctx, cfg, p.store, log); err != nil {
		return p, err
	}
	// Records start before any call can: every leg from here on has one.
	csvDir := ""
	if cfg.CDR.CSV {
		csvDir = filepath.Join(cfg.Core.DataDir, cdr.CSVDirName)
	}
	if p.cdr, err = cdr.New(cdr.Options{
		Store:       p.store,
		CSVDir:      csvDir,
		RotateDaily: cfg.CDR.Rotate == config.CDRRotateDaily,
		Log:         log.With("component", "cdr"),
	}); err != nil {
		return p, err
	}
	p.cdr.Start(p.core)
	sipBans, eslBans := banTables(cfg, p.store, log.With("component", "bans"))
	reg, err := registrar.New(registrar.Config{
		Users:      cfg.Directory.Users,
		Realm:      realmFor(cfg),
		Algorithms: authAlgorithms(cfg),
		NonceTTL:   cfg.SIPSecurity.NonceTTL.Duration,
		AllowNoQOP: cfg.SIPSecurity.AllowRFC2069,
		Hostname:   host,
		Profile:    registerProfile(cfg),
		Notify:     registrationEvents(p.core),
		Resync:     bindingResync(cfg),
	}, p.store, log.With("component", "registrar"))
	if err != nil {
		return p, fmt.Errorf("registrar: %w", err)
	}
	p.reg = reg
	go reg.Run(ctx)

	if p.media, err = media.NewEngine(media.Config{
		RTPStart:      cfg.Media.RTPStart,
		RTPEnd:        cfg.Media.RTPEnd,
		MediaTimeout:  cfg.Media.MediaTimeout.Duration,
		HoldTimeout:   cfg.Media.MediaHoldTimeout.Duration,
		Probation:     cfg.Media.RTPProbation,
		Consent:       mediaConsent(cfg.Media.MediaConsent),
		SoundsFS:      sounds.FS,
		SoundsDir:     cfg.Core.SoundsDir,
		AllowedRoots:  cfg.Core.AllowedRoots,
		RecordingsDir: cfg.Core.RecordingsDir,
		RecordStereo:  cfg.Media.RecordStereo,
	}, log); err != nil {
		return p, fmt.Errorf("media: %w", err)
	}

	dp, err := dialplan.New(cfg.Dialplan, p.core, dialplan.Options{
		ScriptsDir:   cfg.Core.ScriptsDir,
		AllowedRoots: cfg.Core.AllowedRoots,
		ScriptsFS:    ccpbx.Scripts,
		Globals:      cfg.Vars,
		Log:          log.With("component", "dialplan"),
	})
	if err != nil {
		return p, fmt.Errorf("dialplan: %w", err)
	}
	dp.RegisterApps()
	p.core.SetRouter(dp.Route)

	acdOpts := acd.Options{Log: log.With("component", "acd")}
	if p.node != nil {
		acdOpts.Cluster = p.node.ACDView()
		acdOpts.Switch = bridgeRecorder{Core: p.core, node: p.node, st: p.store, log: log.With("component", "cluster")}
		p.reaper = &bridgeReaper{log: log.With("component", "cluster")}
	}
	if ql := cfg.Callcenter.Settings.QueueLog; ql == nil || *ql {
		path := filepath.Join(cfg.Core.DataDir, queuelog.FileName)
		if p.qlog, err = queuelog.Open(path, log.With("component", "queue_log")); err != nil {
			return p, err
		}
		acdOpts.QueueLog = p.qlog
	}
	if p.acd, err = acd.New(cfg.Callcenter, p.core, p.store, acdOpts); err != nil {
		return p, fmt.Errorf("callcenter: %w", err)
	}
	if err = p.acd.Start(ctx); err != nil {
		return p, fmt.Errorf("callcenter: %w", err)
	}
	if p.node != nil {
		p.nodeEvents = make(chan struct{})
		go routeClusterEvents(p.node, p.acd, p.reaper, log.With("component", "cluster"), p.nodeEvents)
	}
	clusterStatus{node: p.node, st: p.store, hash: configHash(cfg), acd: p.acd}.register(p.core)

	// Before sip, which is to report its requests, responses and auth
	// failures to it (SIPRequest, SIPResponse, AuthFailure, Ban).
	p.metrics = api.NewMetrics(p.core, api.MetricsOptions{
		Callcenter:         callcenterView{p.acd},
		Registrations:      reg,
		ServiceLevelTarget: cfg.HTTP.ServiceLevelSeconds,
	})
	if p.node != nil {
		p.metrics.SetClusterSource(clusterMetrics(p.node))
	}
	p.metrics.SetRTPSource(func() api.RTPStats {
		s := p.media.Stats()
		return api.RTPStats{PacketsIn: s.PacketsIn, PacketsOut: s.PacketsOut, Late: s.Late, Lost: s.Lost, LatchRejected: s.SourceRejected}
	})
	if p.sip, err = sip.New(sip.Options{
		Profiles:  cfg.Profiles,
		Core:      p.core,
		Registrar: reg,
		Media:     p.media,
		Log:       log,
		UserAgent: cfg.Core.UserAgent,
		Bans:      sipBans,
		Limits:    limits(cfg, p.node),
		Metrics:   p.metrics,
	}); err != nil {
		return p, fmt.Errorf("sip: %w", err)
	}
	if err = p.sip.Start(ctx); err != nil {
		return p, fmt.Errorf("sip: %w", err)
	}
	if p.reaper != nil {
		p.reaper.stack.Store(p.sip)
	}

	cmds := api.RegisterCommands(p.core, api.Deps{
		Version:       buildVersion(),
		Started:       time.Now(),
		Hostname:      host,
		Profiles:      profileInfos{p.sip},
		Registrations: p.sip.Registrations(),
	})
	go cmds.RunHeartbeat(ctx, api.HeartbeatInterval)
	go returnMemoryAfterLoad(ctx, p.core.Count, drainCheckInterval)
	go runGCPolicy(ctx, log.With("component", "gc"))
	p.reload = &reloader{core: p.core, cfg: cfg, dp: dp, reg: reg, acd: p.acd}
	p.reload.register()
	p.esl = api.NewEventSocket(p.core, cfg.EventSocket.Listen, cfg.EventSocket.Password, log.With("component", "esl"))
	p.esl.SetLockdown(eventSocketLockdown(cfg.EventSocket, eslBans))
	api.RegisterBanCommands(p.core, api.BanTable{Source: banSourceSIP, Bans: sipBans}, api.BanTable{Source: banSourceESL, Bans: eslBans})
	if tap, ok := log.Handler().(*api.LogTap); ok {
		p.esl.SetLogTap(tap)
	}
	p.esl.RegisterSocketApp()
	p.metrics.SetEventSocket(p.esl)
	p.esl.SetAuthObserver(p.metrics)
	if eslBans != nil {
		p.metrics.SetBannedSource(banSourceESL, func() int { return len(eslBans.List()) })
	}
	if sipBans != nil {
		p.metrics.SetBannedSource(banSourceSIP, func() int { return len(sipBans.List()) })
	}
	if err = p.esl.Start(); err != nil {
		return p, fmt.Errorf("event socket %s: %w", cfg.EventSocket.Listen, err)
	}
	if err = p.startWeb(cfg, reg); err != nil {
		return p, err
	}
	log.Info("ccpbx running", "version", buildVersion(), "config", cfg.File, "store", p.store.Driver(), "event_socket", p.esl.Addr().String())
	return p, nil
}

// shutdown stops taking calls, hangs up live ones with BYE and closes
// everything, bounded by ctx.
func (p *pbx) shutdown(ctx context.Context) {
	if p.web != nil {
		// First, so no API write races the hangups below; event streams end.
		if err := p.web.Shutdown(ctx); err != nil {
			p.log.Warn("web server shutdown", "err", err)
		}
	}
	if p.core != nil {
		p.core.Shutdown(ctx)
	}
	if p.reaper != nil {
		p.reaper.wg.Wait() // BYEs bounded by bridgeDialogTimeout
	}
	if p.sip != nil {
		p.sip.Close()
	}
	if p.esl != nil {
		p.esl.Close()
	}
	if p.node != nil {
		// Before the ACD, which must get no more events; the ACD's close
		// still releases its claims through the store.
		p.node.Close()
		if p.nodeEvents != nil {
			<-p.nodeEvents
		}
	}
	if p.acd != nil {
		p.acd.Close()
	}
	if p.qlog != nil {
		// After the ACD, whose last lines (calls hung up above) it drains.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := p.qlog.Close(qctx); err != nil {
			p.log.Error("queue_log not all written", "err", err)
		}
		cancel()
	}
	if p.media != nil {
		p.media.Close()
	}
	p.stop()
	if p.reg != nil {
		// The bindings are written behind the answers: a clean stop writes
		// the last ones before the store closes.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := p.reg.Close(rctx); err != nil {
			p.log.Error("registrations not all written", "err", err)
		}
		cancel()
	}
	if p.cdr != nil {
		// The legs hung up above are still being written: wait for them
		// with a budget of their own, since a clean shutdown loses none.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := p.cdr.Close(cctx); err != nil {
			p.log.Error("call detail records not all written", "err", err)
		}
		cancel()
	}
	if p.store != nil {
		p.store.Close()
	}
}

// limits are the SIP admission limits; a cluster node also refuses new
// calls while it cannot renew its lease (Kamailio tries the next node).
func limits(cfg *config.Config, n *cluster.Node) sip.Limits {
	l := sip.LimitsFrom(cfg.Core)
	if n != nil {
		l.Healthy = n.Healthy
	}
	return l
}

// switchIPv4 is FreeSWITCH-IPv4 on every event: the first profile's
// advertised address, else its listening address.
func switchIPv4(cfg *config.Config) string {
	for _, pr := range cfg.Profiles {
		if pr.AdvertiseIP != "" {
			return pr.AdvertiseIP
		}
		if pr.ListenIP != "" {
			return pr.ListenIP
		}
	}
	return ""
}

// realmFor is the digest realm of the registering profile: its realm, else
// its advertised address, else empty (the registrar then uses the address
// the phone sent its REGISTER to).
func realmFor(cfg *config.Config) string {
	for _, pr := range cfg.Profiles {
		if pr.Register {
			if pr.Realm != "" {
				return pr.Realm
			}
			return pr.AdvertiseIP
		}
	}
	return ""
}

// authAlgorithms are the digest algorithms of the registering profile.
func authAlgorithms(cfg *config.Config) []string {
	for _, pr := range cfg.Profiles {
		if pr.Register {
			return pr.AuthAlgorithms
		}
	}
	return nil
}

func registerProfile(cfg *config.Config) string {
	for _, pr := range cfg.Profiles {
		if pr.Register {
			return pr.Name
		}
	}
	return ""
}

// profileInfos adapts the SIP stack's profile listing to the api read model.
type profileInfos struct{ s *sip.Stack }

func (p profileInfos) ProfileInfos() []api.ProfileInfo {
	var out []api.ProfileInfo
	for _, i := range p.s.ProfileInfos() {
		out = append(out, api.ProfileInfo{Name: i.Name, Type: i.Type, Data: i.Data, State: i.State})
	}
	return out
}

// mediaConsent maps [media] media_consent to media's policy: sip calls
// media.Leg.Confirm on the ACK of a call we answered and on our ACK of a
// call we placed, so "ack" is media's "confirm".
func mediaConsent(v string) media.ConsentPolicy {
	switch v {
	case config.ConsentAck:
		return media.ConsentConfirm
	case config.ConsentRTP:
		return media.ConsentRTP
	case config.ConsentNone:
		return media.ConsentNone
	}
	return media.ConsentConfirmOrRTP
}

// bindingResync is how often a cluster node re-reads the registrations
// the nodes share (a phone registers through Kamailio with one node; any
// node may ring it): every lease renewal. 0 for the single box.
func bindingResync(cfg *config.Config) time.Duration {
	if !cfg.Cluster.Enabled() {
		return 0
	}
	return cfg.Cluster.RenewInterval.Duration
}
