package call

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"ccpbx/internal/pbxtest"
)

// TestOriginate runs every originate case and then checks that none of them
// left a goroutine behind (legs still dialling, group watchers, timers).
func TestOriginate(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Run("simultaneous", testOriginateSimultaneous)
	t.Run("late answer loses the race", testOriginateLateAnswer)
	t.Run("sequential groups", testOriginateSequential)
	t.Run("first group answers", testOriginateFirstGroupWins)
	t.Run("failure causes", testOriginateCauses)
	t.Run("timeouts", testOriginateTimeouts)
	t.Run("caller cancels", testOriginateCallerCancel)
	t.Run("failed leg with a channel is hung up", testOriginateFailedLegChannel)
	t.Run("variables reach the endpoint", testOriginateVars)
	t.Run("shutdown refuses", testOriginateShutdown)
	if t.Failed() {
		return
	}
	pbxtest.CheckLeaks(t, before)
}

// answerer is an endpoint that answers at once.
func answerer(c *Core) epFunc {
	return func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		ch, _ := newLeg(c, "test/"+target)
		ch.MarkAnswered()
		return ch, nil
	}
}

// blocker is an endpoint that rings until its ctx ends and reports the
// cause it was given on seen.
func blocker(started chan<- string, seen chan<- error) epFunc {
	return func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		if started != nil {
			started <- target
		}
		<-ctx.Done()
		err := giveUp(ctx)
		if seen != nil {
			seen <- err
		}
		return nil, err
	}
}

func testOriginateSimultaneous(t *testing.T) {
	c := newTestCore(t)
	seen := make(chan error, 2)
	c.RegisterEndpoint("ok", answerer(c))
	c.RegisterEndpoint("ring", blocker(nil, seen))
	ch, err := c.Originate(context.Background(), "ring/1,ok/2,ring/3", OriginateOptions{})
	if err != nil {
		t.Fatalf("Originate: %v", err)
	}
	if ch.Name() != "test/2" || !ch.Answered() || !ch.Ready() {
		t.Fatalf("winner %s answered=%v ready=%v", ch.Name(), ch.Answered(), ch.Ready())
	}
	// Originate returns only after every leg gave up, so both are here.
	for range 2 {
		if err := <-seen; err != LoseRace {
			t.Errorf("losing leg gave up with %v, want LOSE_RACE", err)
		}
	}
	ch.Hangup(NormalClearing)
}

func testOriginateLateAnswer(t *testing.T) {
	c := newTestCore(t)
	late := make(chan *Channel, 1)
	lateSig := make(chan *fakeSig, 1)
	c.RegisterEndpoint("ok", answerer(c))
	// This leg answers anyway once told it lost: its 200 OK crossed the CANCEL.
	c.RegisterEndpoint("slow", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		ch, sig := newLeg(c, "test/slow")
		<-ctx.Done()
		ch.MarkAnswered()
		late <- ch
		lateSig <- sig
		return ch, nil
	}))
	win, err := c.Originate(context.Background(), "slow/1,ok/2", OriginateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if win.Name() != "test/2" {
		t.Fatalf("winner %s", win.Name())
	}
	lose, sig := <-late, <-lateSig
	if lose.Cause() != LoseRace {
		t.Errorf("late leg cause %q, want LOSE_RACE", lose.Cause())
	}
	if got := sig.hangupCauses(); len(got) != 1 || got[0] != LoseRace {
		t.Errorf("late leg signalling hangups %v, want [LOSE_RACE]", got)
	}
	if !win.Ready() {
		t.Error("the winner was hung up")
	}
	win.Hangup(NormalClearing)
}

func testOriginateSequential(t *testing.T) {
	c := newTestCore(t)
	var mu sync.Mutex
	var order []string
	busyReturned := false
	c.RegisterEndpoint("busy", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		mu.Lock()
		order = append(order, "busy/"+target)
		busyReturned = true
		mu.Unlock()
		return nil, UserBusy
	}))
	c.RegisterEndpoint("ok", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		mu.Lock()
		order = append(order, "ok/"+target)
		if !busyReturned {
			t.Error("second group dialled before the first failed")
		}
		mu.Unlock()
		return answerer(c)(ctx, target, vars, o)
	}))
	ch, err := c.Originate(context.Background(), "busy/1|ok/2", OriginateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Name() != "test/2" || strings.Join(order, " ") != "busy/1 ok/2" {
		t.Errorf("winner %s, dial order %v", ch.Name(), order)
	}
	ch.Hangup(NormalClearing)
}

