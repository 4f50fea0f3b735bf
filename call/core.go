package call

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// App is a dialplan application. It runs in the channel's goroutine and may
// block (playback until played, callcenter until the caller leaves).
type App func(ctx context.Context, ch *Channel, data string) error

// API is an API command ("callcenter_config", "show"). It returns the reply
// body exactly as FreeSWITCH would (including "-ERR …" strings). ch is the
// channel on whose behalf it runs (${api()} expansion), or nil.
type API func(ctx context.Context, args string, ch *Channel) string

// Router runs a new inbound channel's dialplan in the channel's goroutine.
type Router func(ctx context.Context, ch *Channel) error

// Endpoint places outbound legs for one dial-string prefix ("user",
// "sofia"). Dial returns the answered channel, or an error that is (or
// wraps) a Cause. When ctx is cancelled it gives up with
// context.Cause(ctx) when that is a Cause, else ORIGINATOR_CANCEL.
type Endpoint interface {
	Dial(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error)
}

type apiEntry struct {
	fn   API
	desc string
}

// Core is the switch: channels, registries and the event bus.
type Core struct {
	UUID     string
	Hostname string
	IPv4     string
	IPv6     string
	Log      *slog.Logger
	Bus      Bus
	// Clock is the time source (tests inject a fake one); nil = time.Now.
	Clock func() time.Time

	seq      atomic.Uint64
	mu       sync.RWMutex
	channels map[string]*Channel
	apps     map[string]App
	apis     map[string]apiEntry
	eps      map[string]Endpoint
	router   Router
	closing  atomic.Bool
	wg       sync.WaitGroup
}

// NewCore returns an empty switch.
func NewCore(hostname string, log *slog.Logger) *Core {
	if log == nil {
		log = slog.Default()
	}
	return &Core{
		UUID:     uuid.NewString(),
		Hostname: hostname,
		Log:      log,
		channels: make(map[string]*Channel),
		apps:     make(map[string]App),
		apis:     make(map[string]apiEntry),
		eps:      make(map[string]Endpoint),
	}
}

// Now returns the core's current time.
func (c *Core) Now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// NewChannel creates, registers and announces (CHANNEL_CREATE) a channel.
func (c *Core) NewChannel(spec ChannelSpec) *Channel {
	id := spec.UUID
	if id == "" {
		id = uuid.NewString()
	}
	log := spec.Log
	if log == nil {
		log = c.Log
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := &Channel{
		core:      c,
		uuid:      id,
		name:      spec.Name,
		direction: spec.Direction,
		created:   c.Now(),
		log:       log.With("uuid", id),
		ctx:       ctx,
		cancel:    cancel,
		vars:      make([]Header, 0, len(spec.Vars)+32),
		sig:       spec.Signalling,
		media:     spec.Media,
		done:      make(chan struct{}),
	}
	// FreeSWITCH sets direction, uuid first; the spec's variables come
	// in no order, so they follow sorted. They are appended and sorted in
	// place rather than through a sorted list of keys; the two set first,
	// when the spec has them too, and empty values (which set nothing, or
	// unset one of those two) go through setVarLocked as before.
	ch.setVarLocked("direction", string(spec.Direction))
	ch.setVarLocked("uuid", id)
	fixed := len(ch.vars)
	for k, v := range spec.Vars {
		if v != "" && k != "direction" && k != "uuid" {
			ch.vars = append(ch.vars, Header{k, v})
		}
	}
	slices.SortFunc(ch.vars[fixed:], func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
	for _, k := range [...]string{"direction", "uuid"} {
		if v, ok := spec.Vars[k]; ok {
			ch.setVarLocked(k, v)
		}
	}
	ch.setVarLocked("channel_name", spec.Name)
	ch.runState = CSInit
	c.mu.Lock()
	c.channels[id] = ch
	c.mu.Unlock()
	ch.FireNamed("CHANNEL_CREATE")
	ch.FireNamed("CHANNEL_STATE")
	ch.watchDigits(spec.Media)
	return ch
}

func (c *Core) remove(ch *Channel) {
	c.mu.Lock()
	delete(c.channels, ch.uuid)
	c.mu.Unlock()
}

// Channel returns a live channel by UUID.
func (c *Core) Channel(id string) (*Channel, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ch, ok := c.channels[id]
	return ch, ok
}

// Count is the number of live channels.
func (c *Core) Count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.channels)
}

