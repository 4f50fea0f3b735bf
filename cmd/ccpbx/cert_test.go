package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCertThenCheck: `ccpbx cert` writes a pair that `ccpbx check` accepts
// for a profile with tls; check refuses the profile without it, with
// file:line; cert refuses to overwrite.
func TestCertThenCheck(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	var out, errb bytes.Buffer
	if code := run([]string{"cert", "--host", "pbx.example.com", "-cert", cert, "-key", key}, nil, &out, &errb); code != 0 {
		t.Fatalf("cert: exit %d: %s", code, errb.String())
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if code := run([]string{"cert", "--host", "x", "-cert", cert, "-key", key}, nil, &out, &errb); code != 1 {
		t.Fatalf("cert overwrote its files: exit %d", code)
	}
	b, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	shipped := string(b)
	const tr = "transports = [\"udp\", \"tcp\"]\n# tls_port = 5061"
	if !strings.Contains(shipped, tr) {
		t.Fatalf("shipped config has no %q", tr)
	}
	good := strings.Replace(shipped, tr, "transports = [\"udp\", \"tcp\", \"tls\"]\ntls_cert_file = \""+cert+"\"\ntls_key_file = \""+key+"\"\n#EXTRA", 1)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"check", "-config", path}, nil, &out, &errb); code != 0 {
		t.Fatalf("check with a good pair: exit %d\n%s", code, errb.String())
	}
	for _, c := range []struct{ extra, want string }{
		{`tls_verify_policy = "all"`, `"all" is not one of none, in`},
		{`tls_verify_policy = "in"`, `"in" needs tls_ca_file`},
		{"tls_verify_policy = \"in\"\ntls_ca_file = \"" + key + "\"", "no PEM certificate"},
	} {
		bad := strings.Replace(good, "#EXTRA", c.extra, 1)
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		errb.Reset()
		if code := run([]string{"check", "-config", path}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("check with %s: exit %d\n%s", c.extra, code, errb.String())
		}
	}
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"check", "-config", path}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "config.toml:") || !strings.Contains(errb.String(), "tls_key_file") {
		t.Fatalf("check without the key: exit %d\n%s", code, errb.String())
	}
}
