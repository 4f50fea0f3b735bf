package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
	"ccpbx/media"
	"ccpbx/registrar"
	"ccpbx/sounds"
)

// testPBX is the switch with both profiles on 127.0.0.1 with ephemeral
// ports, users 1001-1003 and a tiny dialplan: in context "default" 10xx
// bridges user/10xx; in "blueivr" 2xxx bridges user/1002 (a trunk call to
// an agent), 3000 answers with music until the caller hangs up (a queue
// without agents) and 3001 answers and hangs up; everything else is
// NO_ROUTE_DESTINATION.
type testPBX struct {
	core  *call.Core
	reg   *registrar.Registrar
	stack *Stack
	eng   *media.Engine

	mu          sync.Mutex
	callTimeout string
	inbound     []*call.Channel
}

var extension = regexp.MustCompile(`^(10[0-9][0-9])$`)

func testLogger() *slog.Logger {
	if os.Getenv("CCPBX_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestPBX(t testing.TB, mediaOpts ...func(*media.Config)) *testPBX {
	t.Helper()
	return newTestPBXWith(t, Limits{}, nil, mediaOpts...)
}

// newTestPBXProfiles is newTestPBX with edit applied to both profiles.
func newTestPBXProfiles(t testing.TB, edit func(*config.Profile), mediaOpts ...func(*media.Config)) *testPBX {
	t.Helper()
	return newTestPBXWith(t, Limits{}, func(ps []config.Profile) {
		if edit != nil {
			for i := range ps {
				edit(&ps[i])
			}
		}
	}, mediaOpts...)
}

// newTestPBXWith is newTestPBX with switch-wide limits and a hook that may
// change the two profiles' configuration before the stack is built.
func newTestPBXWith(t testing.TB, lim Limits, profileOpt func([]config.Profile), mediaOpts ...func(*media.Config)) *testPBX {
	t.Helper()
	log := testLogger()
	var users []config.User
	for _, id := range []string{"1001", "1002", "1003"} {
		users = append(users, config.User{
			ID:     id,
			Params: map[string]string{"password": "1234"},
			Variables: map[string]string{
				"user_context":               "default",
				"effective_caller_id_name":   "Extension " + id,
				"effective_caller_id_number": id,
			},
		})
	}
	reg, err := registrar.New(registrar.Config{Users: users, Profile: "internal"}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	mc := media.Config{RTPStart: 40000, RTPEnd: 49999, PortQuarantine: time.Millisecond, SoundsFS: sounds.FS,
		Consent: media.ConsentConfirmOrRTP} // ccpbx's default media_consent
	for _, o := range mediaOpts {
		o(&mc)
	}
	eng, err := media.NewEngine(mc, log)
	if err != nil {
		t.Fatal(err)
	}
	core := call.NewCore("test", log)
	profiles := []config.Profile{
		{Name: "internal", ListenIP: "127.0.0.1", Port: 0, Transports: []string{"udp", "tcp"}, Context: "default", Register: true, AuthCalls: true},
		{Name: "blueivr", ListenIP: "127.0.0.1", Port: 0, Transports: []string{"udp", "tcp"}, Context: "blueivr"},
	}
	if profileOpt != nil {
		profileOpt(profiles)
	}
	st, err := New(Options{Profiles: profiles, Core: core, Registrar: reg, Media: eng, Log: log, UserAgent: "ccpbx-test", Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	x := &testPBX{core: core, reg: reg, stack: st, eng: eng}
	core.SetRouter(x.route)
	ctx, cancel := context.WithCancel(context.Background())
	if err := st.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		core.Shutdown(sctx)
		st.Close()
		cancel()
	})
	return x
}

func (x *testPBX) route(ctx context.Context, ch *call.Channel) error {
	x.mu.Lock()
	x.inbound = append(x.inbound, ch)
	timeout := x.callTimeout
	x.mu.Unlock()
	dest := ch.Var("destination_number")
	if dest == "300" && ch.Var("context") == "default" {
		// Like the article's agent_login: answer, play the prompt, hang up.
		if err := ch.Answer(); err != nil {
			return err
		}
		return ch.Media().Play(ctx, "ivr/common/ivr-you_are_now_logged_in.wav")
	}
	if dest == "3001" && ch.Var("context") == "blueivr" {
		return ch.Answer() // and hang up at once, likely before the ACK
	}
	if dest == "3000" && ch.Var("context") == "blueivr" {
		// A queue nobody answers: music until the caller leaves.
		if err := ch.Answer(); err != nil {
			return err
		}
		stop, err := ch.Media().Music("ivr/common/music-on-hold.wav")
		if err != nil {
			return err
		}
		defer stop()
		<-ch.Done()
		return nil
	}
	target := ""
	switch ch.Var("context") {
	case "default":
		if extension.MatchString(dest) {
			target = "user/" + dest
		}
	case "blueivr":
		if len(dest) == 4 && dest[0] == '2' {
			target = "user/1002"
		}
	}
	if target == "" {
		return call.NoRouteDestination
	}
	if timeout != "" {
		target = "{call_timeout=" + timeout + "}" + target
	}
	leg, err := x.core.Originate(ctx, target, call.OriginateOptions{
		Caller: ch,
		OnRing: func(*call.Channel, bool) { _ = ch.RingReady() },
	})
	if err != nil {
		return err
	}
	if err := ch.Answer(); err != nil {
		leg.Hangup(call.NormalClearing)
		return err
	}
	if err := x.core.Bridge(ch, leg); err != nil {
		// The caller hung up between its answer and the bridge (its media
		// is closed): the B leg is still ours to end, as appBridge does.
		leg.Hangup(call.NormalTemporaryFailure)
		return err
	}
	return nil
}

func (x *testPBX) inboundLegs() []*call.Channel {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]*call.Channel(nil), x.inbound...)
}

