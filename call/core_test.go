package call

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
)

func TestAPI(t *testing.T) {
	c := newTestCore(t)
	var gotArgs string
	var gotCh *Channel
	c.RegisterAPI("Show", "list things", func(ctx context.Context, args string, ch *Channel) string {
		gotArgs, gotCh = args, ch
		return "+OK\n"
	})
	ch := c.NewChannel(ChannelSpec{})
	tests := []struct {
		line, reply, args string
	}{
		{"show calls", "+OK\n", "calls"},
		{"  SHOW   calls  as json \n", "+OK\n", "calls  as json"},
		{"sHoW", "+OK\n", ""},
		{"nosuch", "-ERR nosuch Command not found!\n", ""},
		{"  NoSuch  a b ", "-ERR NoSuch Command not found!\n", ""},
		{"", "-ERR  Command not found!\n", ""},
	}
	for _, tt := range tests {
		gotArgs = "unset"
		reply := c.API(context.Background(), tt.line, ch)
		if reply != tt.reply {
			t.Errorf("API(%q) = %q, want %q", tt.line, reply, tt.reply)
			continue
		}
		if tt.reply == "+OK\n" && (gotArgs != tt.args || gotCh != ch) {
			t.Errorf("API(%q) ran with args %q channel %v, want %q", tt.line, gotArgs, gotCh, tt.args)
		}
	}
	if names := c.APINames(); len(names) != 1 || names["show"] != "list things" {
		t.Errorf("APINames = %v", names)
	}
}

func TestExecute(t *testing.T) {
	c := newTestCore(t)
	ch := c.NewChannel(ChannelSpec{})
	var got string
	c.RegisterApp("PlayBack", func(ctx context.Context, ch *Channel, data string) error {
		got = data
		return UserBusy
	})
	if err := c.Execute(context.Background(), ch, "playback", "a.wav"); err != UserBusy || got != "a.wav" {
		t.Errorf("Execute = %v with data %q", err, got)
	}
	if _, ok := c.LookupApp("PLAYBACK"); !ok {
		t.Error("LookupApp is case-sensitive")
	}
	err := c.Execute(context.Background(), ch, "nosuch", "")
	if !errors.Is(err, ErrNoApp) {
		t.Errorf("Execute(nosuch) = %v, want ErrNoApp", err)
	}
}

func TestRoute(t *testing.T) {
	tests := []struct {
		name   string
		router Router
		want   Cause
	}{
		{"returns a cause", func(ctx context.Context, ch *Channel) error { return UserBusy }, UserBusy},
		{"returns a wrapped cause", func(ctx context.Context, ch *Channel) error { return fmt.Errorf("bridge: %w", NoAnswer) }, NoAnswer},
		{"returns nil", func(ctx context.Context, ch *Channel) error { return nil }, NormalClearing},
		{"returns another error", func(ctx context.Context, ch *Channel) error { return errors.New("lua error") }, NormalClearing},
		{"hangs up itself", func(ctx context.Context, ch *Channel) error { ch.Hangup(CallRejected); return nil }, CallRejected},
		{"panics", func(ctx context.Context, ch *Channel) error { panic("dialplan bug") }, NormalTemporaryFailure},
		{"no dialplan", nil, NoRouteDestination},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t)
			if tt.router != nil {
				c.SetRouter(tt.router)
			}
			sig := &fakeSig{}
			ch := c.NewChannel(ChannelSpec{Direction: Inbound, Signalling: sig})
			if err := c.Route(ch); err != nil {
				t.Fatal(err)
			}
			<-ch.Done()
			if ch.Cause() != tt.want {
				t.Errorf("cause %s, want %s", ch.Cause(), tt.want)
			}
			if got := sig.hangupCauses(); len(got) != 1 || got[0] != tt.want {
				t.Errorf("signalling hangups %v", got)
			}
		})
	}
}

func TestRouteContextIsChannel(t *testing.T) {
	c := newTestCore(t)
	ended := make(chan error, 1)
	c.SetRouter(func(ctx context.Context, ch *Channel) error {
		<-ctx.Done()
		ended <- ctx.Err()
		return nil
	})
	ch := c.NewChannel(ChannelSpec{})
	if err := c.Route(ch); err != nil {
		t.Fatal(err)
	}
	ch.Hangup(OriginatorCancel)
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("dialplan ctx ended with %v", err)
	}
	if ch.Cause() != OriginatorCancel {
		t.Fatalf("cause %s", ch.Cause())
	}
}

func TestShutdown(t *testing.T) {
	c := newTestCore(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	c.SetRouter(func(ctx context.Context, ch *Channel) error {
		<-ctx.Done()
		close(entered)
		<-release // cleanup the dialplan still does after its channel is gone
		finished.Store(true)
		return nil
	})
	routed := c.NewChannel(ChannelSpec{})
	sig := &fakeSig{}
	idle := c.NewChannel(ChannelSpec{Signalling: sig})
	if err := c.Route(routed); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Shutdown(context.Background()); close(done) }()
	<-entered
	select {
	case <-done:
		t.Fatal("Shutdown returned while a dialplan was still running")
	default:
	}
	close(release)
	<-done
	if !finished.Load() {
		t.Fatal("Shutdown did not wait for the dialplan")
	}
	for _, ch := range []*Channel{routed, idle} {
		if ch.Cause() != SystemShutdown {
			t.Errorf("channel cause %s, want SYSTEM_SHUTDOWN", ch.Cause())
		}
	}
	if got := sig.hangupCauses(); len(got) != 1 || got[0] != SystemShutdown {
		t.Errorf("signalling hangups %v", got)
	}
	if len(c.Channels()) != 0 {
		t.Errorf("%d channels left", len(c.Channels()))
	}
	late := c.NewChannel(ChannelSpec{})
	if err := c.Route(late); err != ErrShuttingDown {
		t.Errorf("Route during shutdown = %v", err)
	}
}

func TestShutdownBoundedByContext(t *testing.T) {
	c := newTestCore(t)
	release := make(chan struct{})
	c.SetRouter(func(ctx context.Context, ch *Channel) error { <-release; return nil })
	if err := c.Route(c.NewChannel(ChannelSpec{})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Shutdown(ctx) // returns although the dialplan ignores its hangup
	close(release)
}
