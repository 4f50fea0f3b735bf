package main

import (
	"context"
	"runtime"
	"runtime/debug"
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
// runs a collection. That lowers the heap goal to what is live, and the
// runtime's background scavenger then hands the rest back at its own pace.
// The ended calls' SIP transactions (their BYE's, kept 64*T1 for
// retransmissions) are still live then, a few objects in each of many
// spans that stay in use, so a second collection follows once they are
// gone (transactionLinger); that one also returns the free pages at once
// (debug.FreeOSMemory) rather than at the scavenger's pace, which left
// 1,000 callers' heap at 2.2 times the baseline after 60 s. That is two
// collections per drained load, not a periodic one; nothing happens while
// channels come and go at a steady level.
func returnMemoryAfterLoad(ctx context.Context, count func() int, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var d drainWatch
	var again <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-again:
			again = nil
			debug.FreeOSMemory()
		case <-t.C:
			if d.drained(count()) {
				runtime.GC()
				again = time.After(transactionLinger)
			}
		}
	}
}

const (
	drainCheckInterval = 5 * time.Second
	// transactionLinger: sipgo keeps a finished non-INVITE server
	// transaction for Timer J (64*T1 = 32 s), plus a margin.
	transactionLinger = 40 * time.Second
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
