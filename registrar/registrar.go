package registrar

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ccpbx/config"
	"ccpbx/store"
)

// Defaults for zero Config fields.
const (
	DefaultMinExpires     = 60 * time.Second
	DefaultDefaultExpires = 3600 * time.Second
	DefaultMaxExpires     = 7200 * time.Second
	// DefaultNonceTTL is sofia's nonce-ttl default: a phone answers its
	// challenge within a second, and one that reuses a nonce for later
	// requests (nc 2, 3 …) is told stale=true and answers a new one
	// without asking its user, so a short life costs one round trip a
	// minute at most, while a captured nonce is worth little for long.
	DefaultNonceTTL    = 60 * time.Second
	DefaultMaxContacts = 10
	sweepInterval      = 2 * time.Second
	storeTimeout       = 5 * time.Second
)

// Binding is one registered contact of a user.
type Binding struct {
	User, Realm string
	// Contact is the Contact URI as registered, e.g.
	// "sip:1001@192.168.150.1:55232;ob".
	Contact string
	CallID  string
	CSeq    uint32
	Expires time.Time
	// Registered is when the binding was created or last refreshed.
	Registered time.Time
	// Source is the observed source address of the REGISTER (NAT): requests
	// to this phone go there, not to the Contact's host.
	Source netip.AddrPort
	// Transport is "udp" or "tcp" (lower case), as the REGISTER arrived.
	Transport string
	UserAgent string
	Profile   string
	// Path is the REGISTER's Path (RFC 3327): the proxies between us and
	// the phone, comma-joined header values in order ("" when it came
	// direct). Requests to the binding go along it.
	Path string
}

// EventKind says what happened to a binding.
type EventKind string

// Event kinds, named as sofia's events (sofia::register, ::unregister,
// ::expire).
const (
	EventRegister   EventKind = "register"
	EventUnregister EventKind = "unregister"
	EventExpire     EventKind = "expire"
)

// Event reports a binding change to Config.Notify.
type Event struct {
	Kind    EventKind
	Binding Binding
}

// Config configures a Registrar. Zero durations take the package defaults.
type Config struct {
	Users []config.User
	// Realm is the digest realm; empty means the domain the phone addresses
	// (To host for REGISTER, From host otherwise), as sofia does.
	Realm string
	// Hostname is reported in `show registrations`.
	Hostname                               string
	MinExpires, DefaultExpires, MaxExpires time.Duration
	// Profile is recorded in each binding (the SIP profile that owns it).
	Profile string

	// NonceTTL is how long a nonce is accepted before stale=true.
	NonceTTL time.Duration
	// AllowNoQOP accepts RFC 2069 responses (no qop, no nonce count),
	// which cannot be told from a replay; by default they are refused
	// with a new challenge.
	AllowNoQOP bool
	// Algorithms are offered in this order, one challenge each; default
	// config.DefaultAuthAlgorithms (MD5 only: some phones give up on a 401
	// that also offers an algorithm they lack).
	Algorithms []string
	// MaxContacts caps bindings per user; the oldest other binding is
	// dropped when a new one would exceed it.
	MaxContacts int
	// NonceSecret keys the nonce HMAC; empty means random per process.
	NonceSecret []byte
	// Notify, if set, is called after every binding change, outside the
	// registrar's locks. It must not block.
	Notify func(Event)
	// Clock is the time source; nil means time.Now. Tests set it to expire
	// nonces and bindings without waiting.
	Clock func() time.Time
	// Resync, when set, re-reads every binding from the store this often
	// (Run does it), replacing the ones in memory: in a cluster the nodes'
	// registrars share the store, and a phone registered through another
	// node must be found here too. 0 (the single box): never, the store is
	// only written through and read at start.
	Resync time.Duration
}

type userEntry struct {
	id       string
	password string
	a1Hash   string
	user     config.User
}

// Registrar is the location service. All methods are safe for concurrent
// use.
type Registrar struct {
	cfg Config
	st  store.Registrations
	log *slog.Logger
	// users is the directory; SetUsers swaps it whole (reload), so
	// readers load it once per request and never lock.
	users  atomic.Pointer[map[string]userEntry]
	nonces nonceSigner
	replay replayGuard
	// now is the clock; tests replace it to expire nonces and bindings.
	now func() time.Time
	// sweepEvery overrides sweepInterval (tests).
	sweepEvery time.Duration

	// writes persists binding changes behind the answers (nil without a
	// store).
	writes *writeBehind
	// writeMu serialises binding changes together with queueing their
	// persistence, so the database and memory see changes in the same
	// order; mu guards the map for readers, held only briefly.
	writeMu  sync.Mutex
	mu       sync.RWMutex
	bindings map[string]map[string]Binding // user → contact key → binding
}

