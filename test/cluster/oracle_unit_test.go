package cluster

import (
	"strings"
	"testing"
)

// A trace of two calls of one agent, the second arriving while the first
// is still talking, as sipp writes it.
const sampleTrace = `----------------------------------------------- 2026-12-02 15:45:32.100000
UDP message received [514] bytes :

INVITE sip:1003@127.0.0.30:6000 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-a
From: "5550001" <sip:5550001@127.0.0.11>;tag=a1
To: <sip:1003@127.0.0.30:6000>
Call-ID: call-a
CSeq: 1 INVITE
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:32.700000
UDP message sent (313 bytes):

SIP/2.0 200 OK
From: "5550001" <sip:5550001@127.0.0.11>;tag=a1
To: <sip:1003@127.0.0.30:6000>;tag=x
Call-ID: call-a
CSeq: 1 INVITE
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:32.710000
UDP message received [300] bytes :

ACK sip:1003@127.0.0.30:6000 SIP/2.0
To: <sip:1003@127.0.0.30:6000>;tag=x
Call-ID: call-a
CSeq: 1 ACK
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:33.000000
UDP message received [514] bytes :

INVITE sip:1003@127.0.0.30:6000 SIP/2.0
From: "5550002" <sip:5550002@127.0.0.12>;tag=b1
To: <sip:1003@127.0.0.30:6000>
Call-ID: call-b
CSeq: 1 INVITE
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:33.100000
UDP message received [514] bytes :

CANCEL sip:1003@127.0.0.30:6000 SIP/2.0
From: "5550002" <sip:5550002@127.0.0.12>;tag=b1
To: <sip:1003@127.0.0.30:6000>
Call-ID: call-b
CSeq: 1 CANCEL
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:33.900000
UDP message sent (300 bytes):

BYE sip:x@127.0.0.11 SIP/2.0
From: <sip:1003@127.0.0.30:6000>;tag=x
To: "5550001" <sip:5550001@127.0.0.11>;tag=a1
Call-ID: call-a
CSeq: 1 BYE
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:34.000000
UDP message sent (300 bytes):

SIP/2.0 200 OK
Call-ID: call-b
CSeq: 1 CANCEL
Content-Length: 0

----------------------------------------------- 2026-12-02 15:45:35.000000
UDP message rec`

func TestOracleFindsDoubleOffer(t *testing.T) {
	msgs, err := parseTrace(strings.NewReader(sampleTrace))
	if err != nil {
		t.Fatal(err)
	}
	offs := offers("1003", msgs)
	if len(offs) != 2 {
		t.Fatalf("offers %+v, want 2", offs)
	}
	a, b := offs[0], offs[1]
	if !a.answered || !a.acked || a.open || a.end.Sub(a.start).Milliseconds() != 1800 {
		t.Errorf("call-a %+v: want answered, acked, closed by its BYE after 1.8 s", a)
	}
	if b.answered || b.open || b.end.Sub(b.start).Milliseconds() != 100 || !strings.Contains(b.from, "5550002") {
		t.Errorf("call-b %+v: want cancelled after 100 ms, from 5550002", b)
	}
	if got := overlaps(offs); len(got) != 1 || !strings.Contains(got[0], "call-a") {
		t.Errorf("overlaps %q, want call-a overlapping call-b", got)
	}
	// The same calls one after the other do not overlap.
	b.start, b.end = a.end, a.end.Add(b.end.Sub(b.start))
	if got := overlaps([]offer{a, b}); len(got) != 0 {
		t.Errorf("back-to-back offers reported as overlapping: %q", got)
	}
	// An offer the phone never saw end overlaps every later one.
	a.open = true
	b.start = a.end.Add(60e9)
	if got := overlaps([]offer{b, a}); len(got) != 1 {
		t.Errorf("open offer: overlaps %q, want 1", got)
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add(sampleTrace)
	f.Fuzz(func(t *testing.T, s string) {
		msgs, _ := parseTrace(strings.NewReader(s))
		_ = overlaps(offers("1001", msgs))
	})
}
