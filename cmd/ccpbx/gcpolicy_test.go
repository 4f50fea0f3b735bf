package main

import (
	"io/fs"
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