// New builds a Registrar and loads the persisted, unexpired bindings from
// st (st may be nil: memory only).
func New(cfg Config, st store.Registrations, log *slog.Logger) (*Registrar, error) {
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	return newRegistrar(cfg, st, log, now)
}

// newRegistrar is New with an injectable clock.
func newRegistrar(cfg Config, st store.Registrations, log *slog.Logger, now func() time.Time) (*Registrar, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.MinExpires <= 0 {
		cfg.MinExpires = DefaultMinExpires
	}
	if cfg.DefaultExpires <= 0 {
		cfg.DefaultExpires = DefaultDefaultExpires
	}
	if cfg.MaxExpires <= 0 {
		cfg.MaxExpires = DefaultMaxExpires
	}
	if cfg.MaxExpires < cfg.MinExpires {
		return nil, fmt.Errorf("registrar: max expires %v below min expires %v", cfg.MaxExpires, cfg.MinExpires)
	}
	if cfg.DefaultExpires < cfg.MinExpires {
		cfg.DefaultExpires = cfg.MinExpires
	}
	if cfg.DefaultExpires > cfg.MaxExpires {
		cfg.DefaultExpires = cfg.MaxExpires
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = DefaultNonceTTL
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = append([]string(nil), config.DefaultAuthAlgorithms...)
	}
	for i, a := range cfg.Algorithms {
		if newHash(a) == nil {
			return nil, fmt.Errorf("registrar: unsupported digest algorithm %q", a)
		}
		cfg.Algorithms[i] = strings.ToUpper(a)
	}
	if cfg.MaxContacts <= 0 {
		cfg.MaxContacts = DefaultMaxContacts
	}
	secret := cfg.NonceSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("registrar: nonce secret: %w", err)
		}
	}
	r := &Registrar{
		cfg:      cfg,
		st:       st,
		log:      log,
		nonces:   nonceSigner{secret: secret},
		now:      now,
		bindings: make(map[string]map[string]Binding),
	}
	if err := r.SetUsers(cfg.Users); err != nil {
		return nil, err
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	if st != nil {
		r.writes = newWriteBehind(st, log)
	}
	return r, nil
}

// Close writes the binding changes still queued for the store and returns
// when they are written or ctx ends; changes after it are written before
// they are answered (each waiting at most 5 s). Call it before closing
// the store: a clean stop loses no binding.
func (r *Registrar) Close(ctx context.Context) error {
	if r.writes == nil {
		return nil
	}
	if err := r.writes.close(ctx); err != nil {
		return fmt.Errorf("registrar: bindings not all persisted: %w", err)
	}
	return nil
}

// sync waits until the queued binding changes are in the store (tests).
func (r *Registrar) sync(ctx context.Context) error {
	if r.writes == nil {
		return nil
	}
	return r.writes.sync(ctx)
}

// SetUsers replaces the directory (at start and on reload). Registrations
// of users who are gone stay until they expire or are refreshed, when the
// refresh is refused like any unknown user's.
func (r *Registrar) SetUsers(users []config.User) error {
	m := make(map[string]userEntry, len(users))
	for _, u := range users {
		if u.ID == "" {
			return errors.New("registrar: directory user with empty id")
		}
		if _, dup := m[u.ID]; dup {
			return fmt.Errorf("registrar: duplicate directory user %q", u.ID)
		}
		m[u.ID] = userEntry{id: u.ID, password: u.Password(), a1Hash: u.Params["a1-hash"], user: u}
	}
	r.users.Store(&m)
	return nil
}

