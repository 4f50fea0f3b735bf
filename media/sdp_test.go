package media

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseSDP(t *testing.T) {
	body := "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n" +
		"m=audio 4000 RTP/AVP 0 96\r\nc=IN IP4 192.0.2.2\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:30\r\na=rtcp:4001\r\n" +
		"m=video 5000 RTP/AVP 31\r\na=recvonly" // no final CRLF
	s, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.SessionID != "1" || s.SessionVersion != "2" || s.Direction != SendOnly || s.Conn != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("session: %+v", s)
	}
	if len(s.Media) != 2 {
		t.Fatalf("%d media", len(s.Media))
	}
	a := s.Media[0]
	if a.Port != 4000 || a.Conn != netip.MustParseAddr("192.0.2.2") || a.Ptime != 30 || a.RTCPPort != 4001 || a.Fmtp[96] != "0-15" {
		t.Errorf("audio: %+v", a)
	}
	if r, ok := a.rtpmap(0); !ok || r.Name != "PCMU" {
		t.Errorf("static PT 0 without rtpmap: %+v %v", r, ok)
	}
	if s.Media[1].Direction != RecvOnly {
		t.Errorf("last attribute without CRLF lost: %+v", s.Media[1])
	}
	if s.direction(&s.Media[0]) != SendOnly {
		t.Errorf("session-level direction not inherited")
	}
}

func TestParseSDPGarbage(t *testing.T) {
	for _, b := range []string{
		"",
		"hello",
		"v=1\r\n",
		"x\r\nv=0",
		"v=0\r\nm=audio\r\n",
		"v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
		"v=0\r\nc=IN IP4 not-an-ip\r\n",
		"v=0\r\nc=IN IP6 1.2.3.4\r\n",
		"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:300 X/8000\r\n",
		"v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
		"v=0\r\no=short\r\n",
	} {
		if _, err := ParseSDP([]byte(b)); !errors.Is(err, ErrBadSDP) {
			t.Errorf("%q: err %v, want ErrBadSDP", b, err)
		}
	}
}

// TestRTPMapWithoutRate: RFC 4475's offers carry "a=rtpmap:31 LPC", an
// rtpmap with no clock rate. For a codec we do not use that format alone
// is ignored and the audio is still negotiated; PCMU without a rate is
// still refused.
func TestRTPMapWithoutRate(t *testing.T) {
	offer := offerHead + "m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
	s, err := ParseSDP([]byte(offer))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := s.Media[1].rtpmap(31); !ok || r.Name != "LPC" || r.Rate != 0 || codecKind(r) != kindNone {
		t.Fatalf("LPC rtpmap read as %+v %v", r, ok)
	}
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ans, a := answerFor(t, l, offer)
	if a.Media[0].Port != l.LocalPort() || strings.Join(a.Media[0].Formats, " ") != "0" || l.Codec() != "PCMU" {
		t.Fatalf("audio not negotiated:\n%s", ans)
	}
	// A format we would use, written without a rate, hides nothing.
	if _, err := ParseSDP([]byte(offerHead + "m=audio 1 RTP/AVP 96\r\na=rtpmap:96 PCMA\r\n")); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("PCMA without a rate: %v", err)
	}
}

func answerFor(t *testing.T, l *Leg, offer string) (string, *SessionDescription) {
	t.Helper()
	ans, err := l.AnswerOffer([]byte(offer))
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	s, err := ParseSDP(ans)
	if err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, ans)
	}
	return string(ans), s
}

const offerHead = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"

