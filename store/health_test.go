package store

import (
	"context"
	"slices"
	"testing"
)

func TestWritable(t *testing.T) {
	ctx := context.Background()
	s, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.AppliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(ctx); err != nil {
		t.Fatalf("fresh database: %v", err)
	}
	after, err := s.AppliedMigrations(ctx)
	if err != nil || !slices.Equal(before, after) {
		t.Fatalf("the check changed the database: %v → %v (%v)", before, after, err)
	}
	s.Close()
	if err := s.Writable(ctx); err == nil {
		t.Fatal("closed database reported writable")
	}
}
