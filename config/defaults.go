package config

import "time"

// Defaults for what the file leaves out, applied after validation.
const (
	DefaultDataDir           = "data"
	DefaultScriptsDir        = "scripts"
	DefaultSoundsDir         = "sounds"
	DefaultRecordingsDir     = "recordings"
	DefaultRecordStereo      = true
	DefaultLogLevel          = "info"
	DefaultLogFormat         = "text"
	DefaultRTPStart          = 16384
	DefaultRTPEnd            = 32767
	DefaultMediaTimeout      = 60 * time.Second
	DefaultMediaHoldTimeout  = 30 * time.Minute // FreeSWITCH's shipped rtp-hold-timeout-sec
	DefaultRTPProbation      = 4                // Asterisk's strictrtp probation
	DefaultMediaConsent      = ConsentAckOrRTP
	DefaultTimerT1X64        = 32 * time.Second // 64*T1, RFC 3261 Timer H
	DefaultEventSocketListen = "127.0.0.1:8021"
	DefaultListenIP          = "0.0.0.0"
	DefaultConditionBreak    = "on-false"

	// Limits (README "Limits and overload").
	DefaultMaxSessions       = 1000 // FreeSWITCH's shipped max-sessions
	DefaultSessionsPerSecond = 200
	DefaultOverloadDelay     = 100 * time.Millisecond
	// DefaultNodeID is [cluster] node_id when absent: no cluster.
	DefaultNodeID                 = DefaultInstanceID
	DefaultLeaseTTL               = 3 * time.Second
	DefaultCallsPerSecondPerIP    = 30
	DefaultMaxCallsPerIP          = 500
	DefaultTCPMaxConnections      = 2048
	DefaultTCPMaxConnectionsPerIP = 256
	DefaultTCPIdleTimeout         = time.Hour
	DefaultTCPMessageTimeout      = 32 * time.Second // 64·T1, Timer B/F

	DefaultEventSocketMaxConnections     = 64
	DefaultEventSocketMaxUnauthenticated = 16
	DefaultEventSocketAuthTimeout        = 5 * time.Second
	DefaultEventSocketAuthFailures       = 5
	DefaultEventSocketAuthFailureWindow  = 5 * time.Minute
	DefaultEventSocketBanTime            = 15 * time.Minute

	DefaultSIPAuthFailures      = 10
	DefaultSIPUserAuthFailures  = 20
	DefaultSIPAuthFailureWindow = 5 * time.Minute
	DefaultSIPBanTime           = 15 * time.Minute
	DefaultNonceTTL             = 60 * time.Second
	DefaultUserAgent            = "ccpbx"
)

// DefaultEventSocketBanAllow are never banned by the event socket:
// loopback, so a local `ccpbx cli` cannot be locked out by someone else's
// guesses (with the shipped, published password a ban on loopback would
// protect nothing anyway).
var DefaultEventSocketBanAllow = []string{"127.0.0.0/8", "::1/128"}

// ShippedEventSocketPassword is the password in the shipped config.toml.
// Like FreeSWITCH's "ClueCon" it is public, so a configuration that listens
// beyond loopback with either is refused.
const ShippedEventSocketPassword = "ccpbx-esl-7b1d"

// WellKnownEventSocketPasswords are refused on a listener beyond loopback.
var WellKnownEventSocketPasswords = []string{ShippedEventSocketPassword, "ClueCon"}

// DefaultTransports are the transports of a profile that lists none.
var DefaultTransports = []string{"udp", "tcp"}

// Digest algorithm names as challenges spell them.
const (
	AuthMD5    = "MD5"
	AuthSHA256 = "SHA-256"
)

// DefaultAuthAlgorithms are the digest algorithms a profile challenges with
// when it names none (see Profile.AuthAlgorithms); the registrar uses them
// too when built without a configuration.
var DefaultAuthAlgorithms = []string{AuthMD5}

