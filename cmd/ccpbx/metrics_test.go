package main

import (
	"testing"
)

// TestRTPMetricsCountACall: after an echo call that carried audio both
// ways, the Prometheus registry reports media's packet counters.
func TestRTPMetricsCountACall(t *testing.T) {
	p := testPBX(t, nil)
	echoCall(t, p)
	families, err := p.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if m.GetCounter() != nil {
				got[f.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	for _, name := range []string{"ccpbx_rtp_packets_received_total", "ccpbx_rtp_packets_sent_total"} {
		if v, ok := got[name]; !ok || v == 0 {
			t.Errorf("%s = %v (exported %v) after a call with audio", name, v, ok)
		}
	}
	for _, name := range []string{"ccpbx_rtp_packets_late_total", "ccpbx_rtp_packets_lost_total", "ccpbx_rtp_latch_rejected_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s not exported", name)
		}
	}
}
