package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// The Go runtime collects when the heap has grown by GOGC (100 %) over what
// the last collection left live, and after a burst of call set-ups the
// garbage stays until the heap reaches that goal: at 160 calls/s ccpbx
// peaked at 270-312 MB of RSS (BENCHMARKS.md, "Issue 15 rows"), and 1,000
// callers waiting on music took ~70 KB each, twice what they keep live.
// ccpbx keeps GOGC and sets a soft memory limit (debug.SetMemoryLimit)
// that follows the live heap:
//
//	limit = max(floor, live heap × 1.5 + the runtime's non-heap memory)
//
// The limit never goes below 1.5 times what is live, so the collector
// never runs more often than GOGC=50 would, and a large load is never held
// under a limit it cannot meet (which would have the collector run
// constantly). The floor depends on how fast the heap is allocated:
//
//   - busy (gcQuietRate or more per second, e.g. calls being set up):
//     gcFloor. A collection costs CPU in proportion to the live heap, and
//     their number to the allocation rate, so a tight limit here costs
//     CPU per call (a 64 MiB floor took 160 calls/s from ~7 to ~10 ms of
//     CPU per served call; BENCHMARKS.md, branch mem). gcFloor still holds
//     that load's peak under 200 MB.
//   - quiet (callers waiting on music, an idle PBX): gcQuietFloor. There
//     collections are rare whatever the limit, and the tighter limit lets
//     the runtime collect the set-up garbage a ramp of calls left and
//     return the memory.
//
// The limit is recomputed every gcPolicyInterval from runtime/metrics.
//
// In a container with a memory limit (cgroup v2 memory.max) the limit is
// also never above gcLimitShare of it, so the collector works harder as the
// process nears the limit instead of the kernel killing it.
//
// GOGC or GOMEMLIMIT set in the environment means the operator chose: then
// ccpbx leaves the runtime alone.

const (
	gcLimitShare = 0.9
	// gcFloor is the memory the runtime may use under a busy load before
	// the limit makes it collect more often than GOGC=100 would.
	gcFloor = 160 << 20
	// gcQuietFloor is that when allocation is quiet (an idle ccpbx uses
	// ~15-20 MiB).
	gcQuietFloor = 48 << 20
	// gcQuietRate is the allocation rate under which the heap is quiet.
	gcQuietRate = 4 << 20
	// gcPolicyInterval is how often the limit follows the live heap.
	gcPolicyInterval = time.Second
)

// gcOperatorSet reports whether the environment sets the collector.
func gcOperatorSet(getenv func(string) string) bool {
	return getenv("GOGC") != "" || getenv("GOMEMLIMIT") != ""
}

// gcLimit is the soft memory limit for a live heap of live bytes with
// nonHeap bytes of other runtime memory (stacks, metadata), allocated at
// rate bytes per second, and a container's ceiling (0: none).
func gcLimit(live, nonHeap, rate, ceiling uint64) int64 {
	floor := uint64(gcFloor)
	if rate < gcQuietRate {
		floor = gcQuietFloor
	}
	l := max(floor, satAdd(satAdd(live, live/2), nonHeap))
	if ceiling > 0 {
		l = min(l, ceiling)
	}
	return int64(min(l, math.MaxInt64))
}

// satAdd is a+b, or the largest uint64 where that overflows.
func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// gcMetrics are what gcLimit is computed from (runtime/metrics).
var gcMetrics = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/heap/allocs:bytes",
}

// runGCPolicy applies the limit and keeps it following the live heap
// until ctx ends, unless the environment set the collector.
func runGCPolicy(ctx context.Context, log *slog.Logger) {
	if gcOperatorSet(os.Getenv) {
		log.Info("GOGC or GOMEMLIMIT set in the environment: the runtime's collector is left as set")
		return
	}
	var ceiling uint64
	if limit, ok := cgroupMemoryMax(os.ReadFile); ok {
		ceiling = uint64(float64(limit) * gcLimitShare)
		log.Info("memory limit from the container", "memory.max", limit, "ceiling", ceiling)
	}
	samples := make([]metrics.Sample, len(gcMetrics))
	for i, name := range gcMetrics {
		samples[i].Name = name
	}
	var allocs uint64 // at the last apply
	last := time.Now()
	apply := func() {
		metrics.Read(samples)
		var v [7]uint64
		for i := range samples {
			if samples[i].Value.Kind() == metrics.KindUint64 {
				v[i] = samples[i].Value.Uint64()
			}
		}
		heap := v[2] + v[3] + v[4] + v[5]
		nonHeap := uint64(0)
		if v[1] > heap {
			nonHeap = v[1] - heap
		}
		now := time.Now()
		rate := uint64(math.MaxUint64) // busy until measured
		if allocs > 0 && v[6] >= allocs {
			rate = uint64(float64(v[6]-allocs) / max(now.Sub(last).Seconds(), 0.001))
		}
		allocs, last = v[6], now
		debug.SetMemoryLimit(gcLimit(v[0], nonHeap, rate, ceiling))
	}
	apply()
	t := time.NewTicker(gcPolicyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			apply()
		}
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
