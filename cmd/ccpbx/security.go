package main

import (
	"fmt"
	"net/netip"

	"ccpbx/api"
	"ccpbx/config"
	"ccpbx/guard"
)

// eventSocketLockdown turns the validated [event_socket] settings into the
// event socket's lockdown.
func eventSocketLockdown(es config.EventSocket) api.Lockdown {
	var acl []netip.Prefix
	for _, a := range es.ACL {
		if p, err := config.ParseACLEntry(a); err == nil { // validated at load
			acl = append(acl, p)
		}
	}
	return api.Lockdown{
		ACL:                acl,
		MaxConnections:     es.MaxConnections,
		MaxUnauthenticated: es.MaxUnauthenticated,
		AuthTimeout:        es.AuthTimeout.Duration,
		Bans: guard.NewBans(guard.BanPolicy{
			MaxFailures: es.AuthFailures,
			Window:      es.AuthFailureWindow.Duration,
			BanTime:     es.BanTime.Duration,
		}),
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