func TestAnswerOffer(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// The offerer's telephone-event PT is echoed (not 101), CN is kept,
	// the first common codec wins, a video stream is refused with port 0.
	ans, s := answerFor(t, l, offerHead+
		"m=audio 7000 RTP/AVP 18 8 0 96 13\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=rtpmap:18 G729/8000\r\n"+
		"m=video 7002 RTP/AVP 31\r\n")
	if len(s.Media) != 2 || s.Media[1].Port != 0 || s.Media[1].Media != "video" {
		t.Fatalf("video not refused with port 0:\n%s", ans)
	}
	m := s.Media[0]
	if m.Port != l.LocalPort() || strings.Join(m.Formats, " ") != "8 96 13" {
		t.Fatalf("audio answer %v:\n%s", m.Formats, ans)
	}
	if m.Fmtp[96] != "0-15" || m.Ptime != 20 || s.direction(&m) != SendRecv {
		t.Fatalf("answer attributes:\n%s", ans)
	}
	if !strings.HasSuffix(ans, "\r\n") || l.Codec() != "PCMA" || l.DTMFPayloadType() != 96 {
		t.Fatalf("codec %s dtmf %d", l.Codec(), l.DTMFPayloadType())
	}
	if got := l.Stats().Remote; got != netip.MustParseAddrPort("127.0.0.1:7000") {
		t.Fatalf("remote %v", got)
	}

	// Same offer again: identical answer, same o= version.
	ans2, s2 := answerFor(t, l, offerHead+
		"m=audio 7000 RTP/AVP 18 8 0 96 13\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=rtpmap:18 G729/8000\r\n"+
		"m=video 7002 RTP/AVP 31\r\n")
	if ans2 != ans || s2.SessionVersion != s.SessionVersion {
		t.Fatalf("unchanged answer changed:\n%s\n%s", ans, ans2)
	}

	// Hold with a=sendonly: we answer recvonly, version bumps, session id stays,
	// the codec stays PCMA although PCMU is listed first now.
	ans3, s3 := answerFor(t, l, offerHead+"m=audio 7000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n")
	if d := s3.direction(&s3.Media[0]); d != RecvOnly {
		t.Fatalf("hold answered %s:\n%s", d, ans3)
	}
	if s3.SessionID != s.SessionID || s3.SessionVersion == s.SessionVersion {
		t.Fatalf("o= id/version: %s %s -> %s %s", s.SessionID, s.SessionVersion, s3.SessionID, s3.SessionVersion)
	}
	if l.Codec() != "PCMA" || l.DTMFPayloadType() != 101 {
		t.Fatalf("re-INVITE codec %s dtmf %d", l.Codec(), l.DTMFPayloadType())
	}
}

func TestAnswerDirections(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		conn, attr string
		want       Direction
		send, hold bool
	}{
		{"127.0.0.1", "a=sendrecv", SendRecv, true, false},
		{"127.0.0.1", "", SendRecv, true, false},
		{"127.0.0.1", "a=sendonly", RecvOnly, false, true},
		{"127.0.0.1", "a=recvonly", SendOnly, true, true},
		{"127.0.0.1", "a=inactive", Inactive, false, true},
		{"0.0.0.0", "", RecvOnly, false, true},
		{"0.0.0.0", "a=recvonly", Inactive, false, true},
	}
	for _, tc := range tests {
		offer := "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\nc=IN IP4 " + tc.conn + "\r\n"
		if tc.attr != "" {
			offer += tc.attr + "\r\n"
		}
		_, s := answerFor(t, l, offer)
		if d := s.direction(&s.Media[0]); d != tc.want {
			t.Errorf("%s %q: answered %s, want %s", tc.conn, tc.attr, d, tc.want)
		}
		st := l.out.state.Load()
		if st.send != tc.send || st.hold != tc.hold {
			t.Errorf("%s %q: send=%v hold=%v, want %v %v", tc.conn, tc.attr, st.send, st.hold, tc.send, tc.hold)
		}
	}
}

func TestAnswerNoCommonCodec(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, offer := range []string{
		offerHead + "m=audio 7000 RTP/AVP 18 9\r\n",
		offerHead + "m=audio 7000 RTP/SAVP 0\r\n",
		offerHead + "m=audio 0 RTP/AVP 0\r\n",
		offerHead + "m=video 7000 RTP/AVP 0\r\n",
		offerHead + "m=audio 7000 RTP/AVP 96\r\na=rtpmap:96 PCMU/16000\r\n",
	} {
		if _, err := l.AnswerOffer([]byte(offer)); !errors.Is(err, ErrNoCommonCodec) {
			t.Errorf("err %v, want ErrNoCommonCodec for\n%s", err, offer)
		}
	}
	if _, err := l.AnswerOffer([]byte("garbage")); err == nil || errors.Is(err, ErrNoCommonCodec) {
		t.Errorf("garbage: %v", err)
	}
}

