package main

import (
	"io/fs"
	"testing"
)

// TestGCTuner: the percent halves while collection is cheap, down to
// gcMinPercent, doubles while it is dear, up to Go's default, and holds in
// between.
func TestGCTuner(t *testing.T) {
	tu := gcTuner{percent: gcMaxPercent}
	for i, c := range []struct {
		share float64
		want  int
	}{
		{0, 50}, {0.001, 25}, {0, 25}, // cheap: down to the floor
		{0.02, 25},                         // in between: holds
		{0.10, 50}, {0.5, 100}, {0.5, 100}, // dear: back up to the default
		{0.02, 100}, {0.005, 50},
	} {
		if got := tu.next(c.share); got != c.want {
			t.Fatalf("step %d (share %v): percent %d, want %d", i, c.share, got, c.want)
		}
	}
}

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