// load restores persisted bindings, dropping expired ones and those of
// users no longer in the directory.
func (r *Registrar) load() error {
	if r.st == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	rows, err := r.st.Registrations(ctx)
	if err != nil {
		return fmt.Errorf("registrar: load bindings: %w", err)
	}
	now := r.now()
	var stale []store.RegistrationKey
	for _, row := range rows {
		_, known := (*r.users.Load())[row.User]
		if !known || !row.Expires.After(now) {
			stale = append(stale, store.RegistrationKey{User: row.User, Key: row.Key})
			continue
		}
		src, _ := netip.ParseAddrPort(row.Source)
		b := Binding{
			User: row.User, Realm: row.Realm, Contact: row.Contact, CallID: row.CallID, CSeq: row.CSeq,
			Expires: row.Expires, Registered: row.Registered, Source: src, Transport: row.Transport,
			UserAgent: row.UserAgent, Profile: row.Profile, Path: row.Path,
		}
		if r.bindings[b.User] == nil {
			r.bindings[b.User] = make(map[string]Binding)
		}
		r.bindings[b.User][row.Key] = b
	}
	if len(stale) > 0 {
		if err := r.st.ApplyRegistrations(ctx, nil, stale); err != nil {
			return fmt.Errorf("registrar: drop stale bindings: %w", err)
		}
	}
	r.log.Info("registrar: bindings restored", "count", len(rows)-len(stale), "dropped", len(stale))
	return nil
}

// resync replaces the bindings in memory with the store's (Config.Resync),
// as the one writer (writeMu), so no REGISTER of this node is lost between
// the read and the swap. Expired rows and unknown users are left out (the
// sweep removes them); no events are sent: the node that took the
// REGISTER sent them.
func (r *Registrar) resync() error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	rows, err := r.st.Registrations(ctx)
	if err != nil {
		return err
	}
	now := r.now()
	users := *r.users.Load()
	m := make(map[string]map[string]Binding)
	for _, row := range rows {
		if _, known := users[row.User]; !known || !row.Expires.After(now) {
			continue
		}
		src, _ := netip.ParseAddrPort(row.Source)
		if m[row.User] == nil {
			m[row.User] = make(map[string]Binding)
		}
		m[row.User][row.Key] = Binding{
			User: row.User, Realm: row.Realm, Contact: row.Contact, CallID: row.CallID, CSeq: row.CSeq,
			Expires: row.Expires, Registered: row.Registered, Source: src, Transport: row.Transport,
			UserAgent: row.UserAgent, Profile: row.Profile, Path: row.Path,
		}
	}
	r.mu.Lock()
	r.bindings = m
	r.mu.Unlock()
	return nil
}

// User returns the directory entry for id.
func (r *Registrar) User(id string) (config.User, bool) {
	u, ok := (*r.users.Load())[id]
	return u.user, ok
}

// Hostname is the configured hostname for listings.
func (r *Registrar) Hostname() string { return r.cfg.Hostname }

// Lookup returns the unexpired bindings of user, newest first.
func (r *Registrar) Lookup(user string) []Binding {
	now := r.now()
	r.mu.RLock()
	out := make([]Binding, 0, len(r.bindings[user]))
	for _, b := range r.bindings[user] {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	r.mu.RUnlock()
	sortNewestFirst(out)
	return out
}

// Bindings returns every unexpired binding, newest first (the order of
// the reference article's `show registrations`).
func (r *Registrar) Bindings() []Binding {
	now := r.now()
	r.mu.RLock()
	var out []Binding
	for _, m := range r.bindings {
		for _, b := range m {
			if b.Expires.After(now) {
				out = append(out, b)
			}
		}
	}
	r.mu.RUnlock()
	sortNewestFirst(out)
	return out
}

func sortNewestFirst(bs []Binding) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if !a.Registered.Equal(b.Registered) {
			return a.Registered.After(b.Registered)
		}
		if a.User != b.User {
			return a.User < b.User
		}
		return a.Contact < b.Contact
	})
}

// Run sweeps expired bindings (and old replay records) until ctx is done.
func (r *Registrar) Run(ctx context.Context) {
	every := r.sweepEvery
	if every <= 0 {
		every = sweepInterval
	}
	// Sweep at once: bindings may have expired while the process was down
	// or before Run was called.
	r.sweep()
	t := time.NewTicker(every)
	defer t.Stop()
	var resync <-chan time.Time
	if r.cfg.Resync > 0 && r.st != nil {
		rt := time.NewTicker(r.cfg.Resync)
		defer rt.Stop()
		resync = rt.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sweep()
		case <-resync:
			if err := r.resync(); err != nil {
				r.log.Warn("registrar: resync bindings from the store", "err", err)
			}
		}
	}
}

