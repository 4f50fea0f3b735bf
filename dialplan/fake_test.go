package dialplan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"ccpbx/call"
	"ccpbx/config"
	"ccpbx/internal/pbxtest"
)

// TestMain fails the package if any test leaves a goroutine running.
func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }

// recorder remembers what signalling and media were asked to do, in order.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

// waitSaw waits until the recorder has seen s.
func (r *recorder) waitSaw(t *testing.T, s string) {
	t.Helper()
	pbxtest.WaitFor(t, 10*time.Second, func() bool { return slices.Contains(r.all(), s) },
		"the recorder to see %q; saw %v", s, recorded{r})
}

// recorded prints what a recorder saw when a wait fails (not before).
type recorded struct{ r *recorder }

func (p recorded) String() string { return fmt.Sprintf("%q", p.r.all()) }

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

type fakeSig struct{ rec *recorder }

func (f fakeSig) Ring(early bool) error {
	if early {
		f.rec.add("183")
	} else {
		f.rec.add("180")
	}
	return nil
}
func (f fakeSig) Answer() error                 { f.rec.add("200"); return nil }
func (f fakeSig) Hangup(cause call.Cause) error { f.rec.add("hangup " + string(cause)); return nil }

type fakeMedia struct {
	rec     *recorder
	name    string
	missing map[string]bool

	mu    sync.Mutex
	digit func(rune)
}

var errNoFile = errors.New("no such sound")

func (m *fakeMedia) Play(ctx context.Context, path string) error {
	if m.missing[path] {
		return errNoFile
	}
	m.rec.add("play " + path)
	return nil
}
func (m *fakeMedia) Music(path string) (func(), error) {
	m.rec.add("music " + path)
	return func() {}, nil
}
func (m *fakeMedia) OnDigit(fn func(rune)) func() {
	m.mu.Lock()
	m.digit = fn
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		m.digit = nil
		m.mu.Unlock()
	}
}
func (m *fakeMedia) SendDigits(d string) error { m.rec.add("send " + d); return nil }
func (m *fakeMedia) Bridge(other call.Media) (func(), error) {
	o := other.(*fakeMedia)
	m.rec.add("relay " + m.name + "<->" + o.name)
	return func() { m.rec.add("unrelay " + m.name + "<->" + o.name) }, nil
}
func (m *fakeMedia) Codec() string { return "PCMU" }

// press delivers a DTMF digit as the media would.
func (m *fakeMedia) press(r rune) bool {
	m.mu.Lock()
	fn := m.digit
	m.mu.Unlock()
	if fn == nil {
		return false
	}
	fn(r)
	return true
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// harness is a real call.Core with a dialplan and a recorder app.
type harness struct {
	t    *testing.T
	core *call.Core
	dp   *Dialplan
	rec  *recorder // what the "rec" app and the fakes saw
}

func newHarness(t *testing.T, cfg config.Dialplan, opts Options) *harness {
	t.Helper()
	core := call.NewCore("test", quietLog())
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	dp, err := New(cfg, core, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	dp.RegisterApps()
	core.SetRouter(dp.Route)
	h := &harness{t: t, core: core, dp: dp, rec: &recorder{}}
	core.RegisterApp("rec", func(_ context.Context, _ *call.Channel, data string) error {
		h.rec.add("rec " + data)
		return nil
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		core.Shutdown(ctx)
	})
	return h
}

func (h *harness) channel(vars map[string]string) (*call.Channel, *fakeMedia) {
	m := &fakeMedia{rec: h.rec, name: "A"}
	ch := h.core.NewChannel(call.ChannelSpec{
		Name:       "sofia/test/" + vars["caller_id_number"],
		Direction:  call.Inbound,
		Vars:       vars,
		Signalling: fakeSig{h.rec},
		Media:      m,
		Log:        quietLog(),
	})
	return ch, m
}

// call routes a new channel through core.Route and waits for its hangup.
func (h *harness) call(vars map[string]string) *call.Channel {
	h.t.Helper()
	ch, _ := h.channel(vars)
	if err := h.core.Route(ch); err != nil {
		h.t.Fatalf("Route: %v", err)
	}
	select {
	case <-ch.Done():
	case <-time.After(10 * time.Second):
		h.t.Fatalf("call to %s did not end; saw %q", vars["destination_number"], h.rec.all())
	}
	return ch
}

func ext(name string, conds ...config.Condition) config.Extension {
	return config.Extension{Name: name, Conditions: conds}
}

func cond(field, expr string, actions ...string) config.Condition {
	return config.Condition{Field: field, Expression: expr, Actions: actions}
}