// Channels returns the live channels, oldest first.
func (c *Core) Channels() []*Channel {
	c.mu.RLock()
	out := make([]*Channel, 0, len(c.channels))
	for _, ch := range c.channels {
		out = append(out, ch)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

// RegisterApp adds a dialplan application; names are case-insensitive.
func (c *Core) RegisterApp(name string, fn App) {
	c.mu.Lock()
	c.apps[strings.ToLower(name)] = fn
	c.mu.Unlock()
}

// LookupApp finds an application.
func (c *Core) LookupApp(name string) (App, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	fn, ok := c.apps[strings.ToLower(name)]
	return fn, ok
}

// ErrNoApp is returned by Execute for an unknown application.
var ErrNoApp = fmt.Errorf("invalid application")

// Execute runs application name with data on ch, between the
// CHANNEL_EXECUTE and CHANNEL_EXECUTE_COMPLETE events FreeSWITCH fires
// around every application.
func (c *Core) Execute(ctx context.Context, ch *Channel, name, data string) error {
	return c.ExecuteWithID(ctx, ch, name, data, "")
}

// ExecuteWithID is Execute with an Application-UUID on both events (the
// Event-UUID of a sendmsg, which clients match the completion against).
func (c *Core) ExecuteWithID(ctx context.Context, ch *Channel, name, data, appUUID string) error {
	// A queued caller's goroutine stays parked under this frame (twice
	// with a Lua script) for the whole wait: the events are made in
	// helpers, so that the frame holds little.
	fn, ok := c.LookupApp(name)
	if !ok {
		return fmt.Errorf("%w %q", ErrNoApp, name)
	}
	actx, cancel := context.WithCancel(ctx)
	prev := ch.startApp(name, data, appUUID, cancel)
	err := fn(actx, ch, data)
	cancel()
	ch.endApp(name, data, appUUID, prev)
	return err
}

// startApp fires CHANNEL_EXECUTE and makes name the running application.
//
//go:noinline
func (ch *Channel) startApp(name, data, appUUID string, cancel context.CancelFunc) *running {
	if ch.RunState() < CSExecute {
		ch.SetRunState(CSExecute)
	}
	// Application-Response is what this application reports, if anything.
	ch.SetVar("current_application_response", "")
	if want, full := ch.core.Wanted("CHANNEL_EXECUTE", ""); want {
		e := ch.newEvent("CHANNEL_EXECUTE", full, 3)
		e.Add("Application", name)
		if data != "" {
			e.Add("Application-Data", data)
		}
		if appUUID != "" {
			e.Add("Application-UUID", appUUID)
		}
		ch.Fire(e)
	}
	ch.mu.Lock()
	prev := ch.app
	ch.app = &running{name: name, cancel: cancel, prev: prev}
	ch.mu.Unlock()
	return prev
}

// endApp restores the application that ran before (prev) and fires
// CHANNEL_EXECUTE_COMPLETE.
//
//go:noinline
func (ch *Channel) endApp(name, data, appUUID string, prev *running) {
	ch.mu.Lock()
	ch.app = prev
	ch.mu.Unlock()
	want, full := ch.core.Wanted("CHANNEL_EXECUTE_COMPLETE", "")
	if !want {
		return
	}
	resp := ch.Var("current_application_response")
	if resp == "" {
		resp = "_none_"
	}
	e := ch.newEvent("CHANNEL_EXECUTE_COMPLETE", full, 4)
	e.Add("Application", name)
	if data != "" {
		e.Add("Application-Data", data)
	}
	e.Add("Application-Response", resp)
	if appUUID != "" {
		e.Add("Application-UUID", appUUID)
	}
	ch.Fire(e)
}

// RegisterAPI adds an API command.
func (c *Core) RegisterAPI(name, desc string, fn API) {
	c.mu.Lock()
	c.apis[strings.ToLower(name)] = apiEntry{fn, desc}
	c.mu.Unlock()
}

// APINames lists registered API commands with their descriptions.
func (c *Core) APINames() map[string]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string]string, len(c.apis))
	for k, v := range c.apis {
		out[k] = v.desc
	}
	return out
}