func testOriginateFirstGroupWins(t *testing.T) {
	c := newTestCore(t)
	c.RegisterEndpoint("ok", answerer(c))
	c.RegisterEndpoint("never", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		t.Error("second group dialled although the first answered")
		return nil, NoAnswer
	}))
	ch, err := c.Originate(context.Background(), "ok/1|never/2", OriginateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch.Hangup(NormalClearing)
}

func testOriginateCauses(t *testing.T) {
	c := newTestCore(t)
	c.RegisterEndpoint("fail", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		switch target {
		case "plain":
			return nil, errors.New("socket closed")
		case "wrapped":
			return nil, fmt.Errorf("invite 486: %w", UserBusy)
		case "nil":
			return nil, nil
		}
		cause, _ := ParseCause(target)
		return nil, cause
	}))
	tests := []struct {
		dial string
		want Cause
	}{
		{"error/USER_BUSY", UserBusy},
		{"error/user_busy", UserBusy},
		{"error/NO_ANSWER,error/USER_BUSY", UserBusy},
		{"error/NO_ANSWER,error/CALL_REJECTED", CallRejected},
		{"error/NORMAL_TEMPORARY_FAILURE,error/NO_ANSWER", NoAnswer},
		{"error/USER_NOT_REGISTERED,error/NO_USER_RESPONSE", NoUserResponse},
		{"error/DESTINATION_OUT_OF_ORDER", DestinationOutOfOrder},
		{"fail/NO_ANSWER,fail/USER_BUSY", UserBusy},
		{"fail/wrapped", UserBusy},
		{"fail/plain", NormalTemporaryFailure},
		{"fail/nil", NormalTemporaryFailure},
		{"error/USER_BUSY|error/NO_ANSWER", NoAnswer},
		{"error/NO_ANSWER|fail/CALL_REJECTED", CallRejected},
		{"nope/1001", InvalidGateway},
		{"1001", InvalidNumberFormat},
		{"", InvalidNumberFormat},
		{"{a=b user/1", InvalidNumberFormat},
	}
	for _, tt := range tests {
		ch, err := c.Originate(context.Background(), tt.dial, OriginateOptions{})
		if ch != nil {
			t.Errorf("Originate(%q) returned a channel", tt.dial)
		}
		if got, ok := AsCause(err); !ok || got != tt.want {
			t.Errorf("Originate(%q) = %v, want %s", tt.dial, err, tt.want)
		}
	}
}

func testOriginateTimeouts(t *testing.T) {
	// One second is the smallest timeout a dial string can say; the cases
	// run side by side (in goroutines, not bound by -parallel) so they cost
	// one second together.
	tests := []struct {
		dial string
		vars map[string]string
		legs int
	}{
		{"{leg_timeout=1}ring/1", nil, 1},
		{"[leg_timeout=1]ring/1", nil, 1},
		{"{call_timeout=1}ring/1", nil, 1},
		{"{originate_timeout=1}ring/1,ring/2", nil, 2},
		// The whole originate ends before the leg's own timeout would.
		{"{originate_timeout=1,leg_timeout=30}ring/1|ring/2", nil, 1},
		{"ring/1", map[string]string{"leg_timeout": "1"}, 1},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newTestCore(t)
			seen := make(chan error, tt.legs)
			c.RegisterEndpoint("ring", blocker(nil, seen))
			_, err := c.Originate(context.Background(), tt.dial, OriginateOptions{Vars: tt.vars})
			if err != NoAnswer {
				t.Errorf("Originate(%q, %v) = %v, want NO_ANSWER", tt.dial, tt.vars, err)
			}
			for range tt.legs {
				if got := <-seen; got != NoAnswer {
					t.Errorf("%q: leg gave up with %v, want NO_ANSWER", tt.dial, got)
				}
			}
		}()
	}
	wg.Wait()
}

