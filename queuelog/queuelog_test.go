package queuelog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAppendFlushCloseReopen: lines reach the file in order by Flush, all
// of them by Close, and a second Writer appends after the first's lines.
func TestAppendFlushCloseReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	w, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w.Append("1|NONE|NONE|NONE|QUEUESTART|")
	w.Append("2|c|q|NONE|ENTERQUEUE||5550001|1")
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(t, path); got != "1|NONE|NONE|NONE|QUEUESTART|\n2|c|q|NONE|ENTERQUEUE||5550001|1\n" {
		t.Fatalf("after flush: %q", got)
	}
	for range 1000 {
		w.Append("3|c|q|NONE|ABANDON|1|1|3")
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w.Append("late") // logged, not written
	w, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Append("4|NONE|NONE|NONE|QUEUESTART|")
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if n := len(got); got[:29] != "1|NONE|NONE|NONE|QUEUESTART|\n" || got[n-29:] != "4|NONE|NONE|NONE|QUEUESTART|\n" {
		t.Fatalf("file: %q…%q", got[:40], got[n-40:])
	}
	if count := strings.Count(got, "\n"); count != 1003 {
		t.Fatalf("%d lines, want 1003", count)
	}
}

// TestRotatedFileIsReplaced: after logrotate renames queue_log, the next
// lines start a new file at the path.
func TestRotatedFileIsReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	w, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	w.Append("1|a")
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.Append("2|b")
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, old := read(t, path), read(t, path+".1"); got != "2|b\n" || old != "1|a\n" {
		t.Fatalf("new %q old %q", got, old)
	}
}
