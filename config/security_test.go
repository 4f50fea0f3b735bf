package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lockdownFile is a minimal file whose event_socket section is es (from
// line 2 on) and whose core section is core.
func lockdownFile(es, core string) string {
	return "[event_socket]\n" + es + "[core]\n" + core + `[[profile]]
name = "internal"
port = 5060
context = "default"
[[dialplan.context]]
name = "default"
`
}

func TestEventSocketLockdownDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(lockdownFile("password = \"s\"\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	want := EventSocket{Listen: "127.0.0.1:8021", Password: "s", MaxConnections: 64, MaxUnauthenticated: 16,
		AuthTimeout: Duration{5 * time.Second}, AuthFailures: 5, AuthFailureWindow: Duration{5 * time.Minute},
		BanTime: Duration{15 * time.Minute}, BanAllow: []string{"127.0.0.0/8", "::1/128"}}
	if !reflect.DeepEqual(c.EventSocket, want) {
		t.Errorf("event socket = %+v\nwant %+v", c.EventSocket, want)
	}
	wantSIP := SIPSecurity{AuthFailures: 10, UserAuthFailures: 20, AuthFailureWindow: Duration{5 * time.Minute},
		BanTime: Duration{15 * time.Minute}, NonceTTL: Duration{time.Minute}}
	if !reflect.DeepEqual(c.SIPSecurity, wantSIP) {
		t.Errorf("sip_security = %+v\nwant %+v", c.SIPSecurity, wantSIP)
	}
	c, err = Parse("t.toml", []byte(lockdownFile("password = \"s\"\nauth_failures = 0\nacl = [\"10.0.0.0/8\", \"192.0.2.7\"]\n", "allowed_roots = [\"/srv/moh\"]\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c.EventSocket.AuthFailures != 0 {
		t.Errorf("auth_failures = 0 became %d", c.EventSocket.AuthFailures)
	}
	c2, err := Parse("t.toml", []byte(lockdownFile("password = \"s\"\nban_allow = []\n", "")+
		"[sip_security]\nauth_failures = 0\nuser_auth_failures = 0\nban_allow = [\"192.0.2.0/24\"]\nallow_rfc2069 = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.EventSocket.BanAllow) != 0 || c2.SIPSecurity.AuthFailures != 0 || c2.SIPSecurity.UserAuthFailures != 0 ||
		!c2.SIPSecurity.AllowRFC2069 || len(c2.SIPSecurity.BanAllow) != 1 {
		t.Errorf("explicit settings lost: %+v %+v", c2.EventSocket, c2.SIPSecurity)
	}
	if !reflect.DeepEqual(c.Core.AllowedRoots, []string{"/srv/moh"}) || len(c.EventSocket.ACL) != 2 {
		t.Errorf("core = %+v, acl = %v", c.Core, c.EventSocket.ACL)
	}
}

func TestEventSocketLockdownErrors(t *testing.T) {
	for _, c := range []struct {
		name, es, core string
		want           []string
	}{
		{"shipped password on all addresses", "listen = \"0.0.0.0:8021\"\npassword = \"ccpbx-esl-7b1d\"\n", "", []string{
			`t.toml:3: key "event_socket.password": "ccpbx-esl-7b1d" is a published password and the event socket listens beyond loopback (0.0.0.0:8021): set a password of your own (and an acl)`}},
		{"ClueCon on a LAN address", "listen = \"192.0.2.1:8021\"\npassword = \"ClueCon\"\n", "", []string{
			`t.toml:3: key "event_socket.password": "ClueCon" is a published password and the event socket listens beyond loopback (192.0.2.1:8021): set a password of your own (and an acl)`}},
		{"shipped password on loopback", "listen = \"127.0.0.1:8021\"\npassword = \"ccpbx-esl-7b1d\"\n", "", nil},
		{"shipped password on localhost v6", "listen = \"[::1]:8021\"\npassword = \"ClueCon\"\n", "", nil},
		{"own password beyond loopback", "listen = \":8021\"\npassword = \"long-and-mine\"\n", "", nil},
		{"bad ban_allow", "password = \"s\"\nban_allow = [\"everyone\"]\n", "", []string{
			`t.toml:3: key "event_socket.ban_allow[0]": "everyone" is not a CIDR ("192.0.2.0/24") or an address`}},
		{"user agent with CR", "password = \"s\"\n", "user_agent = \"x\\r\\nVia: y\"\n", []string{
			`t.toml:4: key "core.user_agent": must be at most 128 printable characters`}},
		{"bad acl", "password = \"s\"\nacl = [\"10.0.0.0/8\", \"10.0.0.0/33\", \"lan\"]\n", "", []string{
			`t.toml:3: key "event_socket.acl[1]": "10.0.0.0/33" is not a CIDR ("192.0.2.0/24") or an address`,
			`t.toml:3: key "event_socket.acl[2]": "lan" is not a CIDR ("192.0.2.0/24") or an address`}},
		{"acl not an array", "password = \"s\"\nacl = \"10.0.0.0/8\"\n", "", []string{
			`t.toml:3: key "event_socket.acl": must be an array, not the string "10.0.0.0/8"`}},
		{"caps", "password = \"s\"\nmax_connections = 4\nmax_unauthenticated = 8\n", "", []string{
			`t.toml:4: key "event_socket.max_unauthenticated": 8 is above max_connections 4`}},
		{"negative", "password = \"s\"\nmax_connections = -1\nauth_failures = -2\nban_time = \"-1m\"\nauth_timeout = \"1h\"\n", "", []string{
			`t.toml:3: key "event_socket.max_connections": must not be negative`,
			`t.toml:4: key "event_socket.auth_failures": must not be negative (0 disables the ban)`,
			`t.toml:5: key "event_socket.ban_time": must not be negative`,
			`t.toml:6: key "event_socket.auth_timeout": must be between 0s (the default, 5s) and 10m`}},
		{"allowed roots", "password = \"s\"\n", "allowed_roots = [\"\", \"/\", \"/srv/../etc\"]\n", []string{
			`t.toml:4: key "core.allowed_roots[0]": must not be empty`,
			`t.toml:4: key "core.allowed_roots[1]": "/" would allow every file; name the folders that hold sounds or scripts`,
			`t.toml:4: key "core.allowed_roots[2]": "/srv/../etc" must not contain ".."`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(lockdownFile(c.es, c.core)))
			if c.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, c.want) {
				t.Errorf("errors:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestListenIsLoopback(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8021": true, "127.8.9.10:1": true, "[::1]:8021": true, "localhost:8021": true,
		"0.0.0.0:8021": false, ":8021": false, "[::]:8021": false, "192.0.2.1:8021": false, "pbx.example:8021": false,
		"garbage": false,
	} {
		if got := ListenIsLoopback(listen); got != want {
			t.Errorf("ListenIsLoopback(%q) = %v", listen, got)
		}
	}
}

func TestParseACLEntry(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "192.0.2.7": "192.0.2.7/32", "::ffff:192.0.2.7": "192.0.2.7/32", "2001:db8::/32": "2001:db8::/32",
	} {
		p, err := ParseACLEntry(in)
		if err != nil || p != netip.MustParsePrefix(want) {
			t.Errorf("ParseACLEntry(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
}
