package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// validate checks what the types alone cannot: names, references between
// sections, ranges, regexes, dialplan actions. It canonicalises spellings
// that are matched case-insensitively (strategies, statuses, agent types,
// transports, log settings, condition breaks) so consumers compare with ==.
func validate(c *Config, defined map[string]bool, el *errorList) {
	validateCore(&c.Core, el)
	validateMedia(&c.Media, defined, el)
	validateEventSocket(&c.EventSocket, el)
	validateSIPSecurity(&c.SIPSecurity, el)
	contexts := validateDialplan(&c.Dialplan, el)
	validateProfiles(c.Profiles, contexts, c.EventSocket, defined, el)
	validateDirectory(&c.Directory, el)
	validateCallcenter(&c.Callcenter, defined, el)
	validateCDR(&c.CDR, el)
	validateHTTP(&c.HTTP, defined, el)
	validateStore(&c.Store, defined, el)
	validateCluster(c, defined, el)
}

// validateCluster checks [cluster]: a node id usable in listings, lease
// times that leave room for renewals, and PostgreSQL as the store (a
// cluster shares its agents and claims there; SQLite is one box's file).
func validateCluster(c *Config, defined map[string]bool, el *errorList) {
	cl := &c.Cluster
	if defined["cluster.node_id"] {
		if checkName(el, "cluster.node_id", "node_id", cl.NodeID, "|,") && len(cl.NodeID) > 64 {
			el.at("cluster.node_id", "node_id is longer than 64 bytes")
		}
	}
	ttl, renew := cl.LeaseTTL.Duration, cl.RenewInterval.Duration
	if defined["cluster.lease_ttl"] && (ttl < 500*time.Millisecond || ttl > time.Minute) {
		el.at("cluster.lease_ttl", "%s is outside 500ms-1m", ttl)
		return
	}
	if defined["cluster.renew_interval"] {
		if ttl == 0 {
			ttl = DefaultLeaseTTL
		}
		if renew <= 0 || renew > ttl/2 {
			el.at("cluster.renew_interval", "%s must be above 0s and at most half of lease_ttl (%s)", renew, ttl)
		}
	}
	enabled := cl.NodeID != "" && cl.NodeID != DefaultNodeID
	if enabled && !strings.EqualFold(c.Store.Driver, StorePostgres) {
		at := "cluster.node_id"
		if defined["store.driver"] {
			at = "store.driver"
		}
		el.at(at, "a cluster node (node_id %q) needs [store] driver = %q: nodes share agents and claims there", cl.NodeID, StorePostgres)
	}
}

// validateStore checks the driver and, for PostgreSQL, the DSN's syntax the
// way the store will parse it (pgx), without connecting. Messages never
// repeat the DSN: it may hold a password.
func validateStore(s *Store, defined map[string]bool, el *errorList) {
	switch d := strings.ToLower(s.Driver); d {
	case "", StoreSQLite:
		s.Driver = d
		if defined["store.dsn"] {
			el.at("store.dsn", "dsn is for driver %q; the sqlite database is data_dir/ccpbx.db", StorePostgres)
		}
	case StorePostgres:
		s.Driver = d
		if strings.TrimSpace(s.DSN) == "" {
			at := "store.dsn"
			if !defined[at] {
				at = "store.driver"
			}
			el.at(at, "driver %q needs a dsn (postgres://user:password@host:5432,host2:5432/ccpbx?target_session_attrs=read-write)", StorePostgres)
			return
		}
		if _, err := pgx.ParseConfig(s.DSN); err != nil {
			el.at("store.dsn", "%s", dsnError(err))
		}
	default:
		el.at("store.driver", "%q is not a store driver (sqlite, postgres)", s.Driver)
	}
}

// dsnError is pgx's parse error without the connection string it quotes.
func dsnError(err error) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return "invalid dsn"
	}
	// "cannot parse `<dsn>`: <why>"
	msg := err.Error()
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		return "invalid dsn: " + msg[i+3:]
	}
	return "invalid dsn"
}

func validateCDR(c *CDR, el *errorList) {
	if c.Rotate == "" {
		return
	}
	switch r := strings.ToLower(c.Rotate); r {
	case CDRRotateNone, CDRRotateDaily:
		c.Rotate = r
	default:
		el.at("cdr.rotate", "%q is not a CDR rotation (none, daily)", c.Rotate)
	}
}

