package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/testphone"
)

// tlsFiles writes a self-signed pair for 127.0.0.1 and returns the files
// and a client configuration that trusts it.
func tlsFiles(t *testing.T) (certFile, keyFile string, client *tls.Config) {
	t.Helper()
	c, k, err := SelfSignedCert("127.0.0.1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// TestTLSRegisterAndCallBothWays: a phone registers over TLS, is called
// back over its own connection and calls out; audio flows both ways.
func TestTLSRegisterAndCallBothWays(t *testing.T) {
	for _, sips := range []bool{false, true} {
		t.Run(map[bool]string{false: "sip", true: "sips"}[sips], func(t *testing.T) { tlsRegisterAndCall(t, sips) })
	}
}

func tlsRegisterAndCall(t *testing.T, sips bool) {
	certFile, keyFile, client := tlsFiles(t)
	x := newTestPBXProfiles(t, func(p *config.Profile) {
		p.Transports = []string{"udp", "tcp", "tls"}
		p.TLSCertFile, p.TLSKeyFile = certFile, keyFile
	})
	addr := x.stack.TLSAddr("internal")
	if !addr.IsValid() || addr.Port() == 0 {
		t.Fatalf("no TLS listener: %v", addr)
	}
	opts := []testphone.Option{testphone.WithTLS(client)}
	if sips {
		opts = append(opts, testphone.WithSIPS())
	}
	agent := testphone.New(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := agent.Register(ctx, addr.String(), "1001", "1234", time.Hour)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register over TLS: %v %v", res, err)
	}
	if b := x.reg.Lookup("1001"); len(b) != 1 || !strings.EqualFold(b[0].Transport, "tls") {
		t.Fatalf("binding %+v, want one over TLS", b)
	}
	other := x.phone(t, "1002")
	agent.SetPlan(testphone.AutoAnswer)
	// Called: the INVITE must come over the agent's own TLS connection
	// (its listener would need a client certificate check we do not do).
	c, err := other.Dial(ctx, "1001")
	if err != nil {
		t.Fatal(err)
	}
	in, err := agent.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr := in.Request().Transport(); tr != "TLS" {
		t.Fatalf("INVITE reached the agent over %s", tr)
	}
	if sips && in.Request().Recipient.Scheme != "sips" {
		t.Fatalf("a sips: Contact was called at %s", in.Request().Recipient.String())
	}
	if src := in.Request().Source(); src != addr.String() {
		t.Fatalf("INVITE came from %s, not over the registration's connection to %s", src, addr)
	}
	talking(t, ctx, c, in)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	// Calling out over TLS.
	other.SetPlan(testphone.AutoAnswer)
	c, err = agent.Dial(ctx, "1002")
	if err != nil {
		t.Fatal(err)
	}
	in, err = other.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	talking(t, ctx, c, in)
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTLSRefusesOldVersions: TLS 1.1 clients are refused; a TLS 1.2+
// connection gets its CRLF keep-alives answered.
func TestTLSRefusesOldVersions(t *testing.T) {
	certFile, keyFile, client := tlsFiles(t)
	x := newTestPBXProfiles(t, func(p *config.Profile) {
		p.Transports = []string{"udp", "tls"}
		p.TLSCertFile, p.TLSKeyFile = certFile, keyFile
	})
	old := client.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	c, err := tls.Dial("tcp", x.stack.TLSAddr("internal").String(), old)
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	c, err = tls.Dial("tcp", x.stack.TLSAddr("internal").String(), client)
	if err != nil {
		t.Fatalf("TLS 1.2+ handshake: %v", err)
	}
	defer c.Close()
	// RFC 5626 §3.5.1: a CRLFCRLF ping is answered with a CRLF pong.
	if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	pong := make([]byte, 2)
	if _, err := io.ReadFull(c, pong); err != nil || string(pong) != "\r\n" {
		t.Fatalf("keep-alive pong %q, %v", pong, err)
	}
}

// TestTLSClientCertificate: tls_verify_policy "in" refuses a phone without
// a certificate from tls_ca_file and serves one with it.
func TestTLSClientCertificate(t *testing.T) {
	certFile, keyFile, client := tlsFiles(t)
	x := newTestPBXProfiles(t, func(p *config.Profile) {
		p.Transports = []string{"udp", "tls"}
		p.TLSCertFile, p.TLSKeyFile = certFile, keyFile
		p.TLSVerifyPolicy, p.TLSCAFile = "in", certFile // the test pair signs itself
	})
	addr := x.stack.TLSAddr("internal").String()
	ping := func(conf *tls.Config) error {
		c, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			return err
		}
		defer c.Close()
		// With TLS 1.3 the server's refusal arrives after the handshake.
		if _, err := c.Write([]byte("\r\n\r\n")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		pong := make([]byte, 2)
		_, err = io.ReadFull(c, pong)
		return err
	}
	anon := client.Clone()
	anon.Certificates = nil
	if err := ping(anon); err == nil {
		t.Fatal("a phone without a client certificate was served")
	}
	if err := ping(client); err != nil {
		t.Fatalf("a phone with a trusted client certificate: %v", err)
	}
}
