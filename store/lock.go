package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the lock file Open holds inside the data directory while
// the store is open, so that a second ccpbx on the same directory refuses
// to start instead of sharing the database and the CDR files.
const LockFileName = "ccpbx.lock"

// ErrInUse is wrapped by Open's error when another process (or another
// open Store in this one) holds the data directory.
var ErrInUse = errors.New("data directory in use")

// InUseError says who holds the data directory.
type InUseError struct {
	Dir string
	// PID is the holder's process id as it wrote it in the lock file
	// (0 when unknown).
	PID int
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("data directory %s is in use by another ccpbx (pid %d, lock %s)", e.Dir, e.PID, filepath.Join(e.Dir, LockFileName))
	}
	return fmt.Sprintf("data directory %s is in use by another ccpbx (lock %s)", e.Dir, filepath.Join(e.Dir, LockFileName))
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// dirLock is a held lock on a data directory. The file stays on disk after
// release: removing it would let a third process lock a fresh file while a
// second still waits on the old one.
type dirLock struct{ f *os.File }

// lockDir takes the data directory's lock without waiting and writes our
// pid into it. The lock is the kernel's (flock), so it is released when
// the process ends however it ends, kill -9 included.
func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	if !held {
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		f.Close()
		return nil, &InUseError{Dir: dir, PID: pid}
	}
	// The pid is informational (the error above names it); the lock is
	// what counts, so a failure to write it is not fatal.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release drops the lock; it may be called more than once.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	unlock(l.f)
	l.f.Close()
	l.f = nil
}
