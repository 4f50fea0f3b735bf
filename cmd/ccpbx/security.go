package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"ccpbx/api"
	"ccpbx/config"
	"ccpbx/guard"
	"ccpbx/store"
)

// Ban sources as `ban list` shows them and the bans table stores them.
const (
	banSourceSIP = "sip"
	banSourceESL = "event_socket"
)

// banTables builds the SIP and event socket ban tables from the validated
// settings, restores their unexpired bans from st and persists every
// later change there (st may be nil: memory only).
func banTables(cfg *config.Config, st *store.Store, log *slog.Logger) (sipBans, eslBans *guard.Bans) {
	restoring := true
	persist := func(source string) func(guard.BanEvent) {
		return func(e guard.BanEvent) {
			if st == nil || restoring {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var err error
			if e.Lifted {
				err = st.DeleteBan(ctx, source, e.Ban.Addr.String())
			} else {
				err = st.SaveBan(ctx, store.Ban{Source: source, Addr: e.Ban.Addr.String(), Until: e.Ban.Until, Failures: e.Ban.Failures})
			}
			if err != nil {
				log.Error("ban not persisted", "source", source, "ip", e.Ban.Addr.String(), "err", err)
			}
		}
	}
	ss, es := cfg.SIPSecurity, cfg.EventSocket
	sipBans = guard.NewBans(guard.BanPolicy{
		MaxFailures:    ss.AuthFailures,
		MaxKeyFailures: ss.UserAuthFailures,
		Window:         ss.AuthFailureWindow.Duration,
		BanTime:        ss.BanTime.Duration,
		Allow:          prefixes(ss.BanAllow),
		Notify:         persist(banSourceSIP),
	})
	eslBans = guard.NewBans(guard.BanPolicy{
		MaxFailures: es.AuthFailures,
		Window:      es.AuthFailureWindow.Duration,
		BanTime:     es.BanTime.Duration,
		Allow:       prefixes(es.BanAllow),
		Notify:      persist(banSourceESL),
	})
	defer func() { restoring = false }()
	if st == nil {
		return sipBans, eslBans
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := st.Bans(ctx, time.Now())
	if err != nil {
		log.Error("bans not restored", "err", err)
		return sipBans, eslBans
	}
	for _, r := range rows {
		t := map[string]*guard.Bans{banSourceSIP: sipBans, banSourceESL: eslBans}[r.Source]
		ip, err := netip.ParseAddr(r.Addr)
		if t == nil || err != nil || !t.Ban(ip, r.Until) {
			// Another source's, unreadable, or allow-listed since.
			_ = st.DeleteBan(ctx, r.Source, r.Addr)
		}
	}
	return sipBans, eslBans
}

// prefixes parses validated CIDR lists.
func prefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range list {
		if p, err := config.ParseACLEntry(a); err == nil { // validated at load
			out = append(out, p)
		}
	}
	return out
}

// eventSocketLockdown turns the validated [event_socket] settings into the
// event socket's lockdown, with bans its table of banned addresses.
func eventSocketLockdown(es config.EventSocket, bans *guard.Bans) api.Lockdown {
	return api.Lockdown{
		ACL:                prefixes(es.ACL),
		MaxConnections:     es.MaxConnections,
		MaxUnauthenticated: es.MaxUnauthenticated,
		AuthTimeout:        es.AuthTimeout.Duration,
		Bans:               bans,
	}
}

// configWarnings are settings that load but deserve a second look; `check`
// prints them. `serve` does not repeat them: the event socket logs the same
// warning with the address it really bound.
func configWarnings(cfg *config.Config) []string {
	var w []string
	if es := cfg.EventSocket; !config.ListenIsLoopback(es.Listen) && len(es.ACL) == 0 {
		w = append(w, fmt.Sprintf("event_socket.listen %q is beyond loopback and event_socket.acl is empty: anyone who reaches the port may try the password", es.Listen))
	}
	return w
}
