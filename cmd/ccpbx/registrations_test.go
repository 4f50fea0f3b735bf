package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"ccpbx/config"
	"ccpbx/internal/testphone"
	"ccpbx/registrar"
)

// TestRegistrationsSurviveRestart: the registrar answers from memory and
// writes bindings behind. Phones registering, refreshing and unregistering
// at once, then a clean stop and a start on the same data_dir: the new
// process has exactly the bindings the first one had.
func TestRegistrationsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	edit := func(c *config.Config) { c.Core.DataDir = dir }
	p := testPBX(t, edit)
	server := p.sip.Addr("internal").String()
	const phones = 12
	errs := make(chan error, phones)
	var wg sync.WaitGroup
	for i := range phones {
		ph := testphone.New(t)
		user := []string{"1001", "1002"}[i%2]
		// Every phone registers; a third refresh, a third unregister.
		steps := []time.Duration{time.Hour}
		switch i % 3 {
		case 1:
			steps = append(steps, 30*time.Minute)
		case 2:
			steps = append(steps, 0)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, exp := range steps {
				res, err := ph.Register(ctx, server, user, "1234", exp)
				if err != nil || res.StatusCode != 200 {
					errs <- fmt.Errorf("phone %d (%s) expires %v: %v %v", i, user, exp, res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := bindingRows(p.reg.Bindings())
	if len(want) != phones-phones/3 {
		t.Fatalf("%d bindings before the stop, want %d:\n%v", len(want), phones-phones/3, want)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	p.shutdown(sctx)

	p2 := testPBX(t, edit)
	got := bindingRows(p2.reg.Bindings())
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bindings after the restart:\n%v\nwant\n%v", got, want)
	}
}

// bindingRows is what a binding keeps over a restart (the store keeps
// milliseconds), sorted.
func bindingRows(bs []registrar.Binding) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%s %s %s %d %d %d %s %s\n", b.User, b.Contact, b.CallID, b.CSeq,
			b.Expires.UnixMilli(), b.Registered.UnixMilli(), b.Source, b.Transport))
	}
	sort.Strings(out)
	return out
}
