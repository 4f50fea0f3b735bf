package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"ccpbx/sip"
)

// certCmd is `ccpbx cert --host NAME`: a self-signed certificate and key
// for a test setup of SIP over TLS. It refuses to overwrite files.
func certCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "", "the name or IP address phones connect to (required)")
	certFile := fs.String("cert", "ccpbx-cert.pem", "certificate file to write (PEM)")
	keyFile := fs.String("key", "ccpbx-key.pem", "private key file to write (PEM, mode 0600)")
	days := fs.Int("days", 365, "validity in days")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *host == "" || *days < 1 || *days > 3650 {
		fmt.Fprintln(stderr, "ccpbx cert: --host NAME is required; --days must be 1-3650")
		return 2
	}
	c, k, err := sip.SelfSignedCert(*host, time.Duration(*days)*24*time.Hour)
	if err != nil {
		fmt.Fprintln(stderr, "ccpbx cert:", err)
		return 1
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{*certFile, c, 0o644}, {*keyFile, k, 0o600}} {
		w, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			fmt.Fprintln(stderr, "ccpbx cert:", err)
			return 1
		}
		_, err = w.Write(f.data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(stderr, "ccpbx cert:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "wrote %s and %s for %s (self-signed, %d days): set tls_cert_file and tls_key_file, and make the phones trust %s\n",
		*certFile, *keyFile, *host, *days, *certFile)
	return 0
}