// sweep removes expired bindings from memory and store and fires expire
// events.
func (r *Registrar) sweep() {
	now := r.now()
	r.replay.prune(now.Add(-r.cfg.NonceTTL))
	expired, err := r.remove(func(_ string, b Binding) bool { return !b.Expires.After(now) }, true)
	if err != nil {
		// Memory still drops them (Lookup ignores expired bindings anyway);
		// load() removes leftover rows on the next start.
		r.log.Warn("registrar: persist expiry", "err", err)
	}
	for _, b := range expired {
		r.log.Info("registrar: binding expired", "user", b.User, "contact", b.Contact)
		r.notify(EventExpire, b)
	}
}

// remove takes the bindings match selects out of memory and queues their
// deletion from the store, as the one writer (writeMu) so a REGISTER cannot
// slip in between. When the store's queue stays full, dropOnStoreErr says whether memory drops them anyway (expiry)
// or keeps them and nothing is removed (flush). Events are the caller's, sent
// after writeMu is released.
func (r *Registrar) remove(match func(user string, b Binding) bool, dropOnStoreErr bool) ([]Binding, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	var removed []Binding
	var keys []store.RegistrationKey
	r.mu.RLock()
	for user, m := range r.bindings {
		for key, b := range m {
			if match(user, b) {
				removed = append(removed, b)
				keys = append(keys, store.RegistrationKey{User: user, Key: key})
			}
		}
	}
	r.mu.RUnlock()
	if len(keys) == 0 {
		return nil, nil
	}
	var err error
	if r.writes != nil {
		err = r.writes.put(nil, keys)
		if err != nil && !dropOnStoreErr {
			return nil, err
		}
	}
	r.mu.Lock()
	for _, k := range keys {
		delete(r.bindings[k.User], k.Key)
		if len(r.bindings[k.User]) == 0 {
			delete(r.bindings, k.User)
		}
	}
	r.mu.Unlock()
	return removed, err
}

func (r *Registrar) notify(kind EventKind, b Binding) {
	if r.cfg.Notify != nil {
		r.cfg.Notify(Event{Kind: kind, Binding: b})
	}
}

// contactKey normalises a Contact URI into the identity used to match
// refreshes (RFC 3261 §19.1.4 in the parts phones actually vary: scheme
// and host case, transport parameter case; other parameters are ignored).
func contactKey(c Contact) string {
	return strings.ToLower(c.Scheme) + ":" + c.User + "@" + strings.ToLower(c.Host) + ":" + strconv.Itoa(c.Port) + ";transport=" + strings.ToLower(c.Transport)
}

// Flush removes every binding of user (all users when user is ""), as
// `sofia profile internal flush_inbound_reg` does, and returns how many
// it removed. The phones are not told; they re-register on their next
// refresh.
func (r *Registrar) Flush(user string) (int, error) {
	removed, err := r.remove(func(u string, _ Binding) bool { return user == "" || u == user }, false)
	if err != nil {
		return 0, fmt.Errorf("registrar: flush: %w", err)
	}
	for _, b := range removed {
		r.log.Info("registrar: flushed", "user", b.User, "contact", b.Contact)
		r.notify(EventUnregister, b)
	}
	return len(removed), nil
}

// ConnectionClosed removes the bindings registered over the stream
// connection (TCP or TLS) that has just closed, identified by the phone's
// exact source address and the transport, and fires an unregister event
// for each, as sofia does when a registration's connection goes. Nothing
// else can reach such a phone: requests to it ride that connection. A
// phone that reconnected and re-registered comes from another source port,
// so its new binding stays. It returns how many bindings it removed.
func (r *Registrar) ConnectionClosed(transport string, src netip.AddrPort) int {
	transport = strings.ToLower(transport)
	if !src.IsValid() || (transport != "tcp" && transport != "tls") {
		return 0
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	removed, err := r.remove(func(_ string, b Binding) bool {
		return b.Source == src && b.Transport == transport
	}, true)
	if err != nil {
		// As for expiry: the phone is unreachable either way, and load()
		// drops leftover rows that expire before the next start.
		r.log.Warn("registrar: persist removal of a closed connection's bindings", "err", err)
	}
	for _, b := range removed {
		r.log.Info("registrar: connection closed, unregistered", "user", b.User, "contact", b.Contact,
			"source", src, "transport", transport)
		r.notify(EventUnregister, b)
	}
	return len(removed)
}
