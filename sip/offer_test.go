package sip

import (
	"strings"
	"testing"
	"time"

	"ccpbx/internal/testphone"
)

// SDP offer/answer over INVITE: the codec choice offered to the callee, and
// an offerless INVITE answered with an offer in the 200.

func TestCalleeOfferPrefersCallersCodec(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p1.UsePCMA()
	p2.UsePCMA()
	p2.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	c1, in := dialed(t, ctx, p1, p2)
	var mline string
	for _, l := range strings.Split(string(in.Request().Body()), "\n") {
		if strings.HasPrefix(l, "m=audio ") {
			mline = strings.TrimSpace(l)
		}
	}
	if f := strings.Fields(mline); len(f) < 4 || f[3] != "8" {
		t.Errorf("agent offer %q does not lead with PCMA", mline)
	}
	talking(t, ctx, c1, in)
	if got := x.inboundLeg(t, 0).Media().Codec(); got != "PCMA" {
		t.Errorf("caller codec %q", got)
	}
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}

func TestOfferlessInviteGetsOfferIn200AndAnswerInAck(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	ctx := testCtx(t, 10*time.Second)
	c1, err := p1.Dial(ctx, "1002", testphone.WithoutSDP())
	if err != nil {
		t.Fatal(err)
	}
	in, err := p2.Incoming(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c1.WaitFinal(ctx); code != 200 {
		t.Fatalf("final %d", code)
	}
	if !strings.Contains(string(c1.Final().Body()), "m=audio") {
		t.Fatal("200 to an offerless INVITE carries no offer")
	}
	exchangeAudio(t, ctx, c1, in)
	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	x.waitIdle(t, ctx)
}
