package media

import "sync/atomic"

// RTPStats are the engine's packet counters since it started, summed over
// every leg it has had: what a metrics scrape reports.
type RTPStats struct {
	PacketsIn  uint64 // accepted RTP packets (audio, DTMF, CN)
	PacketsOut uint64 // RTP packets sent (relayed, generated, music)
	// Late counts accepted packets whose sequence number was not past the
	// highest one seen from their source (reordered or duplicated).
	Late uint64
	// Lost counts sequence numbers skipped when a source's sequence jumped
	// forward; a skipped packet that arrives later also counts as Late.
	Lost uint64
	// SourceRejected counts packets the RTP source policy refused: from a
	// source other than the accepted (latched) one, on probation, or before
	// any SDP said who may send.
	SourceRejected uint64
}

// rtpTotals are one stripe of the engine-wide counters behind RTPStats.
// The packet path adds to its leg's stripe next to the leg's own counters:
// one atomic add each, no lock, no allocation. out, added by whoever sends
// (a music clock, the other leg's poller), has a cache line of its own
// apart from the counters the leg's poller adds to.
type rtpTotals struct {
	in, late, lost, rejected atomic.Uint64
	_                        [64 - 4*8]byte
	out                      atomic.Uint64
	_                        [64 - 8]byte
}

// rtpStripes is the engine's counters split over stripes, legs spread
// over them by port: with one set, every packet of every leg added to the
// same cache lines from every CPU, and the lines' moves between CPUs
// showed in the profile of 1,000 callers on music (issue 15).
type rtpStripes struct {
	_ [64]byte // keeps the first stripe off the cache line of the fields before
	s [16]rtpTotals
}

func (r *rtpStripes) forPort(port int) *rtpTotals { return &r.s[(port>>1)%len(r.s)] }

// Stats returns the engine's RTP counters since start.
func (e *Engine) Stats() RTPStats {
	var st RTPStats
	for i := range e.rtp.s {
		t := &e.rtp.s[i]
		st.PacketsIn += t.in.Load()
		st.PacketsOut += t.out.Load()
		st.Late += t.late.Load()
		st.Lost += t.lost.Load()
		st.SourceRejected += t.rejected.Load()
	}
	return st
}

// Sequence gaps past these bounds are a restarted or reset sender, not loss
// or reordering (RFC 3550 A.1's MAX_DROPOUT and MAX_MISORDER).
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// seqTracker follows the highest sequence number of the source a leg
// accepts packets from; the leg's reader goroutine owns it.
type seqTracker struct {
	ssrc    uint32
	max     uint16
	started bool
}

// feed accounts one accepted packet into t: a packet past the highest
// sequence number counts the numbers it skipped as lost, one at or before it
// counts as late. A new SSRC or a jump beyond the RFC 3550 bounds starts
// over without counting.
func (q *seqTracker) feed(h *rtpHeader, t *rtpTotals) {
	if !q.started || h.ssrc != q.ssrc {
		q.ssrc, q.max, q.started = h.ssrc, h.seq, true
		return
	}
	d := int(int16(h.seq - q.max))
	switch {
	case d > 0 && d <= maxDropout:
		if d > 1 {
			t.lost.Add(uint64(d - 1))
		}
		q.max = h.seq
	case d <= 0 && d >= -maxMisorder:
		t.late.Add(1)
	default:
		q.max = h.seq
	}
}
