package pbxtest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakTimeout bounds how long a leak check waits for goroutines that are
// still on their way out (a reader woken by a closed socket, a goroutine
// that has sent its last result). Only a broken build waits this long.
const leakTimeout = 10 * time.Second

// ignores are goroutines that are not leaks: they belong to a library, live
// for the whole process by design, and no ccpbx code can end them. Each entry
// says why it is here; add one only with that justification. None is needed
// today: modernc sqlite (store), sipgo after UserAgent.Close
// (internal/testphone) and gopher-lua (dialplan) leave nothing running once
// closed, as those packages' TestMains check.
var ignores = []goleak.Option{}

// VerifyNoLeaks runs the package's tests and then fails the run if any
// goroutine is still alive that the tests started and did not end. Use it as
// the whole TestMain:
//
//	func TestMain(m *testing.M) { pbxtest.VerifyNoLeaks(m) }
//
// It checks once, after all tests, so it works with t.Parallel. opts adds
// package-specific goleak ignores.
func VerifyNoLeaks(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := findLeaks(opts); err != nil {
			fmt.Fprintf(os.Stderr, "pbxtest: goroutines still running after all tests passed:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// CheckLeaks fails t if any goroutine is alive other than the testing
// package's own and the known library ones, waiting for goroutines that are
// on their way out. Call it once the test has closed what it started
// (t.Cleanup functions run after deferred calls, so a deferred check sees
// what they have not closed yet). To blame only the test's own goroutines,
// take goleak.IgnoreCurrent() at its start and pass it in opts:
//
//	before := goleak.IgnoreCurrent()
//	... start and close things ...
//	pbxtest.CheckLeaks(t, before)
//
// Not for tests that run in parallel with others: it cannot tell whose
// goroutine it sees; VerifyNoLeaks in TestMain can.
func CheckLeaks(t testing.TB, opts ...goleak.Option) {
	t.Helper()
	if err := findLeaks(opts); err != nil {
		t.Errorf("pbxtest: goroutines still running at the end of %s:\n%v", t.Name(), err)
	}
}

// findLeaks asks goleak until it finds nothing or leakTimeout has passed.
// goleak's own retries give up after well under a second, too soon on a
// loaded machine; this loop is what keeps the check from flaking.
func findLeaks(opts []goleak.Option) error {
	all := append(append([]goleak.Option{}, ignores...), opts...)
	var err error
	Until(leakTimeout, func() bool {
		err = goleak.Find(all...)
		return err == nil
	})
	return err
}
