package sip

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// overload decides when to shed load. sipgo starts a goroutine per request
// and never says no, so past its capacity a server accepts everything,
// answers all of it late, and UDP clients retransmit until nothing
// completes. What grows first, whatever the work is, is the time runnable
// goroutines wait for a CPU: the Go scheduler measures it for every
// goroutine (runtime/metrics /sched/latencies:seconds). Every
// overloadInterval the meter takes the 90th percentile of the waits in that
// interval; above the limit, new INVITEs and REGISTERs are answered 503 with
// Retry-After before any digest, database or dialog work (admit), and the
// first interval below it serves them again. Requests inside dialogs (ACK,
// BYE, re-INVITE, CANCEL) are never shed: they finish work already
// admitted.
type overload struct {
	limit time.Duration
	on    atomic.Bool
	// shed counts requests answered 503 for overload.
	shed atomic.Uint64
	// last is the most recent measured delay, for logs and tests.
	last atomic.Int64
}

const (
	overloadInterval = 100 * time.Millisecond
	schedLatencies   = "/sched/latencies:seconds"
)

func (o *overload) shedding() bool { return o != nil && o.on.Load() }

// run samples until ctx ends.
func (o *overload) run(ctx context.Context, log func(on bool, delay time.Duration)) {
	sample := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return
	}
	prev := append([]uint64(nil), sample[0].Value.Float64Histogram().Counts...)
	t := time.NewTicker(overloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			o.on.Store(false)
			return
		case <-t.C:
		}
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		d := percentileDelta(h, prev, 0.9)
		copy(prev, h.Counts)
		o.last.Store(int64(d))
		on := d > o.limit
		if o.on.Swap(on) != on && log != nil {
			log(on, d)
		}
	}
}

// percentileDelta is the q-quantile of the samples h gained since prev
// (the upper bound of the bucket it falls in; 0 with no samples).
func percentileDelta(h *metrics.Float64Histogram, prev []uint64, q float64) time.Duration {
	var total uint64
	for i, c := range h.Counts {
		total += c - prev[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*q) + 1
	var seen uint64
	for i, c := range h.Counts {
		seen += c - prev[i]
		if seen >= want {
			// Buckets[i+1] is the bucket's upper bound (may be +Inf).
			up := h.Buckets[i+1]
			if up > 3600 {
				up = h.Buckets[i]
			}
			return time.Duration(up * float64(time.Second))
		}
	}
	return 0
}
