package main

import (
	"context"
	"log/slog"
	"os"
	"path"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// ccpbx's default garbage-collector policy. With Go's default (GOGC=100)
// the heap grows to twice what is live before a collection, so each caller
// waiting on music cost twice its live memory in RSS (BENCHMARKS.md,
// "Memory per caller waiting on music"). Waiting callers allocate almost
// nothing (the packet paths allocate nothing), so collecting more often
// costs them little CPU; a burst of calls allocates a lot, and there a
// tighter heap would cost real CPU. So the policy follows what collection
// costs:
//
//   - every gcTuneInterval it measures the CPU the collector used (mark
//     assists, dedicated mark workers and pauses; not the idle-time
//     workers, which only use otherwise idle cores) as a share of one core;
//   - under gcCheapShare it halves the GC percent, down to gcMinPercent
//     (the heap then grows to 1.25 times what is live);
//   - over gcDearShare it doubles it, up to Go's default 100.
//
// In a container with a memory limit (cgroup v2 memory.max) the runtime's
// soft memory limit is set to gcLimitShare of it, so the collector works
// harder before the kernel would kill the process.
//
// GOGC or GOMEMLIMIT set in the environment means the operator chose: then
// ccpbx changes neither.

const (
	gcTuneInterval = 5 * time.Second
	gcMinPercent   = 25
	gcMaxPercent   = 100
	gcCheapShare   = 0.01 // of one core
	gcDearShare    = 0.04
	gcLimitShare   = 0.9
)

// gcOperatorSet reports whether the environment sets the collector.
func gcOperatorSet(getenv func(string) string) bool {
	return getenv("GOGC") != "" || getenv("GOMEMLIMIT") != ""
}

// gcTuner holds the percent in force and moves it by the measured cost.
type gcTuner struct{ percent int }

// next returns the GC percent for the next interval given the share of
// one core the collector used in the last.
func (t *gcTuner) next(share float64) int {
	switch {
	case share < gcCheapShare && t.percent > gcMinPercent:
		t.percent = max(t.percent/2, gcMinPercent)
	case share > gcDearShare && t.percent < gcMaxPercent:
		t.percent = min(t.percent*2, gcMaxPercent)
	}
	return t.percent
}

// gcCPUMetrics are the collector's CPU that takes time from the program.
var gcCPUMetrics = []string{
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/mark/dedicated:cpu-seconds",
	"/cpu/classes/gc/pause:cpu-seconds",
}

// gcCPU returns the collector's CPU seconds so far (the runtime's own
// estimate, updated at each collection).
func gcCPU(samples []metrics.Sample) float64 {
	metrics.Read(samples)
	var s float64
	for _, m := range samples {
		if m.Value.Kind() == metrics.KindFloat64 {
			s += m.Value.Float64()
		}
	}
	return s
}

// runGCPolicy applies the policy until ctx ends, unless the environment
// set the collector.
func runGCPolicy(ctx context.Context, log *slog.Logger) {
	if gcOperatorSet(os.Getenv) {
		log.Info("garbage collector left as the environment sets it", "GOGC", os.Getenv("GOGC"), "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
		return
	}
	if limit, ok := cgroupMemoryMax(os.ReadFile); ok {
		soft := int64(float64(limit) * gcLimitShare)
		debug.SetMemoryLimit(soft)
		log.Info("memory limit from the container", "memory.max", limit, "GOMEMLIMIT", soft)
	}
	samples := make([]metrics.Sample, len(gcCPUMetrics))
	for i, name := range gcCPUMetrics {
		samples[i].Name = name
	}
	t := gcTuner{percent: gcMaxPercent}
	tick := time.NewTicker(gcTuneInterval)
	defer tick.Stop()
	last, lastAt := gcCPU(samples), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			used := gcCPU(samples)
			share := (used - last) / now.Sub(lastAt).Seconds()
			last, lastAt = used, now
			if p := t.percent; t.next(share) != p {
				debug.SetGCPercent(t.percent)
				log.Debug("GC percent", "percent", t.percent, "gc_cpu_share", share)
			}
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
