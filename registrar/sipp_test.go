package registrar

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestSippRegisters runs test/sipp/register.xml (real SIP software that
// nobody here wrote) against the registrar behind a sipgo server. It is
// skipped when sipp is not installed (Debian package sip-tester).
func TestSippRegisters(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed")
	}
	h := newHarness(t)
	// sipp needs a fixed local port; borrow a free one from the kernel.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()

	scenario, err := filepath.Abs("../test/sipp/register.xml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, sipp, "-sf", scenario, "-s", "1001", "-ap", "1234", "-m", "1",
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-timeout", "20s", "-nostdin", "-trace_err",
		"-error_file", filepath.Join(dir, "err.log"), h.udp)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp failed: %v\n%s", err, out)
	}
	bs := h.reg().Lookup("1001")
	if len(bs) != 1 {
		t.Fatalf("bindings after sipp: %+v", bs)
	}
	b := bs[0]
	want := "sip:1001@127.0.0.1:" + strconv.Itoa(port)
	if b.Contact != want || int(b.Source.Port()) != port || b.UserAgent != "sipp-register" || b.Transport != "udp" {
		t.Fatalf("binding = %+v, want contact %s from port %d", b, want, port)
	}
}
