package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenRefusesALockedDataDir(t *testing.T) {
	dir := t.TempDir()
	first, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	dbInfo, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}

	_, err = Open(dir)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want an InUseError", err)
	}
	if inUse.PID != os.Getpid() || !strings.Contains(err.Error(), "pid ") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q (pid %d) should name the holder's pid %d and the directory", err, inUse.PID, os.Getpid())
	}
	// Refused before touching the database.
	if after, err := os.Stat(filepath.Join(dir, FileName)); err != nil || !after.ModTime().Equal(dbInfo.ModTime()) || after.Size() != dbInfo.Size() {
		t.Errorf("database changed by the refused Open")
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	first.Close() // a second Close must not release someone else's lock
	again, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	defer again.Close()
	b, err := os.ReadFile(filepath.Join(dir, LockFileName))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		t.Errorf("lock file holds %q, %v; want our pid", b, err)
	}
}
