package sip

import (
	"context"
	"math/bits"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// overload decides when to shed load. sipgo starts a goroutine per request
// and never says no, so past its capacity a server accepts everything,
// answers all of it late, and UDP clients retransmit until nothing
// completes. Two queues grow when that happens, and the meter watches
// both every overloadInterval:
//   - requests waiting inside their handler for a shared resource: a
//     profile of 3,200 REGISTER/s showed the process at a quarter of a
//     core while REGISTERs queued for the registrar's database writes. The
//     handling time of every request that is not an INVITE (an INVITE's
//     handler lives for the whole call setup) goes into a histogram;
//   - goroutines waiting for a CPU, which the Go scheduler measures for
//     every goroutine (runtime/metrics /sched/latencies:seconds).
//
// It takes the 90th percentile of each in the interval; when either is
// over the limit twice in a row, new INVITEs and REGISTERs are answered 503
// with Retry-After before any digest, database or dialog work (admit), and
// the first interval with both under it serves them again.
//
// Shedding on and off alone lets a burst in at every "off" and so keeps a
// queue; REGISTERs therefore also pass a concurrency limit that follows
// the same measure (additive increase, multiplicative decrease, as TCP's
// window): each interval whose handling time is over the limit cuts the
// number of REGISTERs that may be in handling at once by a quarter, each
// interval under it that used the whole allowance raises it by 16. A
// REGISTER beyond it is answered 503 with Retry-After at once. With a
// store that commits X registrations a second, the allowance settles near
// X times the limit, so admitted REGISTERs wait at most about the limit. Requests inside
// dialogs (ACK, BYE, re-INVITE, CANCEL) are never shed: they finish work
// already admitted. (Both histograms have power-of-two buckets, so the
// limit acts at the next bucket bound: 100 ms at 134 ms.)
type overload struct {
	limit time.Duration
	on    atomic.Bool
	// shed counts requests answered 503 for overload; early those of them
	// answered from the UDP read loop (shedEarly).
	shed, early atomic.Uint64
	// last is the most recent measured delay, for logs and tests.
	last atomic.Int64
	// handling counts requests by handling time: bucket i holds times of
	// bits.Len64(ns) == i.
	handling [64]atomic.Uint64

	// The REGISTER concurrency limit: inflight in handling, allowed at
	// most; full is set when an admission found inflight at allowed.
	inflight, allowed atomic.Int64
	full              atomic.Bool
}

// Bounds of the REGISTER concurrency limit.
const (
	minAllowed     = 8
	maxAllowed     = 4096
	initialAllowed = 256
	allowedStep    = 16
)

func newOverload(limit time.Duration) *overload {
	o := &overload{limit: limit}
	o.allowed.Store(initialAllowed)
	return o
}

// acquire admits one REGISTER into handling, or says no.
func (o *overload) acquire() bool {
	if o == nil {
		return true
	}
	if o.inflight.Add(1) > o.allowed.Load() {
		o.inflight.Add(-1)
		o.full.Store(true)
		return false
	}
	return true
}

func (o *overload) release() {
	if o != nil {
		o.inflight.Add(-1)
	}
}

// adjust moves the REGISTER allowance after an interval whose handling
// time was handled.
func (o *overload) adjust(handled time.Duration) {
	a := o.allowed.Load()
	switch {
	case handled > o.limit:
		a = max(minAllowed, a*3/4)
	case o.full.Load():
		a = min(maxAllowed, a+allowedStep)
	}
	o.full.Store(false)
	o.allowed.Store(a)
}

// observe records how long a request's handling took.
func (o *overload) observe(d time.Duration) {
	if o == nil || d < 0 {
		return
	}
	o.handling[bits.Len64(uint64(d))].Add(1)
}

// handlingP90 is the 90th percentile of the handling times recorded since
// prev (updated to now).
func (o *overload) handlingP90(prev *[64]uint64) time.Duration {
	var cur [64]uint64
	var total uint64
	for i := range cur {
		cur[i] = o.handling[i].Load()
		total += cur[i] - prev[i]
	}
	defer func() { *prev = cur }()
	if total == 0 {
		return 0
	}
	want := uint64(float64(total)*0.9) + 1
	var seen uint64
	for i := range cur {
		seen += cur[i] - prev[i]
		if seen >= want {
			return time.Duration(uint64(1) << i) // the bucket's upper bound
		}
	}
	return 0
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
	var prevHandling [64]uint64
	t := time.NewTicker(overloadInterval)
	defer t.Stop()
	wasAbove := false
	for {
		select {
		case <-ctx.Done():
			o.on.Store(false)
			return
		case <-t.C:
		}
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		handled := o.handlingP90(&prevHandling)
		o.adjust(handled)
		d := max(percentileDelta(h, prev, 0.9), handled)
		copy(prev, h.Counts)
		o.last.Store(int64(d))
		// Two intervals in a row over the limit start shedding, so a
		// single burst (a GC cycle, a flood of retransmissions) does not;
		// one interval under it ends shedding.
		above := d > o.limit
		on := above && (o.on.Load() || wasAbove)
		wasAbove = above
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