// applyDefaults fills what the file left out. Most defaults replace a zero
// value; the few where zero is meaningful (media_timeout "0s" disables it, a
// tier may sit at level 0, rtp ports) are applied only to keys the file did
// not write, which defined records.
func applyDefaults(c *Config, defined map[string]bool) {
	co := &c.Core
	co.DataDir = orDefault(co.DataDir, DefaultDataDir)
	co.ScriptsDir = orDefault(co.ScriptsDir, DefaultScriptsDir)
	co.SoundsDir = orDefault(co.SoundsDir, DefaultSoundsDir)
	co.RecordingsDir = orDefault(co.RecordingsDir, DefaultRecordingsDir)
	co.LogLevel = orDefault(co.LogLevel, DefaultLogLevel)
	co.LogFormat = orDefault(co.LogFormat, DefaultLogFormat)
	co.UserAgent = orDefault(co.UserAgent, DefaultUserAgent)
	if !defined["core.max_sessions"] {
		co.MaxSessions = DefaultMaxSessions
	}
	if !defined["core.sessions_per_second"] {
		co.SessionsPerSecond = DefaultSessionsPerSecond
	}
	if !defined["core.overload_delay"] {
		co.OverloadDelay.Duration = DefaultOverloadDelay
	}

	if !defined["media.rtp_start"] {
		c.Media.RTPStart = DefaultRTPStart
	}
	if !defined["media.rtp_end"] {
		c.Media.RTPEnd = DefaultRTPEnd
	}
	if !defined["media.media_timeout"] {
		c.Media.MediaTimeout.Duration = DefaultMediaTimeout
	}
	if !defined["media.media_hold_timeout"] {
		c.Media.MediaHoldTimeout.Duration = DefaultMediaHoldTimeout
	}
	if !defined["media.record_stereo"] {
		c.Media.RecordStereo = DefaultRecordStereo
	}
	if c.Media.RTPProbation == 0 {
		c.Media.RTPProbation = DefaultRTPProbation
	}
	c.Media.MediaConsent = orDefault(c.Media.MediaConsent, DefaultMediaConsent)

	es := &c.EventSocket
	es.Listen = orDefault(es.Listen, DefaultEventSocketListen)
	if es.MaxConnections == 0 {
		es.MaxConnections = DefaultEventSocketMaxConnections
	}
	if es.MaxUnauthenticated == 0 {
		es.MaxUnauthenticated = min(DefaultEventSocketMaxUnauthenticated, es.MaxConnections)
	}
	if es.AuthTimeout.Duration == 0 {
		es.AuthTimeout.Duration = DefaultEventSocketAuthTimeout
	}
	if !defined["event_socket.auth_failures"] {
		es.AuthFailures = DefaultEventSocketAuthFailures
	}
	if es.AuthFailureWindow.Duration == 0 {
		es.AuthFailureWindow.Duration = DefaultEventSocketAuthFailureWindow
	}
	if es.BanTime.Duration == 0 {
		es.BanTime.Duration = DefaultEventSocketBanTime
	}
	if !defined["event_socket.ban_allow"] {
		es.BanAllow = append([]string(nil), DefaultEventSocketBanAllow...)
	}

	ss := &c.SIPSecurity
	if !defined["sip_security.auth_failures"] {
		ss.AuthFailures = DefaultSIPAuthFailures
	}
	if !defined["sip_security.user_auth_failures"] {
		ss.UserAuthFailures = DefaultSIPUserAuthFailures
	}
	if ss.AuthFailureWindow.Duration == 0 {
		ss.AuthFailureWindow.Duration = DefaultSIPAuthFailureWindow
	}
	if ss.BanTime.Duration == 0 {
		ss.BanTime.Duration = DefaultSIPBanTime
	}
	if ss.NonceTTL.Duration == 0 {
		ss.NonceTTL.Duration = DefaultNonceTTL
	}

	if !defined["cdr.csv"] {
		c.CDR.CSV = true
	}
	c.CDR.Rotate = orDefault(c.CDR.Rotate, CDRRotateNone)
	applyHTTPDefaults(&c.HTTP)
	c.Store.Driver = orDefault(c.Store.Driver, StoreSQLite)
	c.Cluster.NodeID = orDefault(c.Cluster.NodeID, DefaultNodeID)
	if c.Cluster.LeaseTTL.Duration == 0 {
		c.Cluster.LeaseTTL.Duration = DefaultLeaseTTL
	}
	if c.Cluster.RenewInterval.Duration == 0 {
		c.Cluster.RenewInterval.Duration = c.Cluster.LeaseTTL.Duration / 3
	}

	for i := range c.Profiles {
		p := &c.Profiles[i]
		p.ListenIP = orDefault(p.ListenIP, DefaultListenIP)
		if len(p.AuthAlgorithms) == 0 {
			p.AuthAlgorithms = append([]string(nil), DefaultAuthAlgorithms...)
		}
		if len(p.Transports) == 0 {
			p.Transports = append([]string(nil), DefaultTransports...)
		}
		if p.TimerT1X64.Duration == 0 {
			p.TimerT1X64.Duration = DefaultTimerT1X64
		}
		if p.TLSPort == 0 && p.Port != 0 && hasTransport(p.Transports, "tls") {
			p.TLSPort = p.Port + 1 // 5061 for 5060, as sofia's tls-sip-port
		}
		p.RegisterTarget = orDefault(p.RegisterTarget, RegisterTargetAuto)
		k := indexKey("profile", i)
		for _, d := range []struct {
			key string
			v   *int
			def int
		}{
			{"calls_per_second_per_ip", &p.CallsPerSecondPerIP, DefaultCallsPerSecondPerIP},
			{"max_calls_per_ip", &p.MaxCallsPerIP, DefaultMaxCallsPerIP},
			{"tcp_max_connections", &p.TCPMaxConnections, DefaultTCPMaxConnections},
			{"tcp_max_connections_per_ip", &p.TCPMaxConnectionsPerIP, DefaultTCPMaxConnectionsPerIP},
		} {
			if !defined[joinKey(k, d.key)] {
				*d.v = d.def
			}
		}
		if !defined[joinKey(k, "tcp_idle_timeout")] {
			p.TCPIdleTimeout.Duration = DefaultTCPIdleTimeout
		}
		if !defined[joinKey(k, "tcp_message_timeout")] {
			p.TCPMessageTimeout.Duration = DefaultTCPMessageTimeout
		}
	}
	if c.Vars == nil {
		c.Vars = map[string]string{}
	}
	for i := range c.Directory.Users {
		u := &c.Directory.Users[i]
		if u.Params == nil {
			u.Params = map[string]string{}
		}
		if u.Variables == nil {
			u.Variables = map[string]string{}
		}
	}
	for i := range c.Dialplan.Contexts {
		for j := range c.Dialplan.Contexts[i].Extensions {
			conds := c.Dialplan.Contexts[i].Extensions[j].Conditions
			for k := range conds {
				conds[k].Break = orDefault(conds[k].Break, DefaultConditionBreak)
			}
		}
	}

	cc := &c.Callcenter
	cc.Settings.InstanceID = orDefault(cc.Settings.InstanceID, DefaultInstanceID)
	if cc.Settings.AgentOriginateTimeout == 0 {
		cc.Settings.AgentOriginateTimeout = DefaultAgentOriginateTimeout
	}
	if cc.Settings.QueueLog == nil {
		cc.Settings.QueueLog = ptr(DefaultQueueLog)
	}
	for i := range cc.Queues {
		cc.Queues[i].SetDefaults()
	}
	for i := range cc.Agents {
		cc.Agents[i].SetDefaults()
	}
	for i := range cc.Tiers {
		p := indexKey("callcenter.tier", i)
		if !defined[joinKey(p, "level")] {
			cc.Tiers[i].Level = DefaultTierLevel
		}
		if !defined[joinKey(p, "position")] {
			cc.Tiers[i].Position = DefaultTierPosition
		}
	}
}