func (x *testPBX) inboundLeg(t *testing.T, i int) *call.Channel {
	t.Helper()
	legs := x.inboundLegs()
	if i >= len(legs) {
		t.Fatalf("no inbound channel %d (have %d)", i, len(legs))
	}
	return legs[i]
}

func (x *testPBX) internal() string { return x.stack.Addr("internal").String() }
func (x *testPBX) trunk() string    { return x.stack.Addr("blueivr").String() }

// phone starts a test phone registered as user on the internal profile.
func (x *testPBX) phone(t testing.TB, user string, opts ...testphone.Option) *testphone.Phone {
	t.Helper()
	p := testphone.New(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Register(ctx, x.internal(), user, "1234", time.Hour)
	if err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("register %s: %d", user, res.StatusCode)
	}
	return p
}

// waitIdle waits until the switch has no channels left.
func (x *testPBX) waitIdle(t *testing.T, ctx context.Context) {
	t.Helper()
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	pbxtest.WaitFor(t, wait, func() bool { return len(x.core.Channels()) == 0 },
		"the switch to have no channels; still up: %v", upChannels{x.core})
	// A leg releases its resources (the per-IP call count among them) just
	// after its channel is gone.
	pbxtest.WaitFor(t, wait, func() bool {
		x.stack.mu.Lock()
		defer x.stack.mu.Unlock()
		return len(x.stack.legs) == 0
	}, "the stack to have released every leg")
}

// upChannels names the channels a core still has, when printed.
type upChannels struct{ core *call.Core }

func (u upChannels) String() string {
	var names []string
	for _, ch := range u.core.Channels() {
		names = append(names, fmt.Sprintf("%s (%s)", ch.Name(), ch.State()))
	}
	return strings.Join(names, ", ")
}

func itoa(n int) string { return strconv.Itoa(n) }

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// exchangeAudio proves RTP flows both ways between two answered calls.
func exchangeAudio(t *testing.T, ctx context.Context, a, b *testphone.Call) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- a.Audio.SendUntil(ctx, 0x11, func() bool { return b.Audio.Received(0x11) > 0 })
	}()
	go func() {
		defer wg.Done()
		errs <- b.Audio.SendUntil(ctx, 0x22, func() bool { return a.Audio.Received(0x22) > 0 })
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("audio: %v", err)
		}
	}
}

func TestExtensionCallAudioAndCallerBye(t *testing.T) {
	x := newTestPBX(t)
	p1, p2 := x.phone(t, "1001"), x.phone(t, "1002")
	ctx := testCtx(t, 15*time.Second)

	c1, in := dialed(t, ctx, p1, p2)
	if err := c1.WaitProvisional(ctx); err != nil {
		t.Fatalf("caller did not hear ringing: %v", err)
	}
	from := in.Request().From()
	if from.Address.User != "1001" || from.DisplayName != "Extension 1001" {
		t.Errorf("callee sees From %q <%s>", from.DisplayName, from.Address.User)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	talking(t, ctx, c1, in)

	if err := c1.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.WaitEnded(ctx); err != nil {
		t.Fatal(err)
	}
	if bye := in.Bye(); bye == nil {
		t.Fatal("callee got no BYE")
	} else if r := bye.GetHeader("Reason"); r == nil || r.Value() != `Q.850;cause=16;text="NORMAL_CLEARING"` {
		t.Errorf("BYE Reason %v", r)
	}
	x.waitIdle(t, ctx)
}
