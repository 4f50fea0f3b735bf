package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"ccpbx"
	"ccpbx/internal/pbxtest"
)

// TestMain fails the package if a test leaves a goroutine running: loading
// a configuration starts none.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// TestShippedConfigMatchesArticle checks config.toml against the reference
// article's 1001.xml/1002.xml, sip profiles, dialplans and callcenter.conf.
func TestShippedConfigMatchesArticle(t *testing.T) {
	c, err := Load("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "../config.toml" {
		t.Errorf("File = %q", c.File)
	}

	for _, id := range []string{"1001", "1002"} {
		u := c.Directory.User(id)
		if u == nil {
			t.Fatalf("no user %s", id)
		}
		if u.Password() != "1234" {
			t.Errorf("user %s password = %q, want 1234 ($${default_password})", id, u.Password())
		}
		wantParams := map[string]string{"password": "1234", "vm-password": id}
		if !reflect.DeepEqual(u.Params, wantParams) {
			t.Errorf("user %s params = %v, want %v", id, u.Params, wantParams)
		}
		wantVars := map[string]string{
			"toll_allow":                 "domestic,local",
			"accountcode":                id,
			"user_context":               "default",
			"effective_caller_id_name":   "Extension " + id,
			"effective_caller_id_number": id,
			"outbound_caller_id_name":    "FreeSWITCH",
			"outbound_caller_id_number":  "0000000000",
		}
		if !reflect.DeepEqual(u.Variables, wantVars) {
			t.Errorf("user %s variables = %v, want %v", id, u.Variables, wantVars)
		}
	}
	if len(c.Directory.Users) != 2 {
		t.Errorf("%d users, want 2", len(c.Directory.Users))
	}

	wantProfiles := []Profile{
		{Name: "internal", ListenIP: "0.0.0.0", Port: 5060, Transports: []string{"udp", "tcp"}, Context: "default", Register: true, AuthCalls: true, AuthAlgorithms: []string{"MD5"},
			CallsPerSecondPerIP: 10, MaxCallsPerIP: 100, TCPMaxConnections: 2048, TCPMaxConnectionsPerIP: 256,
			TCPIdleTimeout: Duration{time.Hour}, TCPMessageTimeout: Duration{32 * time.Second},
			TimerT1X64: Duration{DefaultTimerT1X64}, RegisterTarget: RegisterTargetAuto},
		{Name: "blueivr", ListenIP: "0.0.0.0", Port: 5080, Transports: []string{"udp", "tcp"}, Context: "blueivr", AuthAlgorithms: []string{"MD5"},
			CallsPerSecondPerIP: 30, MaxCallsPerIP: 500, TCPMaxConnections: 2048, TCPMaxConnectionsPerIP: 256,
			TCPIdleTimeout: Duration{time.Hour}, TCPMessageTimeout: Duration{32 * time.Second},
			TimerT1X64: Duration{DefaultTimerT1X64}, RegisterTarget: RegisterTargetAuto},
	}
	if !reflect.DeepEqual(c.Profiles, wantProfiles) {
		t.Errorf("profiles =\n%+v\nwant\n%+v", c.Profiles, wantProfiles)
	}

	ext := func(name, expr string, actions ...string) Extension {
		return Extension{Name: name, Conditions: []Condition{{Field: "destination_number", Expression: expr, Break: "on-false", Actions: actions}}}
	}
	wantDialplan := Dialplan{Contexts: []Context{
		{Name: "blueivr", Extensions: []Extension{
			ext("Callcenter_TEST", "^(3000)$",
				"set continue_on_fail=true",
				"log ALERT ==== [3000] mod_callcenter TEST START ==== ",
				"lua callcenter.lua"),
		}},
		{Name: "default", Extensions: []Extension{
			ext("agent_login", "^300$",
				"log INFO Add Call center agent",
				"set continue_on_fail=true",
				"set res=${callcenter_config(agent set status ${caller_id_number} 'Available')}",
				"answer",
				"sleep 500",
				"playback sounds/ivr/common/ivr-you_are_now_logged_in.wav",
				"hangup NORMAL_CLEARING"),
			ext("agent_logoff", "^301$",
				"log INFO Delete Call center agent",
				"set continue_on_fail=true",
				"set res=${callcenter_config(agent set status ${caller_id_number} 'Logged Out')}",
				"log INFO Delete Call center agent",
				"answer",
				"sleep 500",
				"playback sounds/ivr/common/ivr-you_are_now_logged_out.wav",
				"hangup"),
			ext("Local_Extension", "^(10[0-9][0-9])$",
				"set call_timeout=30",
				"set hangup_after_bridge=true",
				"bridge user/$1"),
			ext("echo", "^9196$", "answer", "echo"),
		}},
	}}
	if !reflect.DeepEqual(c.Dialplan, wantDialplan) {
		t.Errorf("dialplan =\n%+v\nwant\n%+v", c.Dialplan, wantDialplan)
	}

	if c.Callcenter.Settings.InstanceID != "single_box" || c.Callcenter.Settings.AgentOriginateTimeout != 60 {
		t.Errorf("settings = %+v", c.Callcenter.Settings)
	}
	// Every parameter the article's <queue name="3000@default"> sets, and
	// mod_callcenter's code defaults for the rest.
	wantQueue := Queue{
		Name:                              "3000@default",
		Strategy:                          "round-robin",
		MOHSound:                          "sounds/ivr/common/music-on-hold.wav",
		TimeBaseScore:                     "system",
		MaxWaitTime:                       0,
		MaxWaitTimeWithNoAgent:            0,
		MaxWaitTimeWithNoAgentTimeReached: ptr(20),
		TierRulesApply:                    false,
		TierRuleWaitSecond:                300,
		TierRuleWaitMultiplyLevel:         true,
		TierRuleNoAgentNoWait:             ptr(false),
		DiscardAbandonedAfter:             ptr(60),
		AbandonedResumeAllowed:            false,
		AgentNoAnswerStatus:               "On Break",
		SkipAgentsWithExternalCalls:       ptr(true),
		ServiceLevelThreshold:             ptr(20),
		ShortAbandonThreshold:             ptr(5),
	}
	if len(c.Callcenter.Queues) != 1 || !reflect.DeepEqual(c.Callcenter.Queues[0], wantQueue) {
		t.Errorf("queues = %+v\nwant [%+v]", c.Callcenter.Queues, wantQueue)
	}
	var wantAgents []Agent
	for _, id := range []string{"1001", "1002"} {
		wantAgents = append(wantAgents, Agent{Name: id, Type: "callback", Contact: "[call_timeout=60]user/" + id,
			Status: "Logged Out", MaxNoAnswer: 3, WrapUpTime: 10, RejectDelayTime: 30, BusyDelayTime: 60, NoAnswerDelayTime: 10})
	}
	if !reflect.DeepEqual(c.Callcenter.Agents, wantAgents) {
		t.Errorf("agents = %+v\nwant %+v", c.Callcenter.Agents, wantAgents)
	}
	wantTiers := []Tier{{Agent: "1001", Queue: "3000@default", Level: 1, Position: 1}, {Agent: "1002", Queue: "3000@default", Level: 1, Position: 1}}
	if !reflect.DeepEqual(c.Callcenter.Tiers, wantTiers) {
		t.Errorf("tiers = %+v, want %+v", c.Callcenter.Tiers, wantTiers)
	}

	if c.EventSocket.Listen != "127.0.0.1:8021" || c.EventSocket.Password == "" {
		t.Errorf("event socket = %+v", c.EventSocket)
	}
	if c.Media != (Media{RTPStart: 16384, RTPEnd: 32767, MediaTimeout: Duration{60 * time.Second}, MediaHoldTimeout: Duration{30 * time.Minute}, RTPProbation: 4, MediaConsent: "ack-or-rtp", RecordStereo: true}) {
		t.Errorf("media = %+v", c.Media)
	}
	if !reflect.DeepEqual(c.Core, Core{DataDir: "data", LogLevel: "info", LogFormat: "text", ScriptsDir: "scripts", SoundsDir: "sounds", UserAgent: "ccpbx", RecordingsDir: "recordings",
		MaxSessions: 1000, SessionsPerSecond: 200, OverloadDelay: Duration{100 * time.Millisecond}}) {
		t.Errorf("core = %+v", c.Core)
	}
}

