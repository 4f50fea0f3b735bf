package spool

import (
	"context"
	"sync"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
)

func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// TestOrderFlushClose: records reach write in the order put, Flush returns
// once those put before it are written, Close drains the rest and runs
// finish once, and Put after Close is refused.
func TestOrderFlushClose(t *testing.T) {
	var mu sync.Mutex
	var got []int
	release := make(chan struct{})
	finished := 0
	s := New(func(b []int) {
		<-release
		mu.Lock()
		got = append(got, b...)
		mu.Unlock()
	}, func() { finished++ })
	for i := 0; i < 100; i++ {
		if !s.Put(i) {
			t.Fatal("Put refused while open")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := s.Flush(ctx); err == nil {
		t.Fatal("Flush returned before the blocked write finished")
	}
	cancel()
	close(release)
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 100 {
		t.Fatalf("%d written after Flush, want 100", len(got))
	}
	mu.Unlock()
	s.Put(100)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Put(101) {
		t.Error("Put accepted after Close")
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("record %d is %d: order lost", i, v)
		}
	}
	if len(got) != 101 || finished != 1 {
		t.Errorf("after Close: %d written, finish ran %d times; want 101 and 1", len(got), finished)
	}
}
