package main

import (
	"context"
	"runtime"
	"time"
)

// After a load the Go runtime keeps the heap it grew to: its garbage
// collector runs when allocation reaches the goal set by the last cycle,
// and an idle PBX allocates little, so the next cycle (and with it the
// scavenger returning free pages to the OS) can be two minutes away (the
// runtime's forced GC period). BENCHMARKS.md, "Memory after load": 147 MB
// RSS for over 50 s after 500 callers left, against 25 MB at start.
//
// returnMemoryAfterLoad watches the number of channels and, once a load
// of at least drainMinPeak channels has fallen to a quarter of its peak,
// runs one collection. That lowers the heap goal to what is live, and the
// runtime's background scavenger then hands the rest back at its own pace.
// It is one collection per drained load, not a periodic one; it adds
// nothing while channels come and go at a steady level.
func returnMemoryAfterLoad(ctx context.Context, count func() int, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var d drainWatch
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if d.drained(count()) {
			runtime.GC()
		}
	}
}

const (
	drainCheckInterval = 5 * time.Second
	// drainMinPeak: below this many channels the heap a load leaves is a
	// few MB and not worth a collection.
	drainMinPeak = 50
)

// drainWatch tells when a load has drained: the channel count fell to a
// quarter of the peak seen since the last drain, and the peak was at least
// drainMinPeak. A load that keeps falling slowly gets at most one
// collection per fourfold drop.
type drainWatch struct{ peak int }

func (d *drainWatch) drained(n int) bool {
	if n > d.peak {
		d.peak = n
		return false
	}
	if d.peak >= drainMinPeak && n <= d.peak/4 {
		d.peak = 0 // the next load is measured from here
		return true
	}
	return false
}
