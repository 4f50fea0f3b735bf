// Package pgtest gives tests a PostgreSQL database of their own: one
// throwaway server per test binary (initdb in a temporary directory,
// listening on 127.0.0.1 and a free port, fsync off), started on first use,
// and a fresh database per call of NewDatabase.
//
// The server belongs to the test binary: a small shell watches a pipe that
// only this process holds open, and when the process ends, however it ends,
// the pipe closes and the shell stops the server and removes its directory.
// As root (CI), the server runs as the postgres user, since initdb and
// postgres refuse root.
//
// Without PostgreSQL's binaries (Debian's postgresql package), NewDatabase
// skips the test, or fails it when CI=true.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ccpbx/internal/pbxtest"
)

// startTimeout bounds initdb plus the server's start on a loaded machine.
const startTimeout = 90 * time.Second

var (
	once    sync.Once
	srv     *server
	srvErr  error
	missing bool // no PostgreSQL binaries
	dbSeq   atomic.Int64
)

type server struct {
	dir  string
	port int
	// keep is the write end of the pipe the watcher shell reads; it must
	// stay reachable (a finalizer would close it) for the process's life.
	keep *os.File
}

// NewDatabase creates an empty database on the test binary's server and
// returns its DSN (keyword/value form, user ccpbx, no password). The
// server's locale is C; NewDatabaseWith gives another.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return NewDatabaseWith(t, "")
}

// NewDatabaseWith is NewDatabase with options for CREATE DATABASE, such as
// "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" for a
// database that sorts text the way most production servers do.
func NewDatabaseWith(t testing.TB, options string) string {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if missing {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: PostgreSQL is not installed (CI=true: .ci/run installs the postgresql package): %v", srvErr)
		}
		t.Skipf("pgtest: PostgreSQL is not installed: %v", srvErr)
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, srv.dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" "+options); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return srv.dsn(name)
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=ccpbx dbname=%s sslmode=disable connect_timeout=10", s.port, db)
}

// binDir finds initdb and postgres: Debian's /usr/lib/postgresql/<v>/bin
// (the newest), else PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no initdb in /usr/lib/postgresql/*/bin or PATH")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// start runs initdb and the server, and waits until it accepts
// connections. A failed attempt (the free port taken meanwhile) is retried
// from scratch.
func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		missing = true
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startOnce(bin, cred)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startOnce(bin string, cred *syscall.Credential) (*server, error) {
	// As root the server runs as postgres, which must reach the directory:
	// /tmp, whatever TMPDIR says (also keeps the socket path short).
	base := ""
	if cred != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "ccpbx-pgtest-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "ccpbx", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// From here the watcher shell owns dir: it removes it once the server
	// is gone and the pipe closed.
	return launch(bin, dir, data, port, cred)
}

// launch starts the watcher shell, which starts the server, and waits for
// the server to accept connections.
func launch(bin, dir, data string, port int, cred *syscall.Credential) (*server, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	logPath := filepath.Join(dir, fmt.Sprintf("postgres-%d.log", port))
	// The server runs until the pipe closes (this process ended), then is
	// stopped fast and its directory removed. A server that fails to start
	// exits by itself; the shell then waits for the pipe to clean up.
	script := `"$1/postgres" -D "$2" -p "$3" -k "$4" -c listen_addresses=127.0.0.1 -c fsync=off \
  -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60 \
  -c max_wal_size=256MB -c log_min_messages=warning >"$5" 2>&1 </dev/null &
pid=$!
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$4"
`
	sh := exec.Command("/bin/sh", "-c", script, "sh", bin, data, strconv.Itoa(port), dir, logPath)
	sh.Stdin = r
	sh.Dir = dir
	// Its own process group: a ^C to go test must not reach the shell
	// before the server (the pipe closing is the one stop signal).
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	if err := sh.Start(); err != nil {
		w.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	s := &server{dir: dir, port: port, keep: w}
	var log []byte
	up := false
	pbxtest.Until(startTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err == nil {
			c.Close(context.Background())
			up = true
			return true
		}
		// A server that could not start (port taken) has written why and
		// exited: no point waiting longer.
		log, _ = os.ReadFile(logPath)
		return strings.Contains(string(log), "could not create any TCP/IP sockets") ||
			strings.Contains(string(log), "could not bind")
	})
	if !up {
		w.Close() // the shell stops what is left and removes dir
		return nil, fmt.Errorf("postgres on port %d did not start:\n%s", port, log)
	}
	return s, nil
}

// credential is the postgres user's when running as root, else nil.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user (postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