func testOriginateCallerCancel(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(context.CancelCauseFunc)
		want   Cause
	}{
		{"plain cancel", func(cancel context.CancelCauseFunc) { cancel(nil) }, OriginatorCancel},
		{"cancel with a cause", func(cancel context.CancelCauseFunc) { cancel(ManagerRequest) }, ManagerRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCore(t)
			started := make(chan string, 2)
			seen := make(chan error, 2)
			c.RegisterEndpoint("ring", blocker(started, seen))
			c.RegisterEndpoint("never", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
				t.Error("next group dialled after the caller cancelled")
				return nil, NoAnswer
			}))
			ctx, cancel := context.WithCancelCause(context.Background())
			go func() {
				<-started
				<-started
				tt.cancel(cancel)
			}()
			_, err := c.Originate(ctx, "ring/1,ring/2|never/3", OriginateOptions{})
			if err != tt.want {
				t.Errorf("Originate = %v, want %s", err, tt.want)
			}
			for range 2 {
				if got := <-seen; got != tt.want {
					t.Errorf("leg gave up with %v, want %s", got, tt.want)
				}
			}
		})
	}
}

func testOriginateFailedLegChannel(t *testing.T) {
	c := newTestCore(t)
	legs := make(chan *Channel, 1)
	c.RegisterEndpoint("half", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		ch, _ := newLeg(c, "test/half")
		legs <- ch
		return ch, fmt.Errorf("183 then 480: %w", NoUserResponse)
	}))
	if _, err := c.Originate(context.Background(), "half/1", OriginateOptions{}); err != NoUserResponse {
		t.Fatalf("Originate = %v", err)
	}
	leg := <-legs
	if leg.Ready() || leg.Cause() != NoUserResponse {
		t.Errorf("failed leg ready=%v cause=%s", leg.Ready(), leg.Cause())
	}
	if len(c.Channels()) != 0 {
		t.Errorf("%d channels left", len(c.Channels()))
	}
}

func testOriginateVars(t *testing.T) {
	c := newTestCore(t)
	got := make(chan map[string]string, 1)
	caller := c.NewChannel(ChannelSpec{Direction: Inbound})
	c.RegisterEndpoint("user", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		if target != "1001@default" || o.Caller != caller {
			t.Errorf("target %q caller %v", target, o.Caller)
		}
		got <- vars
		return nil, UserBusy
	}))
	_, err := c.Originate(context.Background(), "{a=dial,b=dial}[b=leg]USER/1001@default", OriginateOptions{
		Caller: caller, Vars: map[string]string{"a": "opt", "c": "opt"},
	})
	if err != UserBusy {
		t.Fatalf("Originate = %v", err)
	}
	vars := <-got
	for k, want := range map[string]string{"a": "dial", "b": "leg", "c": "opt"} {
		if vars[k] != want {
			t.Errorf("var %s = %q, want %q (options < dial string {} < [])", k, vars[k], want)
		}
	}
	caller.Hangup(NormalClearing)
}

func testOriginateShutdown(t *testing.T) {
	c := newTestCore(t)
	c.RegisterEndpoint("ok", epFunc(func(ctx context.Context, target string, vars map[string]string, o *OriginateOptions) (*Channel, error) {
		t.Error("endpoint dialled during shutdown")
		return nil, NoAnswer
	}))
	c.Shutdown(context.Background())
	if !c.Closing() {
		t.Fatal("Closing false after Shutdown")
	}
	if _, err := c.Originate(context.Background(), "ok/1", OriginateOptions{}); err != ErrShuttingDown || err != SystemShutdown {
		t.Fatalf("Originate during shutdown = %v, want SYSTEM_SHUTDOWN", err)
	}
}

func TestPickCause(t *testing.T) {
	tests := []struct {
		in   []Cause
		want Cause
	}{
		{nil, NoAnswer},
		{[]Cause{NormalTemporaryFailure}, NormalTemporaryFailure},
		{[]Cause{NormalTemporaryFailure, DestinationOutOfOrder}, DestinationOutOfOrder},
		{[]Cause{NoAnswer, UserBusy, CallRejected}, UserBusy},
		{[]Cause{UserNotRegistered, NoAnswer}, NoAnswer},
		{[]Cause{LoseRace, UserNotRegistered}, UserNotRegistered},
	}
	for _, tt := range tests {
		if got := pickCause(tt.in); got != tt.want {
			t.Errorf("pickCause(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