func TestAnswerPicksSecondAudioAndPrefers(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.SetPreferredCodec("PCMA")
	ans, s := answerFor(t, l, offerHead+"m=audio 7000 RTP/SAVP 0\r\nm=audio 7002 RTP/AVP 0 8\r\n")
	if len(s.Media) != 2 || s.Media[0].Port != 0 || s.Media[0].Proto != "RTP/SAVP" || s.Media[1].Port != l.LocalPort() {
		t.Fatalf("answer:\n%s", ans)
	}
	if l.Codec() != "PCMA" {
		t.Fatalf("preferred codec not used: %s", l.Codec())
	}
}

func TestOfferAndAcceptAnswer(t *testing.T) {
	e := newEngine(t, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := ParseSDP(l.Offer())
	if err != nil {
		t.Fatal(err)
	}
	m := s.Media[0]
	if strings.Join(m.Formats, " ") != "0 8 101" || m.Ptime != 20 || s.direction(&m) != SendRecv || m.Port != l.LocalPort() {
		t.Fatalf("offer: %+v", m)
	}
	if r, _ := m.rtpmap(101); r.Name != "telephone-event" || m.Fmtp[101] != "0-16" {
		t.Fatalf("offer dtmf %+v", r)
	}
	s2, _ := ParseSDP(l.Offer())
	if s2.SessionVersion != s.SessionVersion {
		t.Fatal("same offer bumped the version")
	}
	s3, _ := ParseSDP(l.OfferPreferring("PCMA"))
	if strings.Join(s3.Media[0].Formats, " ") != "8 0 101" || s3.SessionVersion == s.SessionVersion {
		t.Fatalf("OfferPreferring: %v version %s", s3.Media[0].Formats, s3.SessionVersion)
	}

	if err := l.AcceptAnswer([]byte(offerHead + "m=audio 7100 RTP/AVP 8 100\r\na=rtpmap:100 telephone-event/8000")); err != nil {
		t.Fatal(err)
	}
	if l.Codec() != "PCMA" || l.DTMFPayloadType() != 100 || l.Stats().Remote.Port() != 7100 {
		t.Fatalf("after answer: %s %d %v", l.Codec(), l.DTMFPayloadType(), l.Stats().Remote)
	}
	if err := l.AcceptAnswer([]byte(offerHead + "m=audio 0 RTP/AVP 0\r\n")); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("rejected stream: %v", err)
	}
	if err := l.AcceptAnswer([]byte(offerHead + "m=audio 7100 RTP/AVP 3\r\n")); !errors.Is(err, ErrNoCommonCodec) {
		t.Fatalf("GSM answer: %v", err)
	}
}

// FuzzSDP feeds arbitrary bodies to the parser and to both negotiation
// paths: errors are fine, panics and unparsable answers are not.
func FuzzSDP(f *testing.F) {
	f.Add([]byte(offerHead + "m=audio 7000 RTP/AVP 0 8 96 13\r\na=rtpmap:96 telephone-event/8000\r\na=sendonly\r\nm=video 1 RTP/AVP 31"))
	f.Add([]byte("v=0\nc=IN IP6 ::1\nm=audio 1/2 RTP/AVP 0\na=rtcp:9 IN IP4 1.2.3.4\na=fmtp:0 x"))
	f.Add([]byte("v=0\r\nm=audio 5 RTP/AVP 8\r\nc=IN IP4 0.0.0.0/127/2\r\na=inactive\r\n"))
	e := newEngine(f, Config{})
	l, err := e.NewLeg(loopback)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(l.Close)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseSDP(b); err == nil {
			negotiateAnswer(s, SecureDefault, false)
		}
		ans, err := l.AnswerOffer(b)
		if err != nil {
			return
		}
		if _, err := ParseSDP(ans); err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, ans)
		}
		l.AcceptAnswer(b)
	})
}
