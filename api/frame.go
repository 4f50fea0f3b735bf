package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"ccpbx/call"
)

// Limits on what a peer may send in one frame. FreeSWITCH accepts up to
// 10 MB; ccpbx's commands are one line, so much less is plenty. These are
// what the client side accepts from a server (events and replies can be
// large); a server applies the tighter frameLimits below to its clients.
const (
	maxLineLen    = 64 << 10
	maxHeaderSize = 256 << 10
	maxBodyLen    = 4 << 20
)

// frameLimits bound one frame read from a peer.
type frameLimits struct {
	line, header, body int
}

var (
	// clientFrame is what a client accepts from the server.
	clientFrame = frameLimits{line: maxLineLen, header: maxHeaderSize, body: maxBodyLen}
	// preAuthFrame is what an unauthenticated peer may send: "auth
	// <password>" and a few headers, never a body. A Content-Length before
	// login ends the connection before a byte of the body is read, so a
	// stranger announcing 4 MiB costs nothing.
	preAuthFrame = frameLimits{line: 1 << 10, header: 4 << 10, body: 0}
	// commandFrame is what a logged-in client may send: one command line
	// (api, bgapi, event, filter …) with a few headers. ccpbx takes no
	// command with a large body (sendmsg/sendevent are not supported).
	commandFrame = frameLimits{line: 16 << 10, header: 32 << 10, body: 64 << 10}
)

// Frame errors.
var (
	ErrLineTooLong = errors.New("event socket: line too long")
	ErrFrameTooBig = errors.New("event socket: frame too big")
	ErrBadLength   = errors.New("event socket: bad Content-Length")
)

// frame is one event-socket message: header lines up to a blank line, then
// Content-Length bytes of body. On the server side the first line is the
// command ("api status") and is kept in Command rather than Headers.
type frame struct {
	Command string
	Headers []call.Header
	Body    string
}

// Get returns the first header named name, ignoring case ("" when absent),
// as FreeSWITCH looks headers up.
func (f *frame) Get(name string) string {
	v, _ := headerFold(f.Headers, name)
	return v
}

// readLine returns one line without its "\n" or "\r\n", refusing lines
// longer than max so a peer cannot make us buffer without bound.
func readLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			return "", ErrLineTooLong
		}
		buf = append(buf, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	s := strings.TrimSuffix(string(buf), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// readFrame reads one frame within the client-side limits. With command
// set, the first non-empty line is the command (server side); blank lines
// before it are skipped, as FreeSWITCH does, so stray newlines from a
// client are harmless.
func readFrame(r *bufio.Reader, command bool) (*frame, error) {
	return readFrameLimited(r, command, clientFrame)
}

// readFrameLimited reads one frame within lim. The body is read only after
// its announced length has been checked against lim.body.
func readFrameLimited(r *bufio.Reader, command bool, lim frameLimits) (*frame, error) {
	f := &frame{}
	size := 0
	first := true
	for {
		line, err := readLine(r, lim.line)
		if err != nil {
			return nil, err
		}
		size += len(line) + 1
		if size > lim.header {
			return nil, ErrFrameTooBig
		}
		if line == "" {
			if first {
				continue // leading blank lines
			}
			break
		}
		if first && command {
			f.Command = line
			first = false
			continue
		}
		first = false
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			// A line without a colon carries nothing usable; FreeSWITCH
			// ignores it too.
			continue
		}
		f.Headers = append(f.Headers, call.Header{Name: strings.TrimSpace(name), Value: strings.TrimLeft(value, " \t")})
	}
	if cl := f.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(strings.TrimSpace(cl))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w %q", ErrBadLength, cl)
		}
		if n > lim.body {
			return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooBig, n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("event socket body: %w", err)
		}
		f.Body = string(body)
	}
	return f, nil
}

// Server → client frame builders. Each returns the whole frame so it is
// written with one call.

func authRequest() string { return "Content-Type: auth/request\n\n" }

func commandReply(text string) string {
	return "Content-Type: command/reply\nReply-Text: " + oneLine(text) + "\n\n"
}

func apiResponse(body string) string {
	return "Content-Type: api/response\nContent-Length: " + strconv.Itoa(len(body)) + "\n\n" + body
}

func eventFrame(format, body string) string {
	return "Content-Length: " + strconv.Itoa(len(body)) + "\nContent-Type: text/event-" + format + "\n\n" + body
}

func disconnectNotice(msg string) string {
	return "Content-Type: text/disconnect-notice\nContent-Length: " + strconv.Itoa(len(msg)) + "\n\n" + msg
}

// oneLineReplacer is built once: oneLine runs for every command reply and
// every log line sent to a client.
var oneLineReplacer = strings.NewReplacer("\r", " ", "\n", " ")

// oneLine keeps a reply text from breaking the header framing (it may echo
// client input, such as a filter value).
func oneLine(s string) string { return oneLineReplacer.Replace(s) }
