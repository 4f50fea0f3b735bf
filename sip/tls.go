package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"ccpbx/config"
)

// tlsListener is a profile's SIP over TLS listener (transports lists
// "tls"): its own port, the certificate from PEM files, TLS 1.2 at least.
// Phones that register over TLS are reached back over their own connection
// (the registration's source is the target, target.go), as RFC 5923 wants
// for a client that cannot accept connections; sipgo keeps the connection
// pooled by its remote address. CRLF keep-alives (RFC 5626 §3.5.1) are
// skipped by sipgo's stream parser, as on TCP.
type tlsListener struct {
	on       bool
	port     int
	cert     *certReloader
	clientCA *x509.CertPool // tls_verify_policy "in": phones must present a certificate it signed
}

// certReloader serves the certificate from its files, reloading them when
// either file's modification time changes (an ACME client renewing it), at
// most once per second. A reload that fails keeps the old pair.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stamps() [2]time.Time {
	var s [2]time.Time
	for i, f := range []string{r.certFile, r.keyFile} {
		if fi, err := os.Stat(f); err == nil {
			s[i] = fi.ModTime()
		}
	}
	return s
}

func (r *certReloader) load() error {
	st := r.stamps()
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert, r.stamp = &c, st
	r.mu.Unlock()
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	now := time.Now()
	check := now.Sub(r.checked) >= time.Second
	if check {
		r.checked = now
	}
	cert, stamp := r.cert, r.stamp
	r.mu.Unlock()
	if check && r.stamps() != stamp {
		_ = r.load() // a half-written renewal keeps the old pair until it is whole
		r.mu.Lock()
		cert = r.cert
		r.mu.Unlock()
	}
	return cert, nil
}

// serverConfig is the listener's TLS configuration: Go's defaults (its
// cipher suites), TLS 1.2 at least.
func (t *tlsListener) serverConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: t.cert.get}
	if t.clientCA != nil {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, t.clientCA
	}
	return c
}

// setupTLS reads the profile's TLS settings; the certificate must load now
// (config validation checked it too, but files change).
func (p *profile) setupTLS() error {
	if !p.tlsl.on {
		return nil
	}
	r, err := newCertReloader(p.cfg.TLSCertFile, p.cfg.TLSKeyFile)
	if err != nil {
		return err
	}
	p.tlsl.cert = r
	p.tlsl.port = p.cfg.TLSPort
	if strings.EqualFold(p.cfg.TLSVerifyPolicy, "in") {
		if p.tlsl.clientCA, err = config.LoadCAFile(p.cfg.TLSCAFile); err != nil {
			return fmt.Errorf("tls_ca_file: %w", err)
		}
	}
	return nil
}

// listenTLS binds the TLS port and serves it. The input guard sees the
// decrypted stream, so it applies to TLS as to TCP.
func (p *profile) listenTLS(ctx context.Context) error {
	if !p.tlsl.on {
		return nil
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(p.listenIP, uint16(p.tlsl.port)).String())
	if err != nil {
		return fmt.Errorf("listen tls: %w", err)
	}
	p.tlsl.port = ln.Addr().(*net.TCPAddr).Port
	tl := tls.NewListener(ln, p.tlsl.serverConfig())
	s := p.stack
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		go func() { <-ctx.Done(); ln.Close() }()
		err := p.srv.ServeTLS(p.guard.listener(tl, "tls"))
		if ctx.Err() == nil {
			p.log.Error("tls listener stopped", "err", err)
		}
	}()
	p.log.Info("sip profile listening on TLS", "listen", netip.AddrPortFrom(p.listenIP, uint16(p.tlsl.port)).String())
	return nil
}

// TLSAddr is the address a peer reaches the profile's TLS listener on
// (zero value when the profile has none).
func (s *Stack) TLSAddr(profile string) netip.AddrPort {
	p, ok := s.byName[profile]
	if !ok || !p.tlsl.on {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(p.advIP, uint16(p.tlsl.port))
}
