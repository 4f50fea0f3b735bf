package api

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// CLIArgs are what `ccpbx cli` needs; cmd/ccpbx fills them from its flags
// and the configuration file.
type CLIArgs struct {
	// Addr and Password of the event socket.
	Addr     string
	Password string
	// Command, when set, is run once (fs_cli -x) and the CLI exits.
	Command string
	// Events, when set, subscribes ("CUSTOM callcenter::info", "ALL") and
	// prints events until the server goes away.
	Events string
	// Timeout bounds connecting and logging in; 0 means 5 s. Replies are
	// waited for as long as they take, as with fs_cli (an originate rings
	// for up to a minute).
	Timeout time.Duration
}

// CLIPrompt is the interactive prompt.
const CLIPrompt = "ccpbx> "

// RunCLI is fs_cli for ccpbx. With Command it prints the reply body plus one
// newline, as `fs_cli -x` does; with Events it prints each event as fs_cli
// does ("RECV EVENT", the decoded headers, a blank line); otherwise it reads
// commands from stdin at a prompt. It returns the process exit code: 0, or
// 1 when the socket cannot be reached or refuses the password.
func RunCLI(args CLIArgs, stdin io.Reader, stdout, stderr io.Writer) int {
	timeout := args.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	addr := args.Addr
	if addr == "" {
		addr = DefaultEventSocketAddr
	}
	c, err := Dial(addr, args.Password, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "Error connecting to %s: %v\n", addr, err)
		return 1
	}
	defer c.Close()
	c.SetTimeout(0)

	out := &lockedWriter{w: stdout}
	switch {
	case args.Command != "":
		body, err := c.API(args.Command)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		fmt.Fprintf(out, "%s\n", body)
		return 0
	case args.Events != "":
		if err := c.Subscribe(FormatPlain, args.Events); err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		for {
			e, err := c.NextEvent()
			if err != nil {
				return 0
			}
			printEvent(out, e)
		}
	default:
		return interactive(c, stdin, out, stderr)
	}
}

// printEvent writes one event as fs_cli shows it.
func printEvent(w io.Writer, e *ClientEvent) {
	if e.Format == "log" {
		io.WriteString(w, e.Body)
		return
	}
	if e.Format == FormatPlain {
		fmt.Fprintf(w, "RECV EVENT\n%s\n", e.Plain())
		return
	}
	fmt.Fprintf(w, "RECV EVENT\n%s\n\n", e.Raw)
}

// lockedWriter keeps event output and command output from interleaving
// mid-line in interactive mode.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

const cliHelp = `Command                    Description
-----------------------------------------------
/help                      Help
/exit, /quit, /bye, ...    Exit the program.
/event, /noevents, /nixevent, /filter, /log, /nolog
                           Event socket commands, sent as typed (without /).
Anything else is run as an API command ("show registrations", "status").
`

// interactive is the prompt loop: each line is an API command, or a
// /-command for the socket itself, as in fs_cli.
func interactive(c *Client, stdin io.Reader, out *lockedWriter, stderr io.Writer) int {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case e := <-c.Events():
				printEvent(out, e)
			case <-stop:
				return
			case <-c.Done():
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 4096), maxLineLen)
	for {
		fmt.Fprint(out, CLIPrompt)
		if !sc.Scan() {
			fmt.Fprintln(out)
			return 0
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		switch strings.ToLower(line) {
		case "/exit", "/quit", "/bye", "...", "exit", "quit", "bye":
			return 0
		case "/help":
			fmt.Fprint(out, cliHelp)
			continue
		}
		if strings.HasPrefix(line, "/") {
			word := strings.ToLower(firstWord(line[1:]))
			switch word {
			case "event", "noevents", "nixevent", "filter", "log", "nolog":
				text, err := c.Command(line[1:])
				if err != nil {
					fmt.Fprintf(stderr, "%v\n", err)
					return 1
				}
				fmt.Fprintf(out, "%s\n", text)
			default:
				fmt.Fprintf(out, "Unknown command [%s]\n", line)
			}
			continue
		}
		body, err := c.API(line)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return 1
		}
		fmt.Fprintf(out, "%s\n", body)
	}
}
