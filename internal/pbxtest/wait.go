package pbxtest

import (
	"fmt"
	"testing"
	"time"
)

// Poll intervals of WaitFor: it checks at once, then backs off from
// pollMin to pollMax so a condition that becomes true quickly is seen
// quickly and a slow one does not burn a shared CPU.
const (
	pollMin = time.Millisecond
	pollMax = 20 * time.Millisecond
)

// WaitFor polls cond until it returns true and fails the test (t.Fatalf) if
// it is still false after timeout. msgf, if given, is a format string and its
// arguments naming what was awaited; the failure says "timed out after
// TIMEOUT waiting for MSG".
//
// cond must be a condition that the code under test makes true by itself
// (a counter reached, a state entered, a goroutine gone); WaitFor replaces
// sleeping "long enough". The timeout is a bound for a broken build, not a
// performance requirement: make it generous (seconds). WaitFor must be called
// from the test's goroutine, like t.Fatal; elsewhere use [Until].
//
// msgf is formatted only when the wait fails, so an argument that is a
// fmt.Stringer can describe the state at that moment (what was seen
// instead).
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, msgf ...any) {
	t.Helper()
	if Until(timeout, cond) {
		return
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, describe(msgf))
}

// Until polls cond like WaitFor and reports whether it became true within
// timeout, for code that must not end the test itself: test infrastructure
// that returns errors (internal/testphone), goroutines other than the
// test's. cond is always checked once more after the deadline, so a slow
// scheduler cannot turn a true condition into a failure.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	interval := pollMin
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return cond()
		}
		time.Sleep(interval)
		interval = min(2*interval, pollMax)
	}
}

// describe formats WaitFor's msgf.
func describe(msgf []any) string {
	if len(msgf) == 0 {
		return "the condition"
	}
	format, ok := msgf[0].(string)
	if !ok {
		return fmt.Sprint(msgf...)
	}
	return fmt.Sprintf(format, msgf[1:]...)
}
