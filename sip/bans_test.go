package sip

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"ccpbx/guard"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// TestBanAfterWrongPasswords: over real sockets, the third wrong password
// from 127.0.0.1 bans it; then even the right password gets no answer and
// no binding, until the ban is lifted. Each failure logs sofia's line.
func TestBanAfterWrongPasswords(t *testing.T) {
	var logs pbxtest.LogBuffer
	bans := guard.NewBans(guard.BanPolicy{MaxFailures: 3, MaxKeyFailures: 20, Window: 5 * time.Minute, BanTime: 15 * time.Minute})
	h := newRegHarness(t, true, func(o *Options) {
		o.Bans = bans
		o.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for i := 1; i <= 3; i++ {
		// A new phone each time: one that kept its challenge would
		// answer twice per Register (pre-emptively, then the new one).
		res, err := testphone.New(t).Register(regCtx(t), h.udp, "1001", "guess", time.Hour)
		if err != nil || res.StatusCode != 401 {
			t.Fatalf("guess %d: %v %v", i, res, err)
		}
	}
	lo := netip.MustParseAddr("127.0.0.1")
	if !bans.Banned(lo) {
		t.Fatal("not banned after 3 wrong passwords")
	}
	const line = "SIP auth failure (REGISTER) on sofia profile 'internal' for [1001@127.0.0.1] from ip 127.0.0.1"
	if n := strings.Count(logs.String(), `level=WARN msg="`+line+`"`); n != 3 {
		t.Fatalf("%d failure lines at WARN, want 3:\n%s", n, logs.String())
	}

	owner := testphone.New(t)
	// A banned source is dropped unanswered: the phone's transaction ends
	// by our deadline, not by a response.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	res, err := owner.Register(ctx, h.udp, "1001", "1234", time.Hour)
	cancel()
	if err == nil {
		t.Fatalf("banned source answered: %v", res)
	}
	if bs := h.reg.Lookup("1001"); len(bs) != 0 {
		t.Fatalf("banned source registered: %+v", bs)
	}

	if !bans.Lift(lo) {
		t.Fatal("Lift found no ban")
	}
	mustRegister(t, owner, h.udp, "1001", "1234", time.Hour)
}

// TestNoQOPResponseRefused: an RFC 2069 response (no qop, so no nonce
// count) carries nothing that tells a replay from the original; with the
// right password it still gets a fresh challenge and no binding, and so
// does its replay.
func TestNoQOPResponseRefused(t *testing.T) {
	h := newRegHarness(t, true)
	p := testphone.New(t)
	res, err := p.Register(regCtx(t), h.udp, "1001", "wrong", time.Hour)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("setup: %v %v", res, err)
	}
	chal, err := digest.ParseChallenge(p.RegisterResponses()[0].GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	md := func(s string) string { v := md5.Sum([]byte(s)); return hex.EncodeToString(v[:]) }
	req := p.LastRequest()
	uri := req.Recipient.String()
	resp := md(md("1001:"+chal.Realm+":1234") + ":" + chal.Nonce + ":" + md("REGISTER:"+uri))
	req.RemoveHeader("Authorization")
	req.AppendHeader(sipmsg.NewHeader("Authorization", `Digest username="1001", realm="`+chal.Realm+
		`", nonce="`+chal.Nonce+`", uri="`+uri+`", response="`+resp+`", algorithm=MD5`))
	for i := 0; i < 2; i++ { // the original, then its replay
		req.RemoveHeader("Via")
		req.CSeq().SeqNo += 1
		res, err = p.Do(regCtx(t), req.Clone())
		if err != nil {
			t.Fatal(err)
		}
		w := res.GetHeader("WWW-Authenticate")
		if res.StatusCode != 401 || w == nil || strings.Contains(w.Value(), "stale") || !strings.Contains(w.Value(), `qop="auth"`) {
			t.Fatalf("RFC 2069 REGISTER #%d answered %d %v", i+1, res.StatusCode, w)
		}
	}
	if bs := h.reg.Lookup("1001"); len(bs) != 0 {
		t.Fatalf("RFC 2069 REGISTER registered: %+v", bs)
	}
}

// TestBannedSourceGetsNoAnswer: a banned source is dropped before any
// work, whatever the method: its INVITE gets not even 100 Trying, its
// OPTIONS no 200, over UDP (dropped in the read filter, before parsing)
// and TCP (dropped in the handler wrapper); an unbanned source sending the
// same is answered.
func TestBannedSourceGetsNoAnswer(t *testing.T) {
	bans := guard.NewBans(guard.BanPolicy{MaxFailures: 3, MaxKeyFailures: 20, Window: 5 * time.Minute, BanTime: 15 * time.Minute})
	h := newRegHarness(t, true, func(o *Options) { o.Bans = bans })
	bad := netip.MustParseAddr("127.0.0.5")
	if !bans.Ban(bad, time.Now().Add(time.Hour)) {
		t.Fatal("Ban refused")
	}
	to, err := net.ResolveUDPAddr("udp4", h.udp)
	if err != nil {
		t.Fatal(err)
	}
	banned, err := net.ListenUDP("udp4", &net.UDPAddr{IP: bad.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	defer banned.Close()
	good := pbxtest.ListenUDP(t)

	send := func(c *net.UDPConn, msgs ...string) {
		for _, m := range msgs {
			if _, err := c.WriteToUDP([]byte(m), to); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(banned, bannedInvite(banned.LocalAddr().String(), "ban-inv"), markerOptions(banned.LocalAddr().String(), "ban-opt"))
	// The unbanned source's requests are read after the banned ones, from
	// the same socket: once they are answered, the banned ones have been
	// through the read filter.
	send(good, bannedInvite(good.LocalAddr().String(), "ok-inv"), markerOptions(good.LocalAddr().String(), "ok-opt"))
	seen := map[string]int{}
	buf := make([]byte, 65536)
	good.SetReadDeadline(time.Now().Add(10 * time.Second))
	for seen["ok-inv"] == 0 || seen["ok-opt"] == 0 {
		n, err := good.Read(buf)
		if err != nil {
			t.Fatalf("unbanned source not answered: %v (seen %v)", err, seen)
		}
		if r, err := sipmsg.ParseMessage(buf[:n]); err == nil {
			if res, ok := r.(*sipmsg.Response); ok && res.CallID() != nil {
				seen[res.CallID().Value()] = res.StatusCode
			}
		}
	}
	// Absence can only be shown by a bounded wait: a second for anything
	// (a 100 Trying, a 407, a 200) to reach the banned socket.
	banned.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := banned.Read(buf); err == nil {
		t.Fatalf("banned source answered: %q", buf[:n])
	}

	// TCP: the same OPTIONS on a connection from the banned address.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: bad.AsSlice()}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", h.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opt := strings.Replace(markerOptions(c.LocalAddr().String(), "ban-tcp"), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := c.Write([]byte(opt)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("banned source answered over TCP: %q", buf[:n])
	}
}

// bannedInvite is a plain INVITE without a body from src with Call-ID id.
func bannedInvite(src, id string) string {
	return "INVITE sip:1002@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + src + ";branch=z9hG4bK-" + id + "\r\n" +
		"Max-Forwards: 70\r\nTo: <sip:1002@127.0.0.1>\r\n" +
		"From: <sip:1001@127.0.0.1>;tag=" + id + "\r\n" +
		"Contact: <sip:1001@" + src + ">\r\n" +
		"Call-ID: " + id + "\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
}
