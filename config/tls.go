package config

import (
	"crypto/tls"
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
}

func hasTransport(ts []string, t string) bool {
	for _, x := range ts {
		if strings.EqualFold(x, t) {
			return true
		}
	}
	return false
}
