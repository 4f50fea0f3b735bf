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
	// Allow lists sources that are never counted nor banned.
	Allow []netip.Prefix
	// MaxTracked bounds how many sources are remembered (failing and
	// banned together), so a flood from many addresses cannot grow the maps
	// without limit; 0 means DefaultMaxTracked. When full, expired entries
	// are dropped first; a new source beyond that is not counted.
	MaxTracked int
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
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

	mu    sync.Mutex
	fails map[netip.Addr]*failures
	bans  map[netip.Addr]Ban
}

type failures struct {
	first time.Time
	n     int
}

// NewBans returns an empty ban table with policy p.
func NewBans(p BanPolicy) *Bans {
	if p.MaxTracked <= 0 {
		p.MaxTracked = DefaultMaxTracked
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Bans{p: p, fails: map[netip.Addr]*failures{}, bans: map[netip.Addr]Ban{}}
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
func (b *Bans) Failure(ip netip.Addr) (banned bool) {
	ip = canon(ip)
	if b.p.MaxFailures <= 0 || !ip.IsValid() || b.allowed(ip) {
		return false
	}
	now := b.p.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if ban, ok := b.bans[ip]; ok {
		if now.Before(ban.Until) {
			return true
		}
		delete(b.bans, ip)
	}
	f := b.fails[ip]
	if f != nil && now.Sub(f.first) >= b.p.Window {
		f = nil // the window is over: count afresh
	}
	if f == nil {
		if !b.roomLocked(now) {
			return false
		}
		f = &failures{first: now}
		b.fails[ip] = f
	}
	f.n++
	if f.n < b.p.MaxFailures {
		return false
	}
	delete(b.fails, ip)
	b.bans[ip] = Ban{Addr: ip, Until: now.Add(b.p.BanTime), Failures: f.n}
	return true
}

// roomLocked makes room for one more source if the table is full, by
// dropping expired failure windows and bans.
func (b *Bans) roomLocked(now time.Time) bool {
	if len(b.fails)+len(b.bans) < b.p.MaxTracked {
		return true
	}
	for ip, f := range b.fails {
		if now.Sub(f.first) >= b.p.Window {
			delete(b.fails, ip)
		}
	}
	for ip, ban := range b.bans {
		if !now.Before(ban.Until) {
			delete(b.bans, ip)
		}
	}
	return len(b.fails)+len(b.bans) < b.p.MaxTracked
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
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.fails, ip)
	b.bans[ip] = Ban{Addr: ip, Until: until}
	return true
}

// Lift ends ip's ban and forgets its failures; it reports whether ip was
// banned.
func (b *Bans) Lift(ip netip.Addr) bool {
	ip = canon(ip)
	b.mu.Lock()
	defer b.mu.Unlock()
	ban, ok := b.bans[ip]
	delete(b.bans, ip)
	delete(b.fails, ip)
	return ok && b.p.Now().Before(ban.Until)
}

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
