package main

import (
	"context"
	"io/fs"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestGCOperatorSet(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if gcOperatorSet(env(nil)) {
		t.Fatal("empty environment counted as set")
	}
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if !gcOperatorSet(env(map[string]string{k: "50"})) {
			t.Fatalf("%s set but policy would run", k)
		}
	}
}

func TestCgroupMemoryMax(t *testing.T) {
	files := map[string]string{}
	read := func(name string) ([]byte, error) {
		if v, ok := files[name]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
	if _, ok := cgroupMemoryMax(read); ok {
		t.Fatal("limit without /proc/self/cgroup")
	}
	files["/proc/self/cgroup"] = "4:memory:/x\n0::/svc/ccpbx\n"
	if _, ok := cgroupMemoryMax(read); ok {
		t.Fatal("limit without memory.max")
	}
	files["/sys/fs/cgroup/svc/ccpbx/memory.max"] = "max\n"
	if _, ok := cgroupMemoryMax(read); ok {
		t.Fatal(`"max" read as a limit`)
	}
	files["/sys/fs/cgroup/svc/ccpbx/memory.max"] = "536870912\n"
	if n, ok := cgroupMemoryMax(read); !ok || n != 512<<20 {
		t.Fatalf("limit %d %v, want 512 MiB", n, ok)
	}
	files["/proc/self/cgroup"] = "0::/../../etc\n"
	files["/sys/fs/cgroup/etc/memory.max"] = "1"
	if n, ok := cgroupMemoryMax(read); !ok || n != 1 {
		t.Fatalf("a path with .. left /sys/fs/cgroup: %d %v", n, ok)
	}
}

// TestGCLimit: the soft limit is a floor until 1.5 times the live heap
// (plus the runtime's other memory) passes it, then follows the live heap,
// so the collector never runs more often than GOGC=50 would; the floor is
// lower while allocation is quiet; a container's ceiling caps it.
func TestGCLimit(t *testing.T) {
	const mb = 1 << 20
	busy, quiet := uint64(gcQuietRate), uint64(gcQuietRate-1)
	for _, c := range []struct {
		live, nonHeap, rate, ceiling uint64
		want                         int64
	}{
		{0, 0, busy, 0, gcFloor},
		{0, 0, quiet, 0, gcQuietFloor},
		{40 * mb, 10 * mb, busy, 0, gcFloor},
		{40 * mb, 10 * mb, quiet, 0, 70 * mb},          // 1.5 × 40 + 10
		{100 * mb, 10 * mb, busy, 0, gcFloor},          // 160 MB: at the floor
		{120 * mb, 20 * mb, busy, 0, 200 * mb},         // 1.5 × 120 + 20
		{1000 * mb, 50 * mb, busy, 0, 1550 * mb},       // a large load: GOGC=50's goal, never below live
		{1000 * mb, 50 * mb, quiet, 0, 1550 * mb},      // the same
		{1000 * mb, 50 * mb, busy, 900 * mb, 900 * mb}, // a container's ceiling wins
		{10 * mb, 0, busy, 40 * mb, 40 * mb},           // even below the floor
		{math.MaxUint64 / 2, math.MaxUint64 / 2, busy, 0, math.MaxInt64},
	} {
		if got := gcLimit(c.live, c.nonHeap, c.rate, c.ceiling); got != c.want {
			t.Errorf("gcLimit(%d MB live, %d MB other, %d B/s, ceiling %d MB) = %d MB, want %d MB",
				c.live/mb, c.nonHeap/mb, c.rate, c.ceiling/mb, got/mb, c.want/mb)
		}
	}
}

// TestGCPolicy: without GOGC or GOMEMLIMIT in the environment the policy
// sets a soft memory limit of at least gcFloor and at least the live heap;
// with either set it leaves the runtime's limit alone.
func TestGCPolicy(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // apply once, then return

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	runGCPolicy(ctx, slog.New(slog.DiscardHandler))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if got := debug.SetMemoryLimit(-1); got < gcQuietFloor || got == math.MaxInt64 || uint64(got) < ms.HeapAlloc {
		t.Fatalf("limit %d, want at least %d and the heap (%d)", got, gcQuietFloor, ms.HeapAlloc)
	}

	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Setenv("GOGC", "")
		t.Setenv("GOMEMLIMIT", "")
		t.Setenv(k, "200")
		debug.SetMemoryLimit(math.MaxInt64)
		runGCPolicy(ctx, slog.New(slog.DiscardHandler))
		if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
			t.Fatalf("%s set: the policy set a limit (%d)", k, got)
		}
	}
}