// TestEmbeddedIsShipped: the binary's copy loads to the same Config.
func TestEmbeddedIsShipped(t *testing.T) {
	disk, err := Load("../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	emb, err := Parse("../config.toml", ccpbx.ConfigTOML)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(disk, emb) {
		t.Error("embedded config differs from ../config.toml")
	}
}

// base is the smallest valid file; test cases append from line 9 on.
const base = `[event_socket]
password = "s"
[[profile]]
name = "internal"
port = 5060
context = "default"
[[dialplan.context]]
name = "default"
`

func TestMinimalDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+`
[[callcenter.queue]]
name = "q"
[[callcenter.agent]]
name = "a"
contact = "user/a"
[[callcenter.tier]]
agent = "a"
queue = "q"
[[callcenter.tier]]
agent = "a"
queue = "q2"
level = 0
position = 3
[[callcenter.queue]]
name = "q2"
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Core, Core{DataDir: "data", LogLevel: "info", LogFormat: "text", ScriptsDir: "scripts", SoundsDir: "sounds", UserAgent: "ccpbx", RecordingsDir: "recordings",
		MaxSessions: 1000, SessionsPerSecond: 200, OverloadDelay: Duration{100 * time.Millisecond}}) {
		t.Errorf("core = %+v", c.Core)
	}
	if c.Media != (Media{RTPStart: 16384, RTPEnd: 32767, MediaTimeout: Duration{time.Minute}, MediaHoldTimeout: Duration{30 * time.Minute}, RTPProbation: 4, MediaConsent: "ack-or-rtp", RecordStereo: true}) {
		t.Errorf("media = %+v", c.Media)
	}
	if c.EventSocket.Listen != "127.0.0.1:8021" {
		t.Errorf("listen = %q", c.EventSocket.Listen)
	}
	p := c.Profiles[0]
	if p.ListenIP != "0.0.0.0" || !reflect.DeepEqual(p.Transports, []string{"udp", "tcp"}) || p.Register || p.AuthCalls {
		t.Errorf("profile = %+v", p)
	}
	if p.CallsPerSecondPerIP != 30 || p.MaxCallsPerIP != 500 || p.TCPMaxConnections != 2048 || p.TCPMaxConnectionsPerIP != 256 ||
		p.TCPIdleTimeout.Duration != time.Hour || p.TCPMessageTimeout.Duration != 32*time.Second || len(p.ACL) != 0 {
		t.Errorf("profile limits = %+v", p)
	}
	if c.Vars == nil {
		t.Error("Vars is nil")
	}
	cc := c.Callcenter
	if cc.Settings.InstanceID != "single_box" || cc.Settings.AgentOriginateTimeout != 60 {
		t.Errorf("settings = %+v", cc.Settings)
	}
	want := Queue{Name: "q", Strategy: "longest-idle-agent", TimeBaseScore: "queue",
		MaxWaitTimeWithNoAgentTimeReached: ptr(5), TierRuleNoAgentNoWait: ptr(true), DiscardAbandonedAfter: ptr(60),
		AgentNoAnswerStatus: "On Break", SkipAgentsWithExternalCalls: ptr(true),
		ServiceLevelThreshold: ptr(20), ShortAbandonThreshold: ptr(5)}
	if !reflect.DeepEqual(cc.Queues[0], want) {
		t.Errorf("queue = %+v\nwant %+v", cc.Queues[0], want)
	}
	if q := cc.Queue("q2"); q == nil || q.RingProgressivelyDelay != 0 {
		t.Errorf("queue q2 = %+v", q)
	}
	// No status written: none is applied, so the stored one stands (§18-27).
	if a := cc.Agents[0]; a.Type != "callback" || a.Status != "" {
		t.Errorf("agent = %+v", a)
	}
	if cc.Tiers[0].Level != 1 || cc.Tiers[0].Position != 1 {
		t.Errorf("tier 0 = %+v, want level 1 position 1", cc.Tiers[0])
	}
	// Written values are kept, including level 0.
	if cc.Tiers[1].Level != 0 || cc.Tiers[1].Position != 3 {
		t.Errorf("tier 1 = %+v, want level 0 position 3", cc.Tiers[1])
	}
}

func TestCaseInsensitiveNamesAreCanonicalised(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+`
[core]
log_level = "DEBUG"
log_format = "JSON"
[[profile]]
name = "trunk"
port = 5080
context = "default"
transports = ["UDP"]
[[callcenter.queue]]
name = "q"
strategy = "Ring-All"
time-base-score = "System"
agent-no-answer-status = "on break"
[[callcenter.agent]]
name = "a"
type = "Callback"
contact = "user/a"
status = "available (on demand)"
[[callcenter.agent]]
name = "b"
type = "UUID-Standby"
status = "AVAILABLE"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Core.LogLevel != "debug" || c.Core.LogFormat != "json" {
		t.Errorf("core = %+v", c.Core)
	}
	if !reflect.DeepEqual(c.Profile("trunk").Transports, []string{"udp"}) {
		t.Errorf("transports = %v", c.Profile("trunk").Transports)
	}
	q := c.Callcenter.Queues[0]
	if q.Strategy != StrategyRingAll || q.TimeBaseScore != "system" || q.AgentNoAnswerStatus != StatusOnBreak {
		t.Errorf("queue = %+v", q)
	}
	a, b := c.Callcenter.Agent("a"), c.Callcenter.Agent("b")
	if a.Type != AgentTypeCallback || a.Status != StatusAvailableOnDemand || b.Type != AgentTypeUUIDStandby || b.Status != StatusAvailable {
		t.Errorf("agents = %+v %+v", a, b)
	}
}

