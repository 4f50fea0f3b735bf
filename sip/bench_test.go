package sip

import (
	"context"
	"testing"
	"time"

	"ccpbx/internal/testphone"
)

// BenchmarkExtensionCall measures a whole extension call through the PBX:
// INVITE with digest, ring, answer, ACK, BYE on both legs.
func BenchmarkExtensionCall(b *testing.B) {
	x := newTestPBX(b)
	p1, p2 := x.phone(b, "1001"), x.phone(b, "1002")
	p2.SetPlan(testphone.AutoAnswer)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := p1.Dial(ctx, "1002")
		if err != nil {
			b.Fatal(err)
		}
		in, err := p2.Incoming(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if code, _ := c.WaitFinal(ctx); code != 200 {
			b.Fatalf("final %d", code)
		}
		if err := in.WaitAcked(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Hangup(ctx); err != nil {
			b.Fatal(err)
		}
		if err := in.WaitEnded(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
