package interop

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sippRun is one sipp process with its traces in the artifacts.
type sippRun struct {
	*proc
	name     string
	msgFile  string
	errFile  string
	port     int
	callID   string // fixed Call-ID (single-call UAC runs), for the hang-up trigger
	scenario string
}

// runSipp starts sipp with scenario (a file under sipp/) as name. remote
// is "host:port" for a UAC, "" for a UAS. Every run traces its messages
// (-trace_msg) and unexpected ones (-trace_err) into the artifacts.
func (e *env) runSipp(t testing.TB, name, scenario, remote string, port int, args ...string) *sippRun {
	t.Helper()
	r := &sippRun{
		name:     name,
		port:     port,
		scenario: scenario,
		msgFile:  filepath.Join(e.art, name+".msg"),
		errFile:  filepath.Join(e.art, name+".err"),
	}
	argv := []string{e.tools["sipp"], "-sf", filepath.Join(e.scenarios, scenario)}
	if remote != "" {
		argv = append(argv, remote)
		r.callID = fmt.Sprintf("%s-%d@127.0.0.1", name, time.Now().UnixNano())
		argv = append(argv, "-cid_str", r.callID)
	}
	argv = append(argv,
		"-i", "127.0.0.1", "-p", itoa(port), "-t", "u1",
		"-nostdin", "-aa",
		"-trace_msg", "-message_file", r.msgFile,
		"-trace_err", "-error_file", r.errFile,
		"-max_recv_loops", "1000",
	)
	argv = append(argv, args...)
	if err := os.WriteFile(filepath.Join(e.art, name+".cmd"), []byte(strings.Join(argv, " ")+"\n"), 0o644); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	r.proc = startProc(t, name, filepath.Join(e.art, name+".out"), e.art, argv...)
	return r
}

// finish waits for sipp to end and insists it ended with every call
// successful (exit 0); the error names the scenario and quotes sipp's own
// error log.
func (r *sippRun) finish(timeout time.Duration) error {
	exited, err := r.wait(timeout)
	if !exited {
		r.kill()
		return fmt.Errorf("sipp %s (%s) still running after %s; its last messages:\n%s", r.name, r.scenario, timeout, tail(r.msgFile, 25))
	}
	if err != nil || r.exitCode() != 0 {
		return fmt.Errorf("sipp %s (%s) failed (exit %d: %v); unexpected messages:\n%s\nlast messages:\n%s",
			r.name, r.scenario, r.exitCode(), err, tail(r.errFile, 20), tail(r.msgFile, 25))
	}
	return nil
}

// hangup makes a trunk_caller.xml run send its BYE: the scenario waits for
// an in-dialog INFO, which sipp matches by Call-ID.
func (r *sippRun) hangup() error {
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", r.port))
	if err != nil {
		return fmt.Errorf("hangup trigger for %s: %w", r.name, err)
	}
	defer c.Close()
	local := c.LocalAddr().(*net.UDPAddr)
	msg := fmt.Sprintf("INFO sip:caller@127.0.0.1:%d SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-hangup-%d\r\n"+
		"From: <sip:test@127.0.0.1>;tag=hangup\r\n"+
		"To: <sip:caller@127.0.0.1>;tag=hangup\r\n"+
		"Call-ID: %s\r\nCSeq: 1 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		r.port, local.Port, time.Now().UnixNano(), r.callID)
	_, err = c.Write([]byte(msg))
	return err
}

// sippCount reports how many times a SIP request or status line appears in
// a sipp run's message trace ("INVITE", "CANCEL", "486", …): what the phone
// actually saw, for checks like "1001 never rang".
func sippCount(msgFile, start string) int {
	b, err := os.ReadFile(msgFile)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, start+" ") || strings.HasPrefix(line, "SIP/2.0 "+start+" ") {
			n++
		}
	}
	return n
}

// sippReceived returns, for every request with this method the phone
// received (per its -trace_msg file), the value of header.
func sippReceived(msgFile, method, header string) []string {
	b, err := os.ReadFile(msgFile)
	if err != nil {
		return nil
	}
	var out []string
	blocks := strings.Split(string(b), "-----------------------------------------------")
	for _, blk := range blocks {
		lines := strings.Split(strings.ReplaceAll(blk, "\r", ""), "\n")
		received, inMsg := false, false
		for _, l := range lines {
			if strings.Contains(l, "message received") {
				received = true
				continue
			}
			if !received {
				continue
			}
			if !inMsg {
				if strings.HasPrefix(l, method+" ") {
					inMsg = true
				} else if l != "" {
					break
				}
				continue
			}
			if l == "" {
				break
			}
			if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(name), header) {
				out = append(out, strings.TrimSpace(v))
			}
		}
	}
	return out
}
