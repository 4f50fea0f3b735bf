package dialplan

import (
	"context"
	"slices"
	"testing"

	"ccpbx/call"
)

// TestParkRunsQueuedCommandsAndTransfers: a parked channel runs what is
// queued for it (sendmsg), and a transfer from outside (uuid_transfer)
// takes it out of park into another extension, even out of an
// application another one runs (lua running callcenter).
func TestParkRunsQueuedCommandsAndTransfers(t *testing.T) {
	h := newHarness(t, singleContext("default",
		ext("parked", cond("destination_number", "^4000$", "answer", "park")),
		ext("nested", cond("destination_number", "^4001$", "wrap")),
		ext("target", cond("destination_number", "^5000$", "rec moved", "hangup")),
	), Options{})
	// wrap stands for lua running a blocking app (callcenter): it runs
	// park itself and, unless interrupted as a whole, records going on.
	h.core.RegisterApp("wrap", func(ctx context.Context, ch *call.Channel, _ string) error {
		h.core.Execute(ctx, ch, "park", "")
		if ctx.Err() == nil {
			h.rec.add("wrap went on")
		}
		return nil
	})
	for _, dest := range []string{"4000", "4001"} {
		parked := make(chan struct{}, 1)
		stop := subscribeParked(h.core, parked)
		ch, _ := h.channel(map[string]string{"destination_number": dest, "context": "default"})
		if err := h.core.Route(ch); err != nil {
			t.Fatal(err)
		}
		<-parked
		stop()
		done := make(chan struct{})
		if err := ch.Enqueue(call.Command{Kind: "execute", App: "rec", Arg: "queued " + dest, Done: done}); err != nil {
			t.Fatal(err)
		}
		<-done
		ch.Transfer("5000", "")
		<-ch.Done()
	}
	want := []string{"200", "rec queued 4000", "rec moved", "hangup NORMAL_CLEARING", "rec queued 4001", "rec moved", "hangup NORMAL_CLEARING"}
	if got := h.rec.all(); !slices.Equal(got, want) {
		t.Errorf("saw %q\nwant %q", got, want)
	}
}

func subscribeParked(core *call.Core, parked chan struct{}) func() {
	ch, cancel := core.Bus.Subscribe(4, func(e *call.Event) bool { return e.Name == "CHANNEL_PARK" })
	go func() {
		for range ch {
			select {
			case parked <- struct{}{}:
			default:
			}
		}
	}()
	return cancel
}