// TestErrors: each broken file is refused with exactly these lines.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		file string // appended to base, so its first line is line 9
		want []string
	}{
		{"syntax", "[core\n", []string{
			`t.toml:9: invalid TOML: expected '.' or ']' to end table name, but got '\n' instead`}},
		{"toml duplicate key", "[core]\ndata_dir = \"a\"\ndata_dir = \"b\"\n", []string{
			`t.toml:11: invalid TOML: Key 'core.data_dir' has already been defined.`}},
		{"unknown top-level table", "[colour]\n", []string{`t.toml:9: key "colour": unknown key`}},
		{"unknown key in a table", "[core]\ncolour = 1\n", []string{`t.toml:10: key "core.colour": unknown key`}},
		{"key after an array table belongs to it", "colour = 1\n", []string{`t.toml:9: key "dialplan.context[0].colour": unknown key`}},
		{"unknown key with suggestion", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\nlisten_iq = \"1.2.3.4\"\n", []string{
			`t.toml:13: key "profile[1].listen_iq": unknown key (did you mean "listen_ip"?)`}},
		{"unknown queue param", "[[callcenter.queue]]\nname = \"q\"\nmax-wait-tme = 5\n", []string{
			`t.toml:11: key "callcenter.queue[0].max-wait-tme": unknown key (did you mean "max-wait-time"?)`}},
		{"int as string", "[media]\nrtp_start = \"10000\"\n", []string{
			`t.toml:10: key "media.rtp_start": must be an integer, not the string "10000"`}},
		{"bool as string", "[[callcenter.queue]]\nname = \"q\"\ntier-rules-apply = \"false\"\n", []string{
			`t.toml:11: key "callcenter.queue[0].tier-rules-apply": must be true or false (without quotes), not the string "false"`}},
		{"string as int", "[[callcenter.queue]]\nname = 3000\n", []string{
			`t.toml:10: key "callcenter.queue[0].name": must be a string, not the integer 3000`}},
		{"table as array", "[callcenter.queue]\nname = \"q\"\n", []string{
			`t.toml:9: key "callcenter.queue": must be an array of tables ([[queue]]), not a table`}},
		{"bad duration", "[media]\nmedia_timeout = \"60\"\n", []string{
			`t.toml:10: key "media.media_timeout": "60" is not a duration (write it like "60s" or "1m30s")`}},
		{"negative duration", "[media]\nmedia_timeout = \"-1s\"\n", []string{
			`t.toml:10: key "media.media_timeout": must not be negative ("0s" disables it)`}},
		{"negative hold timeout", "[media]\nmedia_hold_timeout = \"-1s\"\n", []string{
			`t.toml:10: key "media.media_hold_timeout": must not be negative ("0s" disables it)`}},
		{"rtp probation", "[media]\nrtp_probation = 0\n", []string{
			`t.toml:10: key "media.rtp_probation": 0 is outside 1-100 packets`}},
		{"media consent", "[media]\nmedia_consent = \"never\"\n", []string{
			`t.toml:10: key "media.media_consent": "never" is not one of "ack-or-rtp", "ack", "rtp", "none"`}},
		{"timer_t1x64 zero", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\ntimer_t1x64 = \"0s\"\n", []string{
			`t.toml:13: key "profile[1].timer_t1x64": must be above zero (default 32s)`}},
		{"session timeout too small", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\nsession_timeout = \"30s\"\n", []string{
			`t.toml:13: key "profile[1].session_timeout": 30s is below 90s, RFC 4028's smallest session interval ("0s" turns session timers off)`}},
		{"register target", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\nregister_target = \"via\"\n", []string{
			`t.toml:13: key "profile[1].register_target": "via" is not one of "auto", "source", "contact"`}},
		{"tls without a certificate", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\ntransports = [\"tls\"]\n", []string{
			`t.toml:13: key "profile[1].transports": "tls" needs tls_cert_file and tls_key_file (PEM); ` + "`ccpbx cert --host NAME`" + ` makes a test pair`}},
		{"tls unreadable certificate", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\ntransports = [\"tls\"]\ntls_cert_file = \"/nonexistent/c.pem\"\ntls_key_file = \"/nonexistent/k.pem\"\n", []string{
			`t.toml:14: key "profile[1].tls_cert_file": stat /nonexistent/c.pem: no such file or directory`}},
		{"rtp_secure_media", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\nrtp_secure_media = \"always\"\n", []string{
			`t.toml:13: key "profile[1].rtp_secure_media": "always" is not one of mandatory, optional, forbidden`}},
		{"user rtp_secure_media", "[[directory.user]]\nid = \"2001\"\n[directory.user.variables]\nrtp_secure_media = \"yes\"\n", []string{
			`t.toml:12: key "directory.user[0].variables.rtp_secure_media": "yes" is not one of mandatory, optional, forbidden`}},
		{"rtp range", "[media]\nrtp_start = 20000\nrtp_end = 20000\n", []string{
			`t.toml:11: key "media.rtp_end": rtp_end 20000 must be above rtp_start 20000 (RTP needs at least one even/odd port pair)`}},
		{"log level", "[core]\nlog_level = \"verbose\"\n", []string{
			`t.toml:10: key "core.log_level": "verbose" is not a log level (debug, info, warn, error)`}},
		{"event socket listen", "[event_socket.x]\n", []string{
			`t.toml:9: key "event_socket.x": unknown key`}},
		{"duplicate profile", "[[profile]]\nname = \"internal\"\nport = 5080\ncontext = \"default\"\n", []string{
			`t.toml:10: key "profile[1].name": duplicate profile "internal" (first defined at line 4)`}},
		{"duplicate port", "[[profile]]\nname = \"b\"\nport = 5060\ncontext = \"default\"\n", []string{
			`t.toml:11: key "profile[1].port": port 5060 is already used by profile "internal"`}},
		{"same port on all addresses and one", "[[profile]]\nname = \"b\"\nport = 5060\nlisten_ip = \"127.0.0.1\"\ncontext = \"default\"\n", []string{
			`t.toml:11: key "profile[1].port": port 5060 is already used by profile "internal"`}},
		{"same port two addresses", "[[profile]]\nname = \"b\"\nport = 5090\nlisten_ip = \"127.0.0.1\"\ncontext = \"default\"\n[[profile]]\nname = \"c\"\nport = 5090\nlisten_ip = \"127.0.0.2\"\ncontext = \"default\"\n", nil},
		{"same port other transport", "[[profile]]\nname = \"b\"\nport = 5090\ntransports = [\"udp\"]\ncontext = \"default\"\n[[profile]]\nname = \"c\"\nport = 5090\ntransports = [\"tcp\"]\ncontext = \"default\"\n", nil},
		{"port on event socket", "[[profile]]\nname = \"b\"\nport = 8021\ncontext = \"default\"\n", []string{
			`t.toml:11: key "profile[1].port": TCP port 8021 is also the event socket's (event_socket.listen)`}},
		{"port required", "[[profile]]\nname = \"b\"\ncontext = \"default\"\n", []string{
			`t.toml:9: key "profile[1]": port is required`}},
		{"bad transport", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\ntransports = [\"udp\", \"sctp\", \"udp\"]\n", []string{
			`t.toml:13: key "profile[1].transports[1]": "sctp" is not a transport (udp, tcp, tls)`,
			`t.toml:13: key "profile[1].transports[2]": transport "udp" is listed twice`}},
		{"unknown context", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"public\"\n", []string{
			`t.toml:12: key "profile[1].context": no dialplan context named "public"`}},
		{"bad listen_ip", "[[profile]]\nname = \"b\"\nport = 5080\ncontext = \"default\"\nlisten_ip = \"localhost\"\n", []string{
			`t.toml:13: key "profile[1].listen_ip": "localhost" is not an IP address`}},
		{"duplicate user", "[[directory.user]]\nid = \"1001\"\n[[directory.user]]\nid = \"1001\"\n", []string{
			`t.toml:12: key "directory.user[1].id": duplicate user "1001" (first defined at line 10)`}},
		{"duplicate context", "[[dialplan.context]]\nname = \"default\"\n", []string{
			`t.toml:10: key "dialplan.context[1].name": duplicate context "default" (first defined at line 8)`}},
		{"duplicate extension", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context.extension]]\nname = \"x\"\n", []string{
			`t.toml:12: key "dialplan.context[0].extension[1].name": duplicate extension in context "default": "x" (first defined at line 10)`}},
		{"same extension name in two contexts", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context]]\nname = \"other\"\n[[dialplan.context.extension]]\nname = \"x\"\n", nil},
		{"bad regex", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context.extension.condition]]\nfield = \"destination_number\"\nexpression = \"^(30\"\n", []string{
			`t.toml:13: key "dialplan.context[0].extension[0].condition[0].expression": bad regular expression "^(30": error parsing regexp: missing closing ): ` + "`^(30`"}},
		{"expression without field", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context.extension.condition]]\nexpression = \"^1$\"\n", []string{
			`t.toml:11: key "dialplan.context[0].extension[0].condition[0].field": is required when an expression is given (e.g. "destination_number")`}},
		{"bad break", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context.extension.condition]]\nbreak = \"sometimes\"\n", []string{
			`t.toml:12: key "dialplan.context[0].extension[0].condition[0].break": "sometimes" is not one of on-false, on-true, always, never`}},
		{"bad actions", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context.extension.condition]]\nactions = [\n  \"answer\",\n  \"\",\n  \" hangup\",\n  \"play/back x\",\n]\nanti_actions = [\"\"]\n", []string{
			`t.toml:12: key "dialplan.context[0].extension[0].condition[0].actions[1]": empty application in action "": write actions as "app data"`,
			`t.toml:12: key "dialplan.context[0].extension[0].condition[0].actions[2]": empty application in action " hangup": write actions as "app data"`,
			`t.toml:12: key "dialplan.context[0].extension[0].condition[0].actions[3]": bad application name "play/back" in action "play/back x"`,
			`t.toml:18: key "dialplan.context[0].extension[0].condition[0].anti_actions[0]": empty application in action "": write actions as "app data"`}},
		{"missing password", "", nil}, // replaced below
		{"duplicate queue", "[[callcenter.queue]]\nname = \"q\"\n[[callcenter.queue]]\nname = \"q\"\n", []string{
			`t.toml:12: key "callcenter.queue[1].name": duplicate queue "q" (first defined at line 10)`}},
		{"unknown strategy", "[[callcenter.queue]]\nname = \"q\"\nstrategy = \"fastest\"\n", []string{
			`t.toml:11: key "callcenter.queue[0].strategy": unknown strategy "fastest" (one of longest-idle-agent, agent-with-least-talk-time, agent-with-fewest-calls, sequentially-by-agent-order, random, ring-all, ring-progressively, top-down, round-robin)`}},
		{"queue seconds out of range", "[[callcenter.queue]]\nname = \"q\"\ndiscard-abandoned-after = 86401\nmax-wait-time = -1\n", []string{
			`t.toml:11: key "callcenter.queue[0].discard-abandoned-after": 86401 is outside 0-86400 seconds`,
			`t.toml:12: key "callcenter.queue[0].max-wait-time": -1 is outside 0-86400 seconds`}},
		{"announce without sound", "[[callcenter.queue]]\nname = \"q\"\nannounce-frequency = 30\n", []string{
			`t.toml:11: key "callcenter.queue[0].announce-frequency": needs announce-sound: there is nothing to announce`}},
		{"bad no-answer status", "[[callcenter.queue]]\nname = \"q\"\nagent-no-answer-status = \"Gone\"\n", []string{
			`t.toml:11: key "callcenter.queue[0].agent-no-answer-status": unknown agent status "Gone" (one of "Logged Out", "Available", "Available (On Demand)", "On Break")`}},
		{"duplicate agent", "[[callcenter.agent]]\nname = \"a\"\ncontact = \"user/a\"\n[[callcenter.agent]]\nname = \"a\"\ncontact = \"user/a\"\n", []string{
			`t.toml:13: key "callcenter.agent[1].name": duplicate agent "a" (first defined at line 10)`}},
		{"bad agent type and status", "[[callcenter.agent]]\nname = \"a\"\ntype = \"robot\"\nstatus = \"Busy\"\n", []string{
			`t.toml:11: key "callcenter.agent[0].type": unknown agent type "robot" (callback or uuid-standby)`,
			`t.toml:12: key "callcenter.agent[0].status": unknown agent status "Busy" (one of "Logged Out", "Available", "Available (On Demand)", "On Break")`}},
		{"callback without contact", "[[callcenter.agent]]\nname = \"a\"\n", []string{
			`t.toml:9: key "callcenter.agent[0]": contact is required for a callback agent (the dial string to ring, e.g. "user/a")`}},
		{"tier references", "[[callcenter.queue]]\nname = \"q\"\n[[callcenter.agent]]\nname = \"a\"\ncontact = \"user/a\"\n[[callcenter.tier]]\nagent = \"b\"\nqueue = \"q\"\n[[callcenter.tier]]\nagent = \"a\"\nqueue = \"r\"\n[[callcenter.tier]]\nagent = \"a\"\nqueue = \"q\"\nlevel = -1\n[[callcenter.tier]]\nagent = \"a\"\nqueue = \"q\"\n", []string{
			`t.toml:15: key "callcenter.tier[0].agent": no [[callcenter.agent]] named "b"`,
			`t.toml:19: key "callcenter.tier[1].queue": no [[callcenter.queue]] named "r"`,
			`t.toml:23: key "callcenter.tier[2].level": must not be negative`,
			`t.toml:24: key "callcenter.tier[3]": duplicate tier: agent "a" is already in queue "q" (first defined at line 20)`}},
		{"undefined var", "[core]\ndata_dir = \"$${nope}\"\n", []string{
			`t.toml:10: key "core.data_dir": $${nope} is not defined in [vars]`}},
		{"undefined var in a multi-line array", "[[dialplan.context.extension]]\nname = \"x\"\n[[dialplan.context.extension.condition]]\nactions = [\n  \"answer\",\n  \"playback $${snd}/x.wav\",\n]\n", []string{
			`t.toml:14: key "dialplan.context[0].extension[0].condition[0].actions": $${snd} is not defined in [vars]`}},
		{"undefined var in a comment is ignored", "# see $${nope}\n[core] # $${nope} too\n", nil},
		{"malformed var", "[core]\ndata_dir = \"$${no pe}\"\n", []string{
			`t.toml:10: key "core.data_dir": malformed $${…} reference: want $${name} (letters, digits, _ - .)`}},
		{"var not a string", "[vars]\nport = 5060\n", []string{
			`t.toml:10: key "vars.port": must be a string, not the integer 5060`}},
		{"var cycle", "[vars]\na = \"$${b}\"\nb = \"x$${a}\"\n", []string{
			`t.toml:10: key "vars.a": $${a} refers to itself (a → b → a)`}},
		{"var with quote in literal string", "[vars]\nq = \"it's\"\n[core]\ndata_dir = '$${q}'\n", []string{
			`t.toml:12: key "core.data_dir": $${q}: value "it's" cannot stand inside a 'literal' string; use a "basic" string`}},
		{"bare var giving bad syntax", "[vars]\nd = \"a b\"\n[core]\ndata_dir = $${d}\n", []string{
			`t.toml:12: invalid TOML: expected value but found "a" instead`}},
		{"syntax error after bare vars", "[vars]\nvery_long_variable_name = \"20000\"\n[media]\nrtp_start = $${very_long_variable_name}\nrtp_end = $${very_long_variable_name}\nmedia_timeout = [\n", []string{
			`t.toml:14: invalid TOML: unexpected EOF; expected value`}},
		{"inline table falls back to its key's line", "[callcenter]\nqueue = [\n  {name = \"q\", strategy = \"x\"},\n]\n", []string{
			`t.toml:10: key "callcenter.queue[0].strategy": unknown strategy "x" (one of longest-idle-agent, agent-with-least-talk-time, agent-with-fewest-calls, sequentially-by-agent-order, random, ring-all, ring-progressively, top-down, round-robin)`}},
		{"several errors in line order", "[[callcenter.queue]]\nname = \"q\"\nstrategy = \"x\"\n[media]\nrtp_start = 1\n[core]\nlog_format = \"xml\"\n", []string{
			`t.toml:11: key "callcenter.queue[0].strategy": unknown strategy "x" (one of longest-idle-agent, agent-with-least-talk-time, agent-with-fewest-calls, sequentially-by-agent-order, random, ring-all, ring-progressively, top-down, round-robin)`,
			`t.toml:13: key "media.rtp_start": port 1 is outside 1024-65535`,
			`t.toml:15: key "core.log_format": "xml" is not a log format (text, json)`}},
		{"type errors are reported together", "[media]\nrtp_start = \"a\"\nrtp_end = true\nbogus = 1\n", []string{
			`t.toml:10: key "media.rtp_start": must be an integer, not the string "a"`,
			`t.toml:11: key "media.rtp_end": must be an integer, not the boolean true`,
			`t.toml:12: key "media.bogus": unknown key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := base + tt.file
			want := tt.want
			if tt.name == "missing password" {
				file = strings.Replace(base, "password = \"s\"\n", "listen = \"127.0.0.1:9999\"\n", 1)
				want = []string{`t.toml:1: key "event_socket.password": is required: ccpbx has no default password, so that no well-known password opens the event socket`}
			}
			c, err := Parse("t.toml", []byte(file))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
				if c != nil {
					t.Error("a Config came back with the error: nothing may half-load")
				}
				var ce *Error
				if !errors.As(err, &ce) {
					t.Errorf("%v is not a *config.Error", err)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestVars(t *testing.T) {
	c, err := Parse("t.toml", []byte(`[vars]
port = "5070"
ip = "127.0.0.1"
weird = "back\\slash \"quoted\" tab	end"
root = "/srv"
sounds = "$${root}/sounds"
[core]
sounds_dir = "$${sounds}"
data_dir = """$${weird}"""
scripts_dir = '$${root}/lua'
# $${undefined} in a comment is left alone
[event_socket]
password = "s"
listen = "$${ip}:8022"
[[profile]]
name = "internal"
port = $${port}
listen_ip = "$${ip}"
context = "default"
[[dialplan.context]]
name = "default"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Profiles[0].Port != 5070 || c.Profiles[0].ListenIP != "127.0.0.1" || c.EventSocket.Listen != "127.0.0.1:8022" {
		t.Errorf("profile = %+v, event socket = %+v", c.Profiles[0], c.EventSocket)
	}
	if c.Core.SoundsDir != "/srv/sounds" || c.Core.ScriptsDir != "/srv/lua" {
		t.Errorf("core = %+v", c.Core)
	}
	if want := "back\\slash \"quoted\" tab\tend"; c.Core.DataDir != want {
		t.Errorf("data_dir = %q, want %q", c.Core.DataDir, want)
	}
	if c.Vars["sounds"] != "/srv/sounds" {
		t.Errorf("Vars = %v, want resolved values", c.Vars)
	}
}

// TestLineNumbersSurviveExpansion: a value with a line break is escaped, so
// the lines after it keep their numbers.
func TestLineNumbersSurviveExpansion(t *testing.T) {
	_, err := Parse("t.toml", []byte("[vars]\nml = \"a\\nb\\nc\"\n"+base+"[core]\nhostname = \"$${ml}\"\nlog_level = \"loud\"\n"))
	want := "t.toml:12: key \"core.hostname\": hostname \"a\\nb\\nc\" must not contain blanks or control characters\n" +
		"t.toml:13: key \"core.log_level\": \"loud\" is not a log level (debug, info, warn, error)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestVarBlowUpIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[vars]\nv0 = \"xxxxxxxxxxxxxxxx\"\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "v%d = \"$${v%d}$${v%d}\"\n", i, i-1, i-1)
	}
	_, err := Parse("t.toml", []byte(b.String()+base))
	if err == nil || !strings.Contains(err.Error(), "after expansion") {
		t.Fatalf("err = %v", err)
	}
	// Many references to one large value are bounded too.
	big := strings.Repeat("y", MaxVarLen)
	doc := "[vars]\nbig = \"" + big + "\"\n" + base + "[[directory.user]]\nid = \"u\"\n[directory.user.params]\n"
	for i := 0; i < 200; i++ {
		doc += fmt.Sprintf("p%d = \"$${big}\"\n", i)
	}
	_, err = Parse("t.toml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "after $${…} expansion") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load("testdata/does-not-exist.toml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Parse("big.toml", make([]byte, MaxFileSize+1)); err == nil || !strings.HasPrefix(err.Error(), "big.toml: file is") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestSetDefaultsOnBuiltValues(t *testing.T) {
	var q Queue
	q.SetDefaults()
	if q.Strategy != DefaultStrategy || *q.MaxWaitTimeWithNoAgentTimeReached != 5 || !*q.TierRuleNoAgentNoWait ||
		*q.DiscardAbandonedAfter != 60 || !*q.SkipAgentsWithExternalCalls || q.AgentNoAnswerStatus != StatusOnBreak {
		t.Errorf("queue = %+v", q)
	}
	q = Queue{MaxWaitTimeWithNoAgentTimeReached: ptr(0), TierRuleNoAgentNoWait: ptr(false)}
	q.SetDefaults()
	if *q.MaxWaitTimeWithNoAgentTimeReached != 0 || *q.TierRuleNoAgentNoWait {
		t.Errorf("SetDefaults overwrote set values: %+v", q)
	}
	var a Agent
	a.SetDefaults()
	if a.Type != AgentTypeCallback || a.Status != "" {
		t.Errorf("agent = %+v", a)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(ccpbx.ConfigTOML)
	f.Add([]byte(base))
	f.Add([]byte(base + "[vars]\nx = \"$${x}\"\n[core]\ndata_dir = '''$${x}'''\n"))
	f.Add([]byte("a = [\n{b = \"\"\"\n\"\"\"}, '''x'''\n# c\n]\n[[t.u]]\n\"q.k\" = 1\n"))
	f.Add([]byte("[vars]\np = \"50\\n60\"\n[[profile]]\nport = $${p}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.toml") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		for _, q := range c.Callcenter.Queues {
			_ = *q.MaxWaitTimeWithNoAgentTimeReached + *q.DiscardAbandonedAfter
			_ = *q.TierRuleNoAgentNoWait && *q.SkipAgentsWithExternalCalls
		}
		if c.EventSocket.Password == "" || c.EventSocket.Listen == "" {
			t.Fatalf("event socket accepted without password or address: %+v", c.EventSocket)
		}
	})
}

// TestAuthAlgorithms checks the digest algorithm list: default MD5,
// canonical spelling, unknown and repeated names refused with file:line.
func TestAuthAlgorithms(t *testing.T) {
	base := "[event_socket]\npassword = \"x\"\n[[dialplan.context]]\nname = \"default\"\n[[profile]]\nname = \"internal\"\nport = 5060\ncontext = \"default\"\n"
	c, err := Parse("a.toml", []byte(base+"auth_algorithms = [\"sha-256\", \"md5\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Profiles[0].AuthAlgorithms; !reflect.DeepEqual(got, []string{"SHA-256", "MD5"}) {
		t.Fatalf("algorithms %v", got)
	}
	c, err = Parse("a.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Profiles[0].AuthAlgorithms; !reflect.DeepEqual(got, []string{"MD5"}) {
		t.Fatalf("default algorithms %v", got)
	}
	for in, want := range map[string]string{
		`auth_algorithms = ["SHA-512"]`:    `a.toml:9: key "profile[0].auth_algorithms[0]": "SHA-512" is not a digest algorithm (MD5, SHA-256)`,
		`auth_algorithms = ["MD5", "md5"]`: `a.toml:9: key "profile[0].auth_algorithms[1]": algorithm "md5" is listed twice`,
	} {
		_, err := Parse("a.toml", []byte(base+in+"\n"))
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", in, err, want)
		}
	}
}

// TestLimits checks the limit knobs: a written 0 is kept (no cap), bad
// values are refused with file:line.
func TestLimits(t *testing.T) {
	base := "[event_socket]\npassword = \"x\"\n[[dialplan.context]]\nname = \"default\"\n[[profile]]\nname = \"blueivr\"\nport = 5080\ncontext = \"default\"\n"
	c, err := Parse("l.toml", []byte("[core]\nmax_sessions = 0\noverload_delay = \"0s\"\n"+base+
		"acl = [\"192.0.2.0/24\", \"198.51.100.7\"]\ncalls_per_second_per_ip = 0\ntcp_idle_timeout = \"0s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Profiles[0]
	if c.Core.MaxSessions != 0 || c.Core.OverloadDelay.Duration != 0 || c.Core.SessionsPerSecond != 200 ||
		p.CallsPerSecondPerIP != 0 || p.TCPIdleTimeout.Duration != 0 || p.MaxCallsPerIP != 500 || len(p.ACL) != 2 {
		t.Errorf("core %+v profile %+v", c.Core, p)
	}
	for in, want := range map[string]string{
		`acl = ["192.0.2.0/33"]`:          `l.toml:9: key "profile[0].acl[0]": "192.0.2.0/33" is not a CIDR ("192.0.2.0/24") or an address`,
		`max_calls_per_ip = -1`:           `l.toml:9: key "profile[0].max_calls_per_ip": -1 is outside 0-1000000 (0: no cap)`,
		`tcp_message_timeout = "-1s"`:     `l.toml:9: key "profile[0].tcp_message_timeout": -1s is outside 0s-24h ("0s" disables it)`,
		`tcp_max_connections_per_ip = -5`: `l.toml:9: key "profile[0].tcp_max_connections_per_ip": -5 is outside 0-1000000 (0: no cap)`,
	} {
		_, err := Parse("l.toml", []byte(base+in+"\n"))
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", in, err, want)
		}
	}
	_, err = Parse("l.toml", []byte("[core]\nsessions_per_second = -2\n"+base))
	if want := `l.toml:2: key "core.sessions_per_second": -2 is outside 0-1000000 (0: no cap)`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