// names remembers the first path each name was defined at.
type names map[string]string

// add reports a duplicate at path, pointing at the first definition.
func (n names) add(el *errorList, what, name, path string) {
	if first, dup := n[name]; dup {
		if line := el.lay.line(first); line > 0 {
			el.at(path, "duplicate %s %q (first defined at line %d)", what, name, line)
		} else {
			el.at(path, "duplicate %s %q", what, name)
		}
		return
	}
	n[name] = path
}

// checkName requires a non-empty name without blanks or control characters,
// and without any of the extra bytes in forbid.
func checkName(el *errorList, path, what, s, forbid string) bool {
	switch {
	case s == "":
		el.at(path, "%s is required", what)
		return false
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		el.at(path, "%s %q must not contain blanks or control characters", what, s)
		return false
	case forbid != "" && strings.ContainsAny(s, forbid):
		el.at(path, "%s %q must not contain any of %q", what, s, forbid)
		return false
	}
	return true
}

// checkListingName applies ListingNameProblem to an agent or queue name.
func checkListingName(el *errorList, path, what, s string) bool {
	if s == "" {
		el.at(path, "%s is required", what)
		return false
	}
	if why := ListingNameProblem(s); why != "" {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		el.at(path, "%s %q %s", what, s, why)
		return false
	}
	return true
}