// API runs the command line "cmd args…" and returns FreeSWITCH's reply body;
// an unknown command gives "-ERR cmd Command not found!\n".
func (c *Core) API(ctx context.Context, line string, ch *Channel) string {
	line = strings.TrimSpace(line)
	name, args, _ := strings.Cut(line, " ")
	c.mu.RLock()
	e, ok := c.apis[strings.ToLower(name)]
	c.mu.RUnlock()
	if !ok {
		return "-ERR " + name + " Command not found!\n"
	}
	return e.fn(ctx, strings.TrimSpace(args), ch)
}

// RegisterEndpoint makes prefix/… dial strings reach ep.
func (c *Core) RegisterEndpoint(prefix string, ep Endpoint) {
	c.mu.Lock()
	c.eps[strings.ToLower(prefix)] = ep
	c.mu.Unlock()
}

// SetRouter installs the dialplan.
func (c *Core) SetRouter(r Router) {
	c.mu.Lock()
	c.router = r
	c.mu.Unlock()
}

// ErrShuttingDown refuses new calls during shutdown.
var ErrShuttingDown = SystemShutdown

// Route starts ch's dialplan in its own goroutine. When the dialplan
// returns, a channel still up is hung up: with the returned Cause, or
// NORMAL_CLEARING; CHANNEL_HANGUP_COMPLETE fires once both the hangup and
// the dialplan are over.
func (c *Core) Route(ch *Channel) error {
	// The closing check and wg.Add happen under the lock Shutdown takes to
	// set closing, so a Route racing Shutdown is either refused or counted
	// before Shutdown waits (never added to a WaitGroup already waited on).
	c.mu.Lock()
	if c.closing.Load() {
		c.mu.Unlock()
		return ErrShuttingDown
	}
	r := c.router
	c.wg.Add(1)
	c.mu.Unlock()
	// The dialplan holds the channel: CHANNEL_HANGUP_COMPLETE (the leg's
	// record) waits until the apps have returned and set what they set.
	release := ch.Hold()
	if ch.Direction() == Inbound {
		// An inbound leg rings from FreeSWITCH's point of view once it is
		// routed (switch_channel_perform_set_running_state).
		ch.setCallState(CCSRinging)
	}
	ch.SetRunState(CSRouting)
	go c.runRouter(r, ch, release)
	return nil
}

// runRouter is a channel's dialplan goroutine. A queued caller's goroutine
// stays parked under this frame for the whole wait, so it holds little.
func (c *Core) runRouter(r Router, ch *Channel, release func()) {
	defer c.routerDone(ch, release)
	if r == nil {
		ch.Hangup(NoRouteDestination)
		return
	}
	ch.Hangup(routerCause(ch, r(ch.Context(), ch)))
}

// routerDone ends runRouter: a panic hangs the channel up.
func (c *Core) routerDone(ch *Channel, release func()) {
	if p := recover(); p != nil {
		ch.Log().Error("dialplan panic", "panic", p)
		ch.Hangup(NormalTemporaryFailure)
	}
	release()
	c.wg.Done()
}

// routerCause is the cause a channel still up is hung up with when its
// dialplan returned err.
//
//go:noinline
func routerCause(ch *Channel, err error) Cause {
	if err == nil {
		return NormalClearing
	}
	if cc, ok := AsCause(err); ok {
		return cc
	}
	ch.Log().Warn("dialplan ended with error", "err", err)
	return NormalClearing
}

// Shutdown stops taking calls, hangs up every channel and waits (bounded by
// ctx) for dialplan goroutines to end.
func (c *Core) Shutdown(ctx context.Context) {
	c.mu.Lock()
	c.closing.Store(true)
	c.mu.Unlock()
	for _, ch := range c.Channels() {
		ch.Hangup(SystemShutdown)
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Closing reports whether Shutdown has begun.
func (c *Core) Closing() bool { return c.closing.Load() }
