package sip

import (
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"ccpbx/config"
	"ccpbx/internal/testphone"
)

// srtpOffer turns the phone's plain offer into an RTP/SAVP one with an
// a=crypto line (the key is only signalled here, never used).
func srtpOffer(r *sipmsg.Request) {
	b := strings.Replace(string(r.Body()), "RTP/AVP", "RTP/SAVP", 1)
	b += "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
	r.SetBody([]byte(b))
}

// TestSecureMediaMandatoryRefusesPlain: rtp_secure_media=mandatory on the
// profile answers a plain offer with 488, and an SRTP offer with SRTP.
func TestSecureMediaMandatoryRefusesPlain(t *testing.T) {
	x := newTestPBXProfiles(t, func(p *config.Profile) { p.RTPSecureMedia = "mandatory" })
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.Plan{Status: 486})
	ctx := testCtx(t, 10*time.Second)
	c, err := p1.Dial(ctx, "1002")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.WaitFinal(ctx); code != 488 {
		t.Fatalf("plain offer: final %d, want 488", code)
	}
	// An SRTP offer is accepted: the PBX dials 1002 offering RTP/SAVP
	// (the profile's policy), 1002 is busy.
	c, err = p1.Dial(ctx, "1002", srtpOffer)
	if err != nil {
		t.Fatal(err)
	}
	in, err := p2.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body := string(in.Request().Body())
	if !strings.Contains(body, "RTP/SAVP") || !strings.Contains(body, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
		t.Fatalf("B leg offer is not SRTP:\n%s", body)
	}
	if code, _ := c.WaitFinal(ctx); code != 486 {
		t.Fatalf("SRTP offer: final %d, want 486 from the busy callee", code)
	}
	x.waitIdle(t, ctx)
}

// TestSecureMediaPerUser: a user's rtp_secure_media variable decides the
// offer sent to that user, over the profile's default (plain).
func TestSecureMediaPerUser(t *testing.T) {
	x := newTestPBX(t)
	if err := x.reg.SetUsers([]config.User{
		{ID: "1001", Params: map[string]string{"password": "1234"}, Variables: map[string]string{"user_context": "default"}},
		{ID: "1002", Params: map[string]string{"password": "1234"}, Variables: map[string]string{"user_context": "default", "rtp_secure_media": "optional"}},
	}); err != nil {
		t.Fatal(err)
	}
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.Plan{Status: 486})
	ctx := testCtx(t, 10*time.Second)
	c, err := p1.Dial(ctx, "1002")
	if err != nil {
		t.Fatal(err)
	}
	in, err := p2.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	body := string(in.Request().Body())
	if !strings.Contains(body, "RTP/AVP") || !strings.Contains(body, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:") {
		t.Fatalf("optional user's offer is not best-effort SRTP:\n%s", body)
	}
	if code, _ := c.WaitFinal(ctx); code != 486 {
		t.Fatalf("final %d", code)
	}
	x.waitIdle(t, ctx)
}
