package config

import (
	"strings"
	"testing"
)

func TestHTTPDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HTTP
	if !h.Enabled || h.Listen != DefaultHTTPListen || !h.ListenDefault || h.ServiceLevelSeconds != 20 || h.HasAuth() {
		t.Fatalf("defaults: %+v", h)
	}
	c, err = Parse("t.toml", []byte(base+"[http]\nenabled = false\nlisten = \"127.0.0.1:9\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Enabled || c.HTTP.ListenDefault {
		t.Fatalf("explicit: %+v", c.HTTP)
	}
}

func TestHTTPErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"beyond loopback without auth", "[http]\nlisten = \"0.0.0.0:8080\"\n",
			`t.toml:10: key "http.listen": "0.0.0.0:8080" is beyond loopback and [http] has no token nor username and password`},
		{"bad listen", "[http]\nlisten = \"8080\"\n", `t.toml:10: key "http.listen": "8080": want host:port`},
		{"cert without key", "[http]\ntls_cert = \"c.pem\"\n", `t.toml:10: key "http.tls_cert": tls_cert and tls_key go together`},
		{"user without password", "[http]\nusername = \"sup\"\n", `t.toml:10: key "http.username": username and password go together`},
		{"service level", "[http]\nservice_level_seconds = -1\n", `t.toml:10: key "http.service_level_seconds": must be between 0`},
	} {
		_, err := Parse("t.toml", []byte(base+tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// Credentials make any address acceptable; disabled needs none.
	for _, ok := range []string{
		"[http]\nlisten = \"0.0.0.0:8080\"\ntoken = \"t\"\n",
		"[http]\nlisten = \"[::]:8080\"\nusername = \"u\"\npassword = \"p\"\n",
		"[http]\nlisten = \"0.0.0.0:8080\"\nenabled = false\n",
	} {
		if _, err := Parse("t.toml", []byte(base+ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
