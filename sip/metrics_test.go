package sip

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"ccpbx/api"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestSIPMetrics: after a REGISTER dance (401, then 200) and a wrong
// password (401s and an auth failure) over real UDP, the Prometheus
// collector counts the REGISTERs received by method and the responses
// sent by code, under the profile's name; OPTIONS over UDP and TCP to a
// second profile are counted under that one.
func TestSIPMetrics(t *testing.T) {
	var m *api.Metrics
	h := newRegHarness(t, true, func(o *Options) {
		m = api.NewMetrics(o.Core, api.MetricsOptions{})
		o.Metrics = m
		// A second listener: responses are counted under the profile
		// whose socket the request came in on.
		o.Profiles = append(o.Profiles, config.Profile{Name: "trunk", ListenIP: "127.0.0.1",
			Transports: []string{"udp", "tcp"}, Context: "public"})
	})
	trunk := h.stack.Addr("trunk").String()
	u := pbxtest.ListenUDP(t)
	to, err := net.ResolveUDPAddr("udp4", trunk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteToUDP([]byte(markerOptions(u.LocalAddr().String(), "m-udp")), to); err != nil {
		t.Fatal(err)
	}
	tc, err := net.Dial("tcp4", trunk)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	opt := strings.Replace(markerOptions(tc.LocalAddr().String(), "m-tcp"), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := tc.Write([]byte(opt)); err != nil {
		t.Fatal(err)
	}
	owner := testphone.New(t)
	mustRegister(t, owner, h.udp, "1001", "1234", time.Hour)
	guesser := testphone.New(t)
	if res, err := guesser.Register(regCtx(t), h.udp, "1001", "guess", time.Hour); err != nil || res.StatusCode != 401 {
		t.Fatalf("wrong password: %v %v", res, err)
	}
	seen := map[int]float64{}
	for _, p := range []*testphone.Phone{owner, guesser} {
		for _, r := range p.RegisterResponses() {
			seen[r.StatusCode]++
		}
	}
	if seen[200] != 1 || seen[401] < 2 {
		t.Fatalf("phones saw %v", seen)
	}
	want := map[string]float64{
		`ccpbx_sip_requests_total{direction="in",method="REGISTER",profile="internal"}`:              seen[200] + seen[401],
		`ccpbx_sip_responses_total{code="401",direction="out",method="REGISTER",profile="internal"}`: seen[401],
		`ccpbx_sip_responses_total{code="200",direction="out",method="REGISTER",profile="internal"}`: seen[200],
		`ccpbx_auth_failures_total{listener="sip"}`:                                                  1,
		`ccpbx_sip_requests_total{direction="in",method="OPTIONS",profile="trunk"}`:                  2,
		`ccpbx_sip_responses_total{code="200",direction="out",method="OPTIONS",profile="trunk"}`:     2,
	}
	var got map[string]float64
	// A response is counted once sent, so the phone may read it first.
	pbxtest.WaitFor(t, 5*time.Second, func() bool {
		got = gatherCounters(t, m)
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}, "counters %v, want %v", mapStringer{&got}, want)
}

type mapStringer struct{ m *map[string]float64 }

func (s mapStringer) String() string { return fmt.Sprint(*s.m) }

// gatherCounters reads every counter of m as name{labels} → value.
func gatherCounters(t *testing.T, m *api.Metrics) map[string]float64 {
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			if mt.GetCounter() == nil {
				continue
			}
			k := f.GetName() + "{"
			for i, l := range mt.GetLabel() {
				if i > 0 {
					k += ","
				}
				k += l.GetName() + `="` + l.GetValue() + `"`
			}
			out[k+"}"] = mt.GetCounter().GetValue()
		}
	}
	return out
}
