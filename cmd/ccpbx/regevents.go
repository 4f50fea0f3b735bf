package main

import (
	"strconv"
	"time"

	"ccpbx/call"
	"ccpbx/registrar"
)

// registrationEvents turns registrar binding changes into mod_sofia's
// CUSTOM sofia::register / sofia::unregister / sofia::expire events, so
// event-socket clients that watch phones come and go work unchanged.
func registrationEvents(core *call.Core) func(registrar.Event) {
	return func(e registrar.Event) {
		sub := "sofia::register"
		switch e.Kind {
		case registrar.EventUnregister:
			sub = "sofia::unregister"
		case registrar.EventExpire:
			sub = "sofia::expire"
		}
		if !core.Wants("CUSTOM", sub) {
			return // no listener: nothing to build (a REGISTER's hot path)
		}
		b := e.Binding
		ev := &call.Event{Name: "CUSTOM", Subclass: sub}
		ev.Add("profile-name", b.Profile)
		ev.Add("from-user", b.User)
		ev.Add("from-host", b.Realm)
		ev.Add("contact", b.Contact)
		ev.Add("call-id", b.CallID)
		ev.Add("status", "Registered("+transportUpper(b.Transport)+")")
		ev.Add("expires", strconv.FormatInt(max(0, int64(time.Until(b.Expires).Seconds())), 10))
		ev.Add("to-user", b.User)
		ev.Add("to-host", b.Realm)
		ev.Add("network-ip", b.Source.Addr().String())
		ev.Add("network-port", strconv.Itoa(int(b.Source.Port())))
		ev.Add("username", b.User)
		ev.Add("realm", b.Realm)
		ev.Add("user-agent", b.UserAgent)
		core.Fire(ev)
	}
}

func transportUpper(t string) string {
	switch t {
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	default:
		return "UDP"
	}
}
