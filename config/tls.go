package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// validateProfileTLS checks a profile's TLS listener: with "tls" listed, a
// port in range and a certificate and key that load and match (the same
// check the listener makes at start, so `ccpbx check` catches it first).
func validateProfileTLS(pr *Profile, p string, listed bool, el *errorList) {
	if pr.TLSPort < 0 || pr.TLSPort > 65535 {
		el.at(joinKey(p, "tls_port"), "port %d is outside 0-65535", pr.TLSPort)
	}
	if !listed {
		return
	}
	if pr.TLSPort != 0 && pr.TLSPort == pr.Port {
		el.at(joinKey(p, "tls_port"), "tls_port %d is also the profile's port (UDP/TCP); use another, e.g. 5061", pr.TLSPort)
	}
	switch {
	case pr.TLSCertFile == "":
		el.at(joinKey(p, "transports"), "\"tls\" needs tls_cert_file and tls_key_file (PEM); `ccpbx cert --host NAME` makes a test pair")
		return
	case pr.TLSKeyFile == "":
		el.at(joinKey(p, "tls_cert_file"), "tls_key_file is missing: set both, or neither")
		return
	}
	for _, f := range []struct{ key, path string }{{"tls_cert_file", pr.TLSCertFile}, {"tls_key_file", pr.TLSKeyFile}} {
		if _, err := os.Stat(f.path); err != nil {
			el.at(joinKey(p, f.key), "%v", err)
			return
		}
	}
	if _, err := tls.LoadX509KeyPair(pr.TLSCertFile, pr.TLSKeyFile); err != nil {
		el.at(joinKey(p, "tls_cert_file"), "certificate and key do not load: %v", err)
	}
	switch strings.ToLower(pr.TLSVerifyPolicy) {
	case "", "none":
	case "in":
		if pr.TLSCAFile == "" {
			el.at(joinKey(p, "tls_verify_policy"), "\"in\" needs tls_ca_file (PEM) with the CA that signs the phones' certificates")
		} else if _, err := LoadCAFile(pr.TLSCAFile); err != nil {
			el.at(joinKey(p, "tls_ca_file"), "%v", err)
		}
	default:
		el.at(joinKey(p, "tls_verify_policy"), "%q is not one of none, in", pr.TLSVerifyPolicy)
	}
}

// LoadCAFile reads a PEM file of CA certificates into a pool; a file
// with none is an error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

func hasTransport(ts []string, t string) bool {
	for _, x := range ts {
		if strings.EqualFold(x, t) {
			return true
		}
	}
	return false
}
