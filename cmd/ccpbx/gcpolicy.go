package main

import (
	"log/slog"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// In a container with a memory limit (cgroup v2 memory.max) ccpbx sets the
// Go runtime's soft memory limit to gcLimitShare of it, so the collector
// works harder as the process nears the limit instead of the kernel killing
// it. GOGC or GOMEMLIMIT set in the environment means the operator chose:
// then ccpbx leaves the runtime alone.
//
// ccpbx does not lower the GC percent by default. A policy that halved it
// (down to 25) while collection cost under 1 % of a core was tried against
// bench/moh_mem.sh and made no measurable difference to the RSS of 1,000
// callers waiting on music (BENCHMARKS.md, "Memory per caller waiting on
// music"): what the heap holds there is live objects and partly used spans
// from the ramp, not collector headroom, and during the ramp collection is
// not cheap, so such a policy stays at the default anyway.

const gcLimitShare = 0.9

// gcOperatorSet reports whether the environment sets the collector.
func gcOperatorSet(getenv func(string) string) bool {
	return getenv("GOGC") != "" || getenv("GOMEMLIMIT") != ""
}

// setMemoryLimit applies the container's limit unless the environment
// set the collector.
func setMemoryLimit(log *slog.Logger) {
	if gcOperatorSet(os.Getenv) {
		return
	}
	if limit, ok := cgroupMemoryMax(os.ReadFile); ok {
		soft := int64(float64(limit) * gcLimitShare)
		debug.SetMemoryLimit(soft)
		log.Info("memory limit from the container", "memory.max", limit, "GOMEMLIMIT", soft)
	}
}

// cgroupMemoryMax reads the cgroup v2 memory limit of this process's
// cgroup (the "0::" line of /proc/self/cgroup under /sys/fs/cgroup); "max"
// (none), cgroup v1 or no cgroup file gives false.
func cgroupMemoryMax(readFile func(string) ([]byte, error)) (int64, bool) {
	b, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		rel, ok := strings.CutPrefix(strings.TrimSpace(line), "0::")
		if !ok {
			continue
		}
		v, err := readFile(path.Join("/sys/fs/cgroup", path.Clean("/"+rel), "memory.max"))
		if err != nil {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		return n, err == nil && n > 0
	}
	return 0, false
}
