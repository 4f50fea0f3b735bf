package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shippedWith writes the shipped config.toml with its event socket listen
// and password lines replaced.
func shippedWith(t *testing.T, listen, password string) string {
	t.Helper()
	b, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `listen = "127.0.0.1:8021"`, `listen = "`+listen+`"`, 1)
	s = strings.Replace(s, `password = "ccpbx-esl-7b1d"`, `password = "`+password+`"`, 1)
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRefuseShippedPasswordBeyondLoopback: with the published password on
// a listener beyond loopback, both `check` and `serve` refuse the file with
// its line; on loopback the shipped file is fine; with an own password and
// no acl, check warns.
func TestRefuseShippedPasswordBeyondLoopback(t *testing.T) {
	for _, pw := range []string{"ccpbx-esl-7b1d", "ClueCon"} {
		path := shippedWith(t, "0.0.0.0:8021", pw)
		for _, cmd := range []string{"check", "serve"} {
			var stdout, stderr bytes.Buffer
			if code := run([]string{cmd, "-config", path}, nil, &stdout, &stderr); code != 1 {
				t.Fatalf("%s with %q on 0.0.0.0: exit %d, want 1 (stderr %q)", cmd, pw, code, stderr.String())
			}
			if !strings.Contains(stderr.String(), `key "event_socket.password": "`+pw+`" is a published password`) ||
				!strings.Contains(stderr.String(), path+":") {
				t.Errorf("%s: stderr %q", cmd, stderr.String())
			}
		}
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", "../../config.toml"}, nil, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
		t.Fatalf("shipped file: exit %d, stderr %q", code, stderr.String())
	}

	stdout.Reset()
	path := shippedWith(t, "0.0.0.0:8021", "a-password-of-my-own")
	if code := run([]string{"check", "-config", path}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("own password: exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "warning: event_socket.listen \"0.0.0.0:8021\" is beyond loopback and event_socket.acl is empty") {
		t.Errorf("no warning for an open listener without acl: %q", stderr.String())
	}
}
