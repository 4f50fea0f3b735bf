// Package api is ccpbx's control surface: the API commands every operator
// types (status, version, show registrations, show calls, sofia status,
// uuid_kill …), the FreeSWITCH-compatible event socket that fs_cli and ESL
// client libraries connect to unchanged, and the client behind `ccpbx cli`.
//
// It owns the byte-exact layouts of those listings and the event-socket
// wire protocol (auth, api, bgapi, event plain|json|xml, nixevent,
// noevents, filter, log/nolog, exit). It reaches the switch only through package call (API registry, the
// event bus, channels) and reads other packages' state through the small
// read-model interfaces declared here (Profiles, Registrations). It must not
// import sip or acd, and it never blocks the core: a slow event-socket
// client loses events (counted) instead of stalling Fire.
//
// The event socket is locked down beyond FreeSWITCH's (Lockdown): ACL,
// bans of addresses that guess passwords (guard.Bans), caps on connections
// and on unauthenticated ones, a short login timeout, and no frame body read
// before login.
//
// The web server (Web) serves the REST API under /api/v1/ through the same
// commands, a Server-Sent Events feed and the wallboard that reads it
// (web/, embedded), /healthz and Prometheus /metrics (Metrics). It reads the
// ACD through the Callcenter read model, which cmd/ccpbx adapts.
package api
