package guard

import (
	"net/netip"
	"sort"
	"sync"
	"time"
)

// BanPolicy says when a source is banned and for how long.
type BanPolicy struct {
	// MaxFailures within Window ban the source; 0 disables banning (failures
	// are then not even counted).
	MaxFailures int
	// Window is how far back failures count (a fixed window that starts at
	// a source's first failure).
	Window time.Duration
	// BanTime is how long a ban lasts.
	BanTime time.Duration
	// MaxKeyFailures, when above 0, also counts failures per key (an
	// account name, given to FailureFor) within Window: once a key has
	// failed that often, every further failure for it bans its source at
	// once. Guessing one account from many addresses is stopped that way
	// without locking the account's owner out (a right password still
	// works from any source that is not banned).
	MaxKeyFailures int
	// Allow lists sources that are never counted nor banned.
	Allow []netip.Prefix
	// MaxTracked bounds how many sources are remembered failing, how many
	// keys, and how many bans, so a flood from many addresses cannot grow
	// the tables without limit; 0 means DefaultMaxTracked. When full,
	// expired entries are dropped first; a new source beyond that is not
	// counted (or not banned).
	MaxTracked int
	// Notify, if set, is told of every ban that starts (by failures or by
	// Ban) and of every Lift that ends one, outside the table's lock, in
	// the goroutine that caused it: a persistence hook. It must not block
	// for long.
	Notify func(BanEvent)
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
}

// BanEvent is a change Notify is told of: a ban that started, or one that
// was lifted.
type BanEvent struct {
	Ban    Ban
	Lifted bool
}

// DefaultMaxTracked is the default bound on remembered sources.
const DefaultMaxTracked = 65536

// Ban is one banned source, as List reports it.
type Ban struct {
	Addr     netip.Addr
	Until    time.Time
	Failures int // failures that led to the ban (0 for a ban set with Ban)
}

// Bans counts authentication failures per source address and bans sources
// that fail too often, as Kamailio's pike or fail2ban do, inside the
// process. It is safe for concurrent use; every method is O(1) except List
// and the occasional pruning of expired entries when the table is full.
//
// Addresses are compared unmapped (::ffff:192.0.2.1 is 192.0.2.1); the zone
// is ignored.
type Bans struct {
	p BanPolicy

	fails *Counter[netip.Addr]
	keys  *Counter[string]

	mu   sync.Mutex
	bans map[netip.Addr]Ban
}

// NewBans returns an empty ban table with policy p.
func NewBans(p BanPolicy) *Bans {
	if p.MaxTracked <= 0 {
		p.MaxTracked = DefaultMaxTracked
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Bans{
		p:     p,
		fails: NewCounter[netip.Addr](p.Window, p.MaxTracked, p.Now),
		keys:  NewCounter[string](p.Window, p.MaxTracked, p.Now),
		bans:  map[netip.Addr]Ban{},
	}
}

func canon(ip netip.Addr) netip.Addr { return ip.Unmap().WithZone("") }

func (b *Bans) allowed(ip netip.Addr) bool {
	for _, p := range b.p.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Failure records one failed attempt from ip and reports whether ip is
// banned now (by this failure or before).
func (b *Bans) Failure(ip netip.Addr) (banned bool) { return b.FailureFor(ip, "") }

// FailureFor records one failed attempt from ip for key (an account name;
// "" counts the source only) and reports whether ip is banned now: by
// MaxFailures from ip, or because key has failed MaxKeyFailures times.
func (b *Bans) FailureFor(ip netip.Addr, key string) (banned bool) {
	ip = canon(ip)
	if b.p.MaxFailures <= 0 || !ip.IsValid() || b.allowed(ip) {
		return false
	}
	if b.Banned(ip) {
		return true
	}
	n := b.fails.Add(ip)
	over := n >= b.p.MaxFailures
	if key != "" && b.p.MaxKeyFailures > 0 && b.keys.Add(key) >= b.p.MaxKeyFailures {
		over = true
	}
	if !over {
		return false
	}
	b.fails.Reset(ip)
	return b.set(Ban{Addr: ip, Until: b.p.Now().Add(b.p.BanTime), Failures: n})
}

// set records ban (replacing one of the same address) if there is room,
// tells Notify, and reports whether the address is banned.
func (b *Bans) set(ban Ban) bool {
	now := b.p.Now()
	b.mu.Lock()
	if _, ok := b.bans[ban.Addr]; !ok && len(b.bans) >= b.p.MaxTracked {
		for ip, old := range b.bans {
			if !now.Before(old.Until) {
				delete(b.bans, ip)
			}
		}
		if len(b.bans) >= b.p.MaxTracked {
			b.mu.Unlock()
			return false
		}
	}
	b.bans[ban.Addr] = ban
	b.mu.Unlock()
	if b.p.Notify != nil {
		b.p.Notify(BanEvent{Ban: ban})
	}
	return true
}

// Banned reports whether ip is banned now. It is what a listener asks
// before doing any work for a new connection or request.
func (b *Bans) Banned(ip netip.Addr) bool {
	ip = canon(ip)
	b.mu.Lock()
	defer b.mu.Unlock()
	ban, ok := b.bans[ip]
	if !ok {
		return false
	}
	if b.p.Now().Before(ban.Until) {
		return true
	}
	delete(b.bans, ip)
	return false
}

// Ban bans ip until the given time, whatever its failures (an operator's
// ban, or one restored from storage after a restart). An allowed source is
// not banned; Ban reports whether ip is banned afterwards.
func (b *Bans) Ban(ip netip.Addr, until time.Time) bool {
	ip = canon(ip)
	if !ip.IsValid() || b.allowed(ip) || !b.p.Now().Before(until) {
		return false
	}
	b.fails.Reset(ip)
	return b.set(Ban{Addr: ip, Until: until})
}

// Lift ends ip's ban and forgets its failures; it reports whether ip was
// banned.
func (b *Bans) Lift(ip netip.Addr) bool {
	ip = canon(ip)
	b.fails.Reset(ip)
	b.mu.Lock()
	ban, ok := b.bans[ip]
	delete(b.bans, ip)
	b.mu.Unlock()
	if ok && b.p.Notify != nil {
		b.p.Notify(BanEvent{Ban: ban, Lifted: true})
	}
	return ok && b.p.Now().Before(ban.Until)
}

// Allowed reports whether ip is on the allow-list (never banned).
func (b *Bans) Allowed(ip netip.Addr) bool { return b.allowed(canon(ip)) }

// List returns the current bans, ordered by address.
func (b *Bans) List() []Ban {
	now := b.p.Now()
	b.mu.Lock()
	out := make([]Ban, 0, len(b.bans))
	for ip, ban := range b.bans {
		if now.Before(ban.Until) {
			out = append(out, ban)
		} else {
			delete(b.bans, ip)
		}
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}
