// Package config owns ccpbx's configuration file: the TOML schema as plain
// structs, the FreeSWITCH-style $${var} preprocessing, defaults, and the
// validation that refuses a bad file with file:line before anything starts.
//
// It must not start anything or import other ccpbx packages: every other
// package receives the decoded structs from cmd/ccpbx.
//
// # Loading
//
// Load and Parse run, in order: $${name} expansion from [vars] (outside
// comments; escaped for the string it lands in; never adding a line, so line
// numbers stay the user's), a check of every key and type against these
// structs, decoding, validation, then defaults. Any problem returns a nil
// *Config and an error; each problem is an *Error printed as
//
//	config.toml:42: key "callcenter.queue[0].strategy": unknown strategy "fastest" (…)
//
// and several are joined (errors.Join) in line order. Syntax and type
// problems are reported before meaning (names, references, ranges).
//
// Validation: unknown keys; wrong types; duplicate profile names, user ids,
// context names, extension names within a context, queue names, agent names
// and agent+queue tiers; two profiles (or a profile and the event socket) on
// one port, address and transport; profile contexts that do not exist;
// regular expressions Go's regexp cannot compile (RE2: no look-around or
// back-references, unlike FreeSWITCH's PCRE); actions without an application
// ("app data"); unknown strategies, agent statuses, agent types, transports,
// log settings, condition breaks; tiers naming unknown agents or queues; queue
// times outside mod_callcenter's 0–86400 s; announce-frequency without
// announce-sound; a callback agent without contact; no event-socket password.
//
// Case-insensitive names are canonicalised, so consumers compare with ==:
// strategies and time-base-score to lower case, statuses to FreeSWITCH's
// spelling ("available" → "Available"), agent types to "callback" and
// "uuid-standby" (the article's spelling, shown by `agent list`), transports,
// log level/format and condition break to lower case.
//
// # Defaults
//
// Applied after validation, to what the file leaves out (see the Default*
// constants):
//
//	core: data_dir "data", scripts_dir "scripts", sounds_dir "sounds",
//	      recordings_dir "recordings", log_level "info", log_format "text",
//	      hostname "" (os.Hostname at use)
//	media: rtp_start 16384, rtp_end 32767, media_timeout 60s ("0s" disables;
//	      these three only when the key is absent), record_stereo true
//	      (only when the key is absent)
//	core: allowed_roots [] (only scripts_dir and sounds_dir)
//	event_socket: listen "127.0.0.1:8021"; password has no default (required)
//	      and must not be a well-known one (ShippedEventSocketPassword,
//	      "ClueCon") when listen is beyond loopback; acl [] (everyone who
//	      reaches the port), max_connections 64, max_unauthenticated 16,
//	      auth_timeout 5s, auth_failures 5 per auth_failure_window 5m, then
//	      ban_time 15m (auth_failures = 0 disables the ban; these three only
//	      when the key is absent)
//	cdr: csv true (only when the key is absent), rotate "none"
//	http: enabled true (only when the key is absent), listen
//	      "127.0.0.1:8080", service_level_seconds 20; beyond loopback token
//	      or username+password are required (see HTTP)
//	store: driver "sqlite"; dsn "" (required with driver "postgres")
//	cluster: node_id "single_box" (no cluster), lease_ttl 3s,
//	      renew_interval lease_ttl/3
//	core: max_sessions 1000, sessions_per_second 200, overload_delay 100ms
//	      (only when the key is absent: 0 disables)
//	profile: listen_ip "0.0.0.0", transports ["udp", "tcp"]; port and context
//	      are required (port 0 asks the OS for a free port, for tests);
//	      acl [] (everyone), calls_per_second_per_ip 30, max_calls_per_ip
//	      500, tcp_max_connections 2048, tcp_max_connections_per_ip 256,
//	      tcp_idle_timeout 1h, tcp_message_timeout 32s (only when the key
//	      is absent: 0 disables)
//	dialplan condition: break "on-false"
//	callcenter settings: cc-instance-id "single_box", agent-originate-timeout
//	      60 (0 also means 60, as in mod_callcenter)
//	queue (mod_callcenter's code defaults, reference §4.1): strategy
//	      "longest-idle-agent", time-base-score "queue",
//	      max-wait-time-with-no-agent-time-reached 5,
//	      tier-rule-no-agent-no-wait true, discard-abandoned-after 60,
//	      skip-agents-with-external-calls true, agent-no-answer-status
//	      "On Break"; other numbers 0 and booleans false.
//	      ring-progressively-delay stays as written (0 is shown by
//	      `queue list`); EffectiveRingProgressivelyDelay gives the 10 s that 0
//	      means.
//	      service-level-threshold 20, short-abandon-threshold 5.
//	callcenter settings: queue-log true
//	agent: type "callback", numbers 0; status has no default: when absent
//	      the stored status stands across restarts ("Logged Out" for an
//	      agent created by this load), when written it is re-applied
//	tier: level 1 and position 1 when absent (an explicit 0 is kept)
//
// Queue's pointer fields exist to tell "absent" from false/0 while decoding;
// after Load they are never nil, so consumers dereference them directly.
// Queue.SetDefaults and Agent.SetDefaults apply the same defaults to values
// built in code. Maps (Vars, user Params and Variables) are never nil either.
package config