func validateCore(c *Core, el *errorList) {
	if c.MaxSessions < 0 || c.MaxSessions > 1_000_000 {
		el.at("core.max_sessions", "%d is outside 0-1000000 (0: no cap)", c.MaxSessions)
	}
	if c.SessionsPerSecond < 0 || c.SessionsPerSecond > 1_000_000 {
		el.at("core.sessions_per_second", "%d is outside 0-1000000 (0: no cap)", c.SessionsPerSecond)
	}
	if d := c.OverloadDelay.Duration; d < 0 || d > time.Minute {
		el.at("core.overload_delay", "%s is outside 0s-1m (\"0s\" disables shedding)", d)
	}
	if c.LogLevel != "" {
		switch l := strings.ToLower(c.LogLevel); l {
		case "debug", "info", "warn", "error":
			c.LogLevel = l
		default:
			el.at("core.log_level", "%q is not a log level (debug, info, warn, error)", c.LogLevel)
		}
	}
	if c.LogFormat != "" {
		switch f := strings.ToLower(c.LogFormat); f {
		case "text", "json":
			c.LogFormat = f
		default:
			el.at("core.log_format", "%q is not a log format (text, json)", c.LogFormat)
		}
	}
	if c.Hostname != "" {
		checkName(el, "core.hostname", "hostname", c.Hostname, "")
	}
	if d := c.RecordingsDir; d != "" {
		switch {
		case strings.TrimSpace(d) == "" || strings.IndexFunc(d, unicode.IsControl) >= 0:
			el.at("core.recordings_dir", "%q must name a folder (no control characters)", d)
		case filepath.Clean(d) == "/":
			el.at("core.recordings_dir", "\"/\" would let recordings be written anywhere; name a folder for them")
		case slices.Contains(strings.Split(filepath.ToSlash(d), "/"), ".."):
			el.at("core.recordings_dir", "%q must not contain \"..\"", d)
		}
	}
	if ua := c.UserAgent; ua != "" && (len(ua) > 128 || strings.IndexFunc(ua, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0) {
		el.at("core.user_agent", "must be at most 128 printable characters")
	}
	for i, d := range c.AllowedRoots {
		p := indexKey("core.allowed_roots", i)
		switch {
		case strings.TrimSpace(d) == "":
			el.at(p, "must not be empty")
		case filepath.Clean(d) == "/":
			el.at(p, "\"/\" would allow every file; name the folders that hold sounds or scripts")
		case slices.Contains(strings.Split(filepath.ToSlash(d), "/"), ".."):
			el.at(p, "%q must not contain \"..\"", d)
		}
	}
}

func validateMedia(m *Media, defined map[string]bool, el *errorList) {
	start, end := DefaultRTPStart, DefaultRTPEnd
	if defined["media.rtp_start"] {
		start = m.RTPStart
	}
	if defined["media.rtp_end"] {
		end = m.RTPEnd
	}
	ok := true
	for _, p := range []struct {
		key string
		v   int
	}{{"media.rtp_start", start}, {"media.rtp_end", end}} {
		if p.v < 1024 || p.v > 65535 {
			el.at(p.key, "port %d is outside 1024-65535", p.v)
			ok = false
		}
	}
	if ok && end <= start {
		el.at("media.rtp_end", "rtp_end %d must be above rtp_start %d (RTP needs at least one even/odd port pair)", end, start)
	}
	if m.MediaTimeout.Duration < 0 {
		el.at("media.media_timeout", "must not be negative (\"0s\" disables it)")
	}
	if m.MediaHoldTimeout.Duration < 0 {
		el.at("media.media_hold_timeout", "must not be negative (\"0s\" disables it)")
	}
	if defined["media.rtp_probation"] && (m.RTPProbation < 1 || m.RTPProbation > 100) {
		el.at("media.rtp_probation", "%d is outside 1-100 packets", m.RTPProbation)
	}
	switch m.MediaConsent {
	case "", ConsentAckOrRTP, ConsentAck, ConsentRTP, ConsentNone:
	default:
		el.at("media.media_consent", "%q is not one of %q, %q, %q, %q", m.MediaConsent, ConsentAckOrRTP, ConsentAck, ConsentRTP, ConsentNone)
	}
}

func validateEventSocket(e *EventSocket, el *errorList) {
	if e.Listen != "" {
		if _, err := checkHostPort(e.Listen); err != nil {
			el.at("event_socket.listen", "%q: %w", e.Listen, err)
		}
	}
	if e.Password == "" {
		el.at("event_socket.password", "is required: ccpbx has no default password, so that no well-known password opens the event socket")
	}
	listen := orDefault(e.Listen, DefaultEventSocketListen)
	if !ListenIsLoopback(listen) {
		for _, pw := range WellKnownEventSocketPasswords {
			if e.Password == pw {
				el.at("event_socket.password", "%q is a published password and the event socket listens beyond loopback (%s): set a password of your own (and an acl)", pw, listen)
			}
		}
	}
	checkCIDRs(el, "event_socket.acl", e.ACL)
	checkCIDRs(el, "event_socket.ban_allow", e.BanAllow)
	if e.MaxConnections < 0 {
		el.at("event_socket.max_connections", "must not be negative")
	}
	if e.MaxUnauthenticated < 0 {
		el.at("event_socket.max_unauthenticated", "must not be negative")
	} else if e.MaxConnections > 0 && e.MaxUnauthenticated > e.MaxConnections {
		el.at("event_socket.max_unauthenticated", "%d is above max_connections %d", e.MaxUnauthenticated, e.MaxConnections)
	}
	if d := e.AuthTimeout.Duration; d < 0 || d > 10*time.Minute {
		el.at("event_socket.auth_timeout", "must be between 0s (the default, 5s) and 10m")
	}
	checkBanPolicy(el, "event_socket", e.AuthFailures, e.AuthFailureWindow.Duration, e.BanTime.Duration)
}

func validateSIPSecurity(s *SIPSecurity, el *errorList) {
	checkBanPolicy(el, "sip_security", s.AuthFailures, s.AuthFailureWindow.Duration, s.BanTime.Duration)
	if s.UserAuthFailures < 0 {
		el.at("sip_security.user_auth_failures", "must not be negative (0 disables the per-account count)")
	}
	if d := s.NonceTTL.Duration; d != 0 && (d < 5*time.Second || d > time.Hour) {
		el.at("sip_security.nonce_ttl", "must be between 5s and 1h (default 60s)")
	}
	checkCIDRs(el, "sip_security.ban_allow", s.BanAllow)
}

// checkBanPolicy checks a section's auth_failures, auth_failure_window
// and ban_time.
func checkBanPolicy(el *errorList, section string, failures int, window, ban time.Duration) {
	if failures < 0 {
		el.at(section+".auth_failures", "must not be negative (0 disables the ban)")
	}
	if window < 0 {
		el.at(section+".auth_failure_window", "must not be negative")
	}
	if ban < 0 {
		el.at(section+".ban_time", "must not be negative")
	}
}

// checkCIDRs requires each entry of a list at key to be a CIDR or an
// address.
func checkCIDRs(el *errorList, key string, list []string) {
	for i, a := range list {
		if _, err := ParseACLEntry(a); err != nil {
			el.at(indexKey(key, i), "%q is not a CIDR (\"192.0.2.0/24\") or an address", a)
		}
	}
}

// ListenIsLoopback reports whether a "host:port" listen address accepts
// connections only from this machine: a loopback address or "localhost".
// An empty host, a wildcard or any other name counts as beyond loopback.
func ListenIsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// ParseACLEntry reads one ACL entry: a CIDR ("192.0.2.0/24", "::1/128") or a
// single address, which stands for itself alone.
func ParseACLEntry(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// checkHostPort validates "host:port" and returns the port.
func checkHostPort(s string) (int, error) {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return 0, fmt.Errorf("want host:port: %w", err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number in 0-65535", p)
	}
	return n, nil
}

var appName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// validateDialplan returns the set of context names.
func validateDialplan(d *Dialplan, el *errorList) map[string]bool {
	seen := names{}
	for i := range d.Contexts {
		ctx := &d.Contexts[i]
		p := indexKey("dialplan.context", i)
		if checkName(el, joinKey(p, "name"), "context name", ctx.Name, "") {
			seen.add(el, "context", ctx.Name, joinKey(p, "name"))
		}
		exts := names{}
		for j := range ctx.Extensions {
			ext := &ctx.Extensions[j]
			pe := indexKey(joinKey(p, "extension"), j)
			if ext.Name == "" {
				el.at(joinKey(pe, "name"), "extension name is required")
			} else {
				exts.add(el, "extension in context "+strconv.Quote(ctx.Name)+":", ext.Name, joinKey(pe, "name"))
			}
			for k := range ext.Conditions {
				validateCondition(&ext.Conditions[k], indexKey(joinKey(pe, "condition"), k), el)
			}
		}
	}
	out := map[string]bool{}
	for n := range seen {
		out[n] = true
	}
	return out
}

func validateCondition(c *Condition, p string, el *errorList) {
	if c.Expression != "" {
		if c.Field == "" {
			el.at(joinKey(p, "field"), "is required when an expression is given (e.g. \"destination_number\")")
		}
		if _, err := regexp.Compile(c.Expression); err != nil {
			el.at(joinKey(p, "expression"), "bad regular expression %q: %w", c.Expression, err)
		}
	}
	if c.Break != "" {
		switch b := strings.ToLower(c.Break); b {
		case "on-false", "on-true", "always", "never":
			c.Break = b
		default:
			el.at(joinKey(p, "break"), "%q is not one of on-false, on-true, always, never", c.Break)
		}
	}
	for i, a := range c.Actions {
		validateAction(a, indexKey(joinKey(p, "actions"), i), el)
	}
	for i, a := range c.AntiActions {
		validateAction(a, indexKey(joinKey(p, "anti_actions"), i), el)
	}
}

// validateAction checks an "app data" string. Which apps exist is known
// only once the modules have registered, so only the form is checked here.
func validateAction(a, p string, el *errorList) {
	app, _, _ := strings.Cut(a, " ")
	switch {
	case app == "":
		el.at(p, "empty application in action %q: write actions as \"app data\"", a)
	case !appName.MatchString(app):
		el.at(p, "bad application name %q in action %q", app, a)
	}
}

func validateProfiles(ps []Profile, contexts map[string]bool, es EventSocket, defined map[string]bool, el *errorList) {
	seen := names{}
	for i := range ps {
		pr := &ps[i]
		p := indexKey("profile", i)
		if checkName(el, joinKey(p, "name"), "profile name", pr.Name, "/:@;") {
			seen.add(el, "profile", pr.Name, joinKey(p, "name"))
		}
		if !defined[joinKey(p, "port")] {
			el.at(p, "port is required")
		} else if pr.Port < 0 || pr.Port > 65535 {
			el.at(joinKey(p, "port"), "port %d is outside 0-65535", pr.Port)
		}
		if pr.ListenIP != "" && net.ParseIP(pr.ListenIP) == nil {
			el.at(joinKey(p, "listen_ip"), "%q is not an IP address", pr.ListenIP)
		}
		if pr.AdvertiseIP != "" {
			checkName(el, joinKey(p, "advertise_ip"), "advertise_ip", pr.AdvertiseIP, "/@;")
		}
		if pr.Realm != "" {
			checkName(el, joinKey(p, "realm"), "realm", pr.Realm, `"`)
		}
		if defined[joinKey(p, "transports")] && len(pr.Transports) == 0 {
			el.at(joinKey(p, "transports"), "must list at least one of \"udp\", \"tcp\" (leave it out for both)")
		}
		tr := map[string]bool{}
		for j, t := range pr.Transports {
			lt := strings.ToLower(t)
			switch {
			case lt != "udp" && lt != "tcp" && lt != "tls":
				el.at(indexKey(joinKey(p, "transports"), j), "%q is not a transport (udp, tcp, tls)", t)
			case tr[lt]:
				el.at(indexKey(joinKey(p, "transports"), j), "transport %q is listed twice", t)
			}
			tr[lt] = true
			pr.Transports[j] = lt
		}
		algs := map[string]bool{}
		for j, a := range pr.AuthAlgorithms {
			ua := strings.ToUpper(a)
			switch {
			case ua != AuthMD5 && ua != AuthSHA256:
				el.at(indexKey(joinKey(p, "auth_algorithms"), j), "%q is not a digest algorithm (MD5, SHA-256)", a)
			case algs[ua]:
				el.at(indexKey(joinKey(p, "auth_algorithms"), j), "algorithm %q is listed twice", a)
			}
			algs[ua] = true
			pr.AuthAlgorithms[j] = ua
		}
		if defined[joinKey(p, "auth_algorithms")] && len(pr.AuthAlgorithms) == 0 {
			el.at(joinKey(p, "auth_algorithms"), "must list at least one of \"MD5\", \"SHA-256\" (leave it out for MD5)")
		}
		if pr.TimerT1X64.Duration < 0 || (defined[joinKey(p, "timer_t1x64")] && pr.TimerT1X64.Duration == 0) {
			el.at(joinKey(p, "timer_t1x64"), "must be above zero (default 32s)")
		}
		if pr.SessionTimeout.Duration != 0 && pr.SessionTimeout.Duration < 90*time.Second {
			el.at(joinKey(p, "session_timeout"), "%v is below 90s, RFC 4028's smallest session interval (\"0s\" turns session timers off)", pr.SessionTimeout.Duration)
		}
		validateProfileTLS(pr, p, tr["tls"], el)
		if !validSecureMedia(pr.RTPSecureMedia) {
			el.at(joinKey(p, "rtp_secure_media"), "%q is not one of mandatory, optional, forbidden", pr.RTPSecureMedia)
		}
		switch pr.RegisterTarget {
		case "", RegisterTargetAuto, RegisterTargetSource, RegisterTargetContact:
		default:
			el.at(joinKey(p, "register_target"), "%q is not one of %q, %q, %q", pr.RegisterTarget, RegisterTargetAuto, RegisterTargetSource, RegisterTargetContact)
		}
		validateProfileLimits(pr, p, el)
		switch {
		case pr.Context == "":
			el.at(p, "context is required (the dialplan context calls from this profile run in)")
		case !contexts[pr.Context]:
			el.at(joinKey(p, "context"), "no dialplan context named %q", pr.Context)
		}
	}
	// Two listeners on one port and address cannot both bind.
	for i := range ps {
		for j := range i {
			a, b := ps[i], ps[j]
			if a.Port != 0 && a.Port == b.Port && ipsOverlap(a.ListenIP, b.ListenIP) && transportsOverlap(a.Transports, b.Transports) {
				el.at(joinKey(indexKey("profile", i), "port"), "port %d is already used by profile %q", a.Port, b.Name)
			}
		}
	}
	if port, err := checkHostPort(orDefault(es.Listen, DefaultEventSocketListen)); err == nil && port != 0 {
		host, _, _ := net.SplitHostPort(orDefault(es.Listen, DefaultEventSocketListen))
		for i, pr := range ps {
			if pr.Port == port && ipsOverlap(pr.ListenIP, host) && transportsOverlap(pr.Transports, []string{"tcp"}) {
				el.at(joinKey(indexKey("profile", i), "port"), "TCP port %d is also the event socket's (event_socket.listen)", port)
			}
		}
	}
}

// validateProfileLimits checks a profile's ACL, call limits and TCP
// connection limits. A limit of 0 is "no cap"; timeouts of "0s" disable.
func validateProfileLimits(pr *Profile, p string, el *errorList) {
	for j, a := range pr.ACL {
		if _, err := ParseACLEntry(a); err != nil {
			el.at(indexKey(joinKey(p, "acl"), j), "%q is not a CIDR (\"192.0.2.0/24\") or an address", a)
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{
		{"calls_per_second_per_ip", pr.CallsPerSecondPerIP},
		{"max_calls_per_ip", pr.MaxCallsPerIP},
		{"tcp_max_connections", pr.TCPMaxConnections},
		{"tcp_max_connections_per_ip", pr.TCPMaxConnectionsPerIP},
	} {
		if n.v < 0 || n.v > 1_000_000 {
			el.at(joinKey(p, n.key), "%d is outside 0-1000000 (0: no cap)", n.v)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"tcp_idle_timeout", pr.TCPIdleTimeout.Duration}, {"tcp_message_timeout", pr.TCPMessageTimeout.Duration}} {
		if d.v < 0 || d.v > 24*time.Hour {
			el.at(joinKey(p, d.key), "%s is outside 0s-24h (\"0s\" disables it)", d.v)
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ipsOverlap: an empty or unspecified address binds every address.
func ipsOverlap(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if a == "" || b == "" || ia != nil && ia.IsUnspecified() || ib != nil && ib.IsUnspecified() {
		return true
	}
	if ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

// transportsOverlap treats an empty list as the default, udp and tcp.
func transportsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if strings.EqualFold(x, y) {
				return true
			}
		}
	}
	return false
}

func validateDirectory(d *Directory, el *errorList) {
	if d.Domain != "" {
		checkName(el, "directory.domain", "domain", d.Domain, "/@;")
	}
	seen := names{}
	for i := range d.Users {
		u := &d.Users[i]
		p := indexKey("directory.user", i)
		if checkName(el, joinKey(p, "id"), "user id", u.ID, "/@:;") {
			seen.add(el, "user", u.ID, joinKey(p, "id"))
		}
		for k := range u.Params {
			if k == "" {
				el.at(joinKey(p, "params"), "empty param name")
			}
		}
		for k, v := range u.Variables {
			if k == "" {
				el.at(joinKey(p, "variables"), "empty variable name")
			}
			if k == "rtp_secure_media" && !validSecureMedia(v) {
				el.at(joinKey(joinKey(p, "variables"), k), "%q is not one of mandatory, optional, forbidden", v)
			}
		}
	}
}

func validSecureMedia(v string) bool {
	if v == "" {
		return true
	}
	for _, ok := range SecureMediaValues {
		if strings.EqualFold(v, ok) {
			return true
		}
	}
	return false
}

// checkSeconds enforces mod_callcenter's 0-86400 range on a time parameter.
func checkSeconds(el *errorList, path string, v int) {
	if v < 0 || v > MaxSeconds {
		el.at(path, "%d is outside 0-%d seconds", v, MaxSeconds)
	}
}

func validateCallcenter(cc *Callcenter, defined map[string]bool, el *errorList) {
	checkSeconds(el, "callcenter.settings.agent-originate-timeout", cc.Settings.AgentOriginateTimeout)
	if cc.Settings.InstanceID != "" {
		checkName(el, "callcenter.settings.cc-instance-id", "cc-instance-id", cc.Settings.InstanceID, "|")
	}

	queues := names{}
	for i := range cc.Queues {
		q := &cc.Queues[i]
		p := indexKey("callcenter.queue", i)
		if checkListingName(el, joinKey(p, "name"), "queue name", q.Name) {
			queues.add(el, "queue", q.Name, joinKey(p, "name"))
		}
		if q.Strategy != "" {
			if s, ok := ParseStrategy(string(q.Strategy)); ok {
				q.Strategy = s
			} else {
				el.at(joinKey(p, "strategy"), "unknown strategy %q (one of %s)", q.Strategy, strings.Join(spellings(Strategies), ", "))
			}
		}
		if q.TimeBaseScore != "" {
			switch t := strings.ToLower(q.TimeBaseScore); t {
			case TimeBaseScoreQueue, TimeBaseScoreSystem:
				q.TimeBaseScore = t
			default:
				el.at(joinKey(p, "time-base-score"), "%q is not \"queue\" or \"system\"", q.TimeBaseScore)
			}
		}
		if q.AgentNoAnswerStatus != "" {
			if s, ok := ParseAgentStatus(string(q.AgentNoAnswerStatus)); ok {
				q.AgentNoAnswerStatus = s
			} else {
				el.at(joinKey(p, "agent-no-answer-status"), "unknown agent status %q (one of %s)", q.AgentNoAnswerStatus, quoteAll(spellings(Statuses)))
			}
		}
		for _, s := range []struct {
			key string
			v   *int
		}{
			{"announce-frequency", &q.AnnounceFrequency},
			{"max-wait-time", &q.MaxWaitTime},
			{"max-wait-time-with-no-agent", &q.MaxWaitTimeWithNoAgent},
			{"max-wait-time-with-no-agent-time-reached", q.MaxWaitTimeWithNoAgentTimeReached},
			{"tier-rule-wait-second", &q.TierRuleWaitSecond},
			{"discard-abandoned-after", q.DiscardAbandonedAfter},
			{"ring-progressively-delay", &q.RingProgressivelyDelay},
			{"service-level-threshold", q.ServiceLevelThreshold},
			{"short-abandon-threshold", q.ShortAbandonThreshold},
		} {
			if s.v != nil {
				checkSeconds(el, joinKey(p, s.key), *s.v)
			}
		}
		if q.AnnounceFrequency > 0 && q.AnnounceSound == "" {
			el.at(joinKey(p, "announce-frequency"), "needs announce-sound: there is nothing to announce")
		}
	}

	agents := names{}
	for i := range cc.Agents {
		a := &cc.Agents[i]
		p := indexKey("callcenter.agent", i)
		if checkListingName(el, joinKey(p, "name"), "agent name", a.Name) {
			agents.add(el, "agent", a.Name, joinKey(p, "name"))
		}
		if a.Type != "" {
			if t, ok := ParseAgentType(string(a.Type)); ok {
				a.Type = t
			} else {
				el.at(joinKey(p, "type"), "unknown agent type %q (callback or uuid-standby)", a.Type)
			}
		}
		if a.Status != "" {
			if s, ok := ParseAgentStatus(string(a.Status)); ok {
				a.Status = s
			} else {
				el.at(joinKey(p, "status"), "unknown agent status %q (one of %s)", a.Status, quoteAll(spellings(Statuses)))
			}
		}
		if a.Contact == "" && (a.Type == "" || a.Type == AgentTypeCallback) {
			el.at(p, "contact is required for a callback agent (the dial string to ring, e.g. \"user/%s\")", a.Name)
		}
		if a.MaxNoAnswer < 0 {
			el.at(joinKey(p, "max-no-answer"), "must not be negative (0 disables it)")
		}
		for _, s := range []struct {
			key string
			v   int
		}{
			{"wrap-up-time", a.WrapUpTime},
			{"reject-delay-time", a.RejectDelayTime},
			{"busy-delay-time", a.BusyDelayTime},
			{"no-answer-delay-time", a.NoAnswerDelayTime},
		} {
			checkSeconds(el, joinKey(p, s.key), s.v)
		}
	}

	tiers := names{}
	for i := range cc.Tiers {
		t := &cc.Tiers[i]
		p := indexKey("callcenter.tier", i)
		okA, okQ := t.Agent != "", t.Queue != ""
		if !okA {
			el.at(joinKey(p, "agent"), "agent is required")
		} else if _, ok := agents[t.Agent]; !ok {
			el.at(joinKey(p, "agent"), "no [[callcenter.agent]] named %q", t.Agent)
			okA = false
		}
		if !okQ {
			el.at(joinKey(p, "queue"), "queue is required")
		} else if _, ok := queues[t.Queue]; !ok {
			el.at(joinKey(p, "queue"), "no [[callcenter.queue]] named %q", t.Queue)
			okQ = false
		}
		if okA && okQ {
			key := t.Agent + "\x00" + t.Queue
			if first, dup := tiers[key]; dup {
				el.at(p, "duplicate tier: agent %q is already in queue %q (first defined at line %d)", t.Agent, t.Queue, el.lay.line(first))
			} else {
				tiers[key] = p
			}
		}
		if t.Level < 0 {
			el.at(joinKey(p, "level"), "must not be negative")
		}
		if t.Position < 0 {
			el.at(joinKey(p, "position"), "must not be negative")
		}
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}