import "time"

// Config is the whole config.toml after $${var} expansion and validation.
type Config struct {
	// Vars are the preprocessor variables ([vars]); $${name} in any string of
	// the file is replaced by the value before decoding, as FreeSWITCH does
	// with vars.xml.
	Vars map[string]string `toml:"vars"`

	Core        Core        `toml:"core"`
	Media       Media       `toml:"media"`
	EventSocket EventSocket `toml:"event_socket"`
	SIPSecurity SIPSecurity `toml:"sip_security"`
	Profiles    []Profile   `toml:"profile"`
	Directory   Directory   `toml:"directory"`
	Dialplan    Dialplan    `toml:"dialplan"`
	Callcenter  Callcenter  `toml:"callcenter"`
	CDR         CDR         `toml:"cdr"`
	HTTP        HTTP        `toml:"http"`
	Store       Store       `toml:"store"`
	Cluster     Cluster     `toml:"cluster"`

	// File is the path the configuration was read from ("(embedded)" for the
	// copy compiled into the binary).
	File string `toml:"-"`

	// lay knows the line of every key, for problems found after loading
	// (ErrorAt).
	lay *layout
}

// Core holds process-wide settings.
type Core struct {
	// Hostname is reported by `status`, `show registrations` and events;
	// empty means os.Hostname().
	Hostname string `toml:"hostname"`
	// DataDir holds the SQLite database (registrations, ACD state), the
	// lock that keeps a second ccpbx off it, and the CDR CSV files.
	DataDir string `toml:"data_dir"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `toml:"log_format"`
	// ScriptsDir is where the lua application looks for relative script names.
	ScriptsDir string `toml:"scripts_dir"`
	// SoundsDir is where sound paths are looked up on disk before the
	// embedded copies (normally "$${sounds_dir}").
	SoundsDir string `toml:"sounds_dir"`
	// AllowedRoots are extra folders that lua scripts, playback, music on
	// hold and other file names may reach by absolute path. Nothing outside
	// scripts_dir, sounds_dir and these folders is ever opened for a call,
	// a script or an API command; ".." is always refused.
	AllowedRoots []string `toml:"allowed_roots"`
	// RecordingsDir is where call recordings are written (record-template,
	// record_session, uuid_record; FreeSWITCH's $${recordings_dir}):
	// relative names go inside it, absolute names must lie below it.
	RecordingsDir string `toml:"recordings_dir"`
	// UserAgent is the User-Agent header of every SIP request and
	// response (sofia's user-agent-string); default "ccpbx", without a
	// version, which would tell a scanner what to try.
	UserAgent string `toml:"user_agent"`
	// MaxSessions caps the SIP call legs up at once, both directions
	// (FreeSWITCH's max-sessions); SessionsPerSecond caps new inbound calls
	// per second over all profiles (sessions-per-second). Calls over
	// either get 503 with Retry-After. 0 means no cap.
	MaxSessions       int `toml:"max_sessions"`
	SessionsPerSecond int `toml:"sessions_per_second"`
	// OverloadDelay: when requests wait longer than this (their handling
	// time, or goroutines' wait for a CPU; measured every 100 ms), new
	// INVITEs and REGISTERs are answered 503 with Retry-After before any
	// digest or database work, until the delay falls again. "0s" disables
	// shedding.
	OverloadDelay Duration `toml:"overload_delay"`
}

// Media configures RTP.
type Media struct {
	RTPStart int `toml:"rtp_start"`
	RTPEnd   int `toml:"rtp_end"`
	// MediaTimeout hangs up a call that received no RTP for this long
	// (0 disables). Written as a Go duration string ("60s").
	MediaTimeout Duration `toml:"media_timeout"`
	// MediaHoldTimeout replaces MediaTimeout while a call is on hold
	// (FreeSWITCH's rtp-hold-timeout-sec; "0s" disables).
	MediaHoldTimeout Duration `toml:"media_hold_timeout"`
	// RTPProbation is how many consecutive packets an RTP source that is
	// neither the SDP address nor the SIP source must send before a call
	// learns it (README "RTP source policy").
	RTPProbation int `toml:"rtp_probation"`
	// MediaConsent says when a call may be sent RTP: after its ACK or its
	// first RTP packet ("ack-or-rtp"), only after the ACK ("ack"), only
	// after RTP ("rtp"), or at once ("none", not for the Internet).
	MediaConsent string `toml:"media_consent"`
	// RecordStereo makes recordings two-channel WAV: the recorded channel
	// (the caller) left, what it hears (the agent) right; false mixes both
	// into one. A channel's RECORD_STEREO variable overrides it.
	RecordStereo bool `toml:"record_stereo"`
}

// Media consent policies (Media.MediaConsent).
const (
	ConsentAckOrRTP = "ack-or-rtp"
	ConsentAck      = "ack"
	ConsentRTP      = "rtp"
	ConsentNone     = "none"
)

// CDR configures call detail records. Records always go to the database
// (`cdr list`); these settings are about the mod_cdr_csv-style file
// <data_dir>/cdr-csv/Master.csv.
type CDR struct {
	// CSV writes Master.csv (default true).
	CSV bool `toml:"csv"`
	// Rotate is "none" (one growing Master.csv) or "daily": the first
	// record of a new local day renames the file to Master.csv.YYYY-MM-DD
	// (the day it holds) and starts a new one.
	Rotate string `toml:"rotate"`
}

// Store chooses the database ([store]): SQLite in data_dir (the default,
// one box) or a PostgreSQL server.
type Store struct {
	// Driver is "sqlite" or "postgres".
	Driver string `toml:"driver"`
	// DSN is PostgreSQL's connection string, as a URL
	// (postgres://user:pass@host1:5432,host2:5432/db?target_session_attrs=read-write)
	// or keyword/value pairs (host=host1,host2 dbname=db …). Required with
	// postgres, refused with sqlite.
	DSN string `toml:"dsn"`
}

// Cluster makes this process one node of a ccpbx cluster ([cluster]):
// agents and tiers shared in PostgreSQL, an agent offered only through an
// atomic claim, node liveness by lease. NodeID "single_box" (the default)
// means no cluster: nothing of it runs and every listing, event and column
// stays as on a single box.
type Cluster struct {
	// NodeID names this node in members.instance_id and serving_system,
	// CC-Agent-System, claims and `cluster status`; unique per node.
	NodeID string `toml:"node_id"`
	// LeaseTTL: a node whose lease was not renewed for this long is dead
	// to the others (after the grace rule), and a node that could not
	// renew its own for nearly this long fences itself.
	LeaseTTL Duration `toml:"lease_ttl"`
	// RenewInterval is how often the lease is renewed (default lease_ttl/3).
	RenewInterval Duration `toml:"renew_interval"`
}

// Enabled reports whether this process is a cluster node.
func (c Cluster) Enabled() bool { return c.NodeID != "" && c.NodeID != DefaultNodeID }

// Store drivers.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// CDR rotation settings.
const (
	CDRRotateNone  = "none"
	CDRRotateDaily = "daily"
)

// EventSocket configures the FreeSWITCH-compatible event socket.
type EventSocket struct {
	Listen   string `toml:"listen"`
	Password string `toml:"password"`
	// ACL lists the networks (CIDRs, or single addresses) that may connect,
	// as FreeSWITCH's apply-inbound-acl; a connection from elsewhere is
	// closed before a byte is read. Empty allows every address that can
	// reach the listener.
	ACL []string `toml:"acl"`
	// MaxConnections caps connected clients; MaxUnauthenticated caps those
	// that have not logged in yet. Connections beyond a cap are closed at
	// once.
	MaxConnections     int `toml:"max_connections"`
	MaxUnauthenticated int `toml:"max_unauthenticated"`
	// AuthTimeout is how long a client may take to log in.
	AuthTimeout Duration `toml:"auth_timeout"`
	// AuthFailures wrong passwords from one address within
	// AuthFailureWindow ban it for BanTime: its connections are closed on
	// accept. 0 disables the ban.
	AuthFailures      int      `toml:"auth_failures"`
	AuthFailureWindow Duration `toml:"auth_failure_window"`
	BanTime           Duration `toml:"ban_time"`
	// BanAllow lists networks never banned (CIDRs or addresses). Default
	// loopback, so `ccpbx cli` on this machine cannot be locked out; the
	// password still has to be right.
	BanAllow []string `toml:"ban_allow"`
}

// SIPSecurity protects digest authentication on every SIP profile (one
// ban table for all profiles: a source guessing on 5060 and 5080 is one
// attacker). README "Security".
type SIPSecurity struct {
	// AuthFailures wrong passwords from one address within
	// AuthFailureWindow ban it for BanTime: its requests are dropped
	// unanswered. 0 disables banning.
	AuthFailures int `toml:"auth_failures"`
	// UserAuthFailures wrong passwords for one account (from any
	// addresses) within the window make every further failing source for
	// it banned at once; the account's owner, with the right password, is
	// not locked out. 0 disables the per-account count.
	UserAuthFailures  int      `toml:"user_auth_failures"`
	AuthFailureWindow Duration `toml:"auth_failure_window"`
	BanTime           Duration `toml:"ban_time"`
	// BanAllow lists networks never banned (CIDRs or addresses); empty by
	// default.
	BanAllow []string `toml:"ban_allow"`
	// NonceTTL is how long a digest nonce is accepted (sofia's
	// nonce-ttl); an older one is answered stale=true.
	NonceTTL Duration `toml:"nonce_ttl"`
	// AllowRFC2069 accepts digest responses without qop, which carry no
	// nonce count and so cannot be told from a replay. Default false.
	AllowRFC2069 bool `toml:"allow_rfc2069"`
}

// Profile is one SIP listener (a sofia profile).
type Profile struct {
	Name string `toml:"name"`
	// ListenIP is the address the sockets bind to ("0.0.0.0" = all).
	ListenIP string `toml:"listen_ip"`
	// AdvertiseIP goes into Contact, Via and SDP; empty = auto-detected.
	AdvertiseIP string `toml:"advertise_ip"`
	Port        int    `toml:"port"`
	// Transports lists "udp", "tcp" and/or "tls". UDP and TCP share Port;
	// TLS listens on TLSPort.
	Transports []string `toml:"transports"`
	// TLSPort is the SIP over TLS port when Transports lists "tls";
	// FreeSWITCH's tls-sip-port. Default Port+1 (5061 for 5060); 0 with
	// Port 0 picks an ephemeral one (tests).
	TLSPort int `toml:"tls_port"`
	// TLSCertFile and TLSKeyFile are the PEM certificate (chain) and
	// private key of the TLS listener, read and checked at start. TLS 1.2
	// is the minimum.
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
	// TLSVerifyPolicy is FreeSWITCH's tls-verify-policy, of which ccpbx
	// has "none" (default: phones authenticate with digest only) and "in"
	// (a connecting phone must present a certificate signed by a CA in
	// TLSCAFile, PEM).
	TLSVerifyPolicy string `toml:"tls_verify_policy"`
	TLSCAFile       string `toml:"tls_ca_file"`
	// Context is the dialplan context calls from this profile run in.
	Context string `toml:"context"`
	// Register accepts REGISTER from directory users (digest auth).
	Register bool `toml:"register"`
	// AuthCalls demands digest auth (407) for INVITEs on this profile.
	AuthCalls bool `toml:"auth_calls"`
	// Realm is the digest realm; empty = the advertised address.
	Realm string `toml:"realm"`
	// AuthAlgorithms are the digest algorithms challenged, one challenge
	// each, in this order: "MD5", "SHA-256". Default ["MD5"], because
	// deployed softphones (baresip/libre 1.x, older pjsip) give up on a
	// 401 that also offers an algorithm they lack, instead of picking the
	// one they know.
	AuthAlgorithms []string `toml:"auth_algorithms"`
	// TimerT1X64 is how long a 200 OK we sent waits for its ACK (Timer
	// H, 64*T1) before the call is hung up with a BYE; FreeSWITCH's
	// timer-T1X64. Default 32 s.
	TimerT1X64 Duration `toml:"timer_t1x64"`
	// RegisterTarget says where requests to a phone registered on this
	// profile go: "auto" (the Contact, unless NAT is detected: then the
	// REGISTER's source), "source" or "contact" (sip/target.go).
	RegisterTarget string `toml:"register_target"`
	// SessionTimeout turns on RFC 4028 session timers for calls this
	// profile answers: a caller that supports them must refresh the
	// session (re-INVITE or UPDATE) within this interval or the call is
	// hung up; FreeSWITCH's session-timeout. 0 (the default) = off; at
	// least 90s (RFC 4028's smallest Min-SE) when set.
	SessionTimeout Duration `toml:"session_timeout"`
	// RTPSecureMedia is the SRTP (SDES) policy of calls on this profile,
	// FreeSWITCH's rtp_secure_media: "mandatory" (offer RTP/SAVP, refuse
	// plain offers with 488), "optional" (offer RTP/AVP with a=crypto,
	// accept both), "forbidden" (plain only, refuse RTP/SAVP). Empty (the
	// default): offer plain, answer an SRTP offer with SRTP. A user's
	// variable rtp_secure_media overrides it for that user's calls.
	RTPSecureMedia string `toml:"rtp_secure_media"`

	// Limits on what one source may ask of the profile (README "Limits and
	// overload"). ACL lists the networks (CIDRs or addresses) whose
	// requests the profile serves: a request from elsewhere is answered
	// 403 and nothing else is done. Empty serves everyone. On a trunk
	// profile (no auth_calls) this is what sofia's apply-inbound-acl does
	// to an INVITE; unlike sofia it covers every method, and a profile
	// with auth_calls does not fall back to digest for outsiders.
	ACL []string `toml:"acl"`
	// CallsPerSecondPerIP caps new calls (INVITEs) from one source address;
	// MaxCallsPerIP caps its calls up at once. Calls over either get 503
	// with Retry-After. 0 means no cap (defaults 30 and 500: a real trunk).
	CallsPerSecondPerIP int `toml:"calls_per_second_per_ip"`
	MaxCallsPerIP       int `toml:"max_calls_per_ip"`
	// SIP over TCP: TCPMaxConnections caps open connections in all,
	// TCPMaxConnectionsPerIP from one address (more are closed on accept);
	// a connection that sends nothing for TCPIdleTimeout is closed, and so
	// is one whose message (or first message) is not complete
	// TCPMessageTimeout after it began.
	TCPMaxConnections      int      `toml:"tcp_max_connections"`
	TCPMaxConnectionsPerIP int      `toml:"tcp_max_connections_per_ip"`
	TCPIdleTimeout         Duration `toml:"tcp_idle_timeout"`
	TCPMessageTimeout      Duration `toml:"tcp_message_timeout"`
}

// SecureMediaValues are the accepted spellings of rtp_secure_media.
var SecureMediaValues = []string{"mandatory", "optional", "forbidden", "true", "false"}

// Registration targets (Profile.RegisterTarget).
const (
	RegisterTargetAuto    = "auto"
	RegisterTargetSource  = "source"
	RegisterTargetContact = "contact"
)

// Directory is the user directory (conf/directory/default/*.xml).
type Directory struct {
	Domain string `toml:"domain"`
	Users  []User `toml:"user"`
}

// User is one directory entry: params (password, vm-password) and channel
// variables (effective_caller_id_name, user_context …).
type User struct {
	ID        string            `toml:"id"`
	Params    map[string]string `toml:"params"`
	Variables map[string]string `toml:"variables"`
}

// Password returns the user's "password" param.
func (u User) Password() string { return u.Params["password"] }

// Dialplan is the set of XML-dialplan-style contexts.
type Dialplan struct {
	Contexts []Context `toml:"context"`
}

// Context is a named list of extensions, tried in order.
type Context struct {
	Name       string      `toml:"name"`
	Extensions []Extension `toml:"extension"`
}

// Extension is a named list of conditions; all must match for its actions
// to run. With Continue the search goes on to the next extension.
type Extension struct {
	Name       string      `toml:"name"`
	Continue   bool        `toml:"continue"`
	Conditions []Condition `toml:"condition"`
}

// Condition tests Field against the regular expression Expression. Actions
// run when it (and all before it) match; AntiActions when it does not.
// Break is on-false (default), on-true, always or never.
type Condition struct {
	Field       string   `toml:"field"`
	Expression  string   `toml:"expression"`
	Break       string   `toml:"break"`
	Actions     []string `toml:"actions"`
	AntiActions []string `toml:"anti_actions"`
}

// Callcenter is callcenter.conf: settings, queues, agents and tiers, with
// FreeSWITCH's parameter names.
type Callcenter struct {
	Settings CallcenterSettings `toml:"settings"`
	Queues   []Queue            `toml:"queue"`
	Agents   []Agent            `toml:"agent"`
	Tiers    []Tier             `toml:"tier"`
}

// CallcenterSettings is the <settings> block.
type CallcenterSettings struct {
	InstanceID            string `toml:"cc-instance-id"`
	ReserveAgents         bool   `toml:"reserve-agents"`
	TruncateAgentsOnLoad  bool   `toml:"truncate-agents-on-load"`
	TruncateTiersOnLoad   bool   `toml:"truncate-tiers-on-load"`
	AgentOriginateTimeout int    `toml:"agent-originate-timeout"`
	// QueueLog writes an Asterisk-format <data_dir>/queue_log (ENTERQUEUE,
	// CONNECT, COMPLETECALLER …) for QueueMetrics-style reporting tools.
	// Default true; never nil after Load.
	QueueLog *bool `toml:"queue-log"`
}

// Queue is one <queue>. Pointer fields distinguish "not set" from the zero
// value so defaults follow mod_callcenter's code defaults.
type Queue struct {
	Name                              string      `toml:"name"`
	Strategy                          Strategy    `toml:"strategy"`
	MOHSound                          string      `toml:"moh-sound"`
	AnnounceSound                     string      `toml:"announce-sound"`
	AnnounceFrequency                 int         `toml:"announce-frequency"`
	RecordTemplate                    string      `toml:"record-template"`
	TimeBaseScore                     string      `toml:"time-base-score"`
	MaxWaitTime                       int         `toml:"max-wait-time"`
	MaxWaitTimeWithNoAgent            int         `toml:"max-wait-time-with-no-agent"`
	MaxWaitTimeWithNoAgentTimeReached *int        `toml:"max-wait-time-with-no-agent-time-reached"`
	TierRulesApply                    bool        `toml:"tier-rules-apply"`
	TierRuleWaitSecond                int         `toml:"tier-rule-wait-second"`
	TierRuleWaitMultiplyLevel         bool        `toml:"tier-rule-wait-multiply-level"`
	TierRuleNoAgentNoWait             *bool       `toml:"tier-rule-no-agent-no-wait"`
	DiscardAbandonedAfter             *int        `toml:"discard-abandoned-after"`
	AbandonedResumeAllowed            bool        `toml:"abandoned-resume-allowed"`
	RingProgressivelyDelay            int         `toml:"ring-progressively-delay"`
	AgentNoAnswerStatus               AgentStatus `toml:"agent-no-answer-status"`
	SkipAgentsWithExternalCalls       *bool       `toml:"skip-agents-with-external-calls"`
	// ServiceLevelThreshold (seconds, default 20): calls answered within it
	// count toward the queue's service level. Not a FreeSWITCH parameter.
	ServiceLevelThreshold *int `toml:"service-level-threshold"`
	// ShortAbandonThreshold (seconds, default 5): callers leaving within it
	// are short abandons (misdials, instant hang-ups), counted apart and
	// left out of the service level. Not a FreeSWITCH parameter.
	ShortAbandonThreshold *int `toml:"short-abandon-threshold"`
}

// Agent is one <agent>.
type Agent struct {
	Name    string    `toml:"name"`
	Type    AgentType `toml:"type"`
	Contact string    `toml:"contact"`
	// Status, when written, is re-applied at every start and reload; empty
	// (absent) keeps the stored status.
	Status            AgentStatus `toml:"status"`
	MaxNoAnswer       int         `toml:"max-no-answer"`
	WrapUpTime        int         `toml:"wrap-up-time"`
	RejectDelayTime   int         `toml:"reject-delay-time"`
	BusyDelayTime     int         `toml:"busy-delay-time"`
	NoAnswerDelayTime int         `toml:"no-answer-delay-time"`
}

// Tier is one <tier>.
type Tier struct {
	Agent    string `toml:"agent"`
	Queue    string `toml:"queue"`
	Level    int    `toml:"level"`
	Position int    `toml:"position"`
}

// Duration is a time.Duration written as a Go duration string in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }
