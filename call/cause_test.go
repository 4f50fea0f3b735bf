package call

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseCause(t *testing.T) {
	tests := []struct {
		in   string
		want Cause
		ok   bool
	}{
		{"USER_BUSY", UserBusy, true},
		{"user_busy", UserBusy, true},
		{"  No_Answer ", NoAnswer, true},
		{"LOSE_RACE", LoseRace, true},
		{"originator_cancel", OriginatorCancel, true},
		{"17", UserBusy, true},
		{"16", NormalClearing, true},
		{"19", NoAnswer, true},
		{"21", CallRejected, true},
		{"1", UnallocatedNumber, true},
		{"102", RecoveryOnTimerExpire, true},
		{"9999", NormalClearing, false},
		{"-1", NormalClearing, false},
		{"", NormalClearing, false},
		{"BOGUS", NormalClearing, false},
		{"USER BUSY", NormalClearing, false},
	}
	for _, tt := range tests {
		got, ok := ParseCause(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseCause(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestQ850 checks the causes whose Q.850 numbers are fixed by the standard
// (and appear in FreeSWITCH's Reason headers and hangup_cause_q850).
func TestQ850(t *testing.T) {
	tests := map[Cause]int{
		UnallocatedNumber: 1, NoRouteDestination: 3, NormalClearing: 16, UserBusy: 17,
		NoUserResponse: 18, NoAnswer: 19, SubscriberAbsent: 20, CallRejected: 21,
		DestinationOutOfOrder: 27, InvalidNumberFormat: 28, FacilityRejected: 29,
		NormalUnspecified: 31, NetworkOutOfOrder: 38, NormalTemporaryFailure: 41,
		RequestedChanUnavail: 44, BearerCapabilityNotAvail: 58, ServiceUnavailable: 63,
		IncompatibleDestination: 88, MandatoryIEMissing: 96, RecoveryOnTimerExpire: 102,
		CauseNone: 0, Cause("NOT_A_CAUSE"): 0,
		// Above 127: FreeSWITCH's own codes.
		OriginatorCancel: 487, SystemShutdown: 501, LoseRace: 502, ManagerRequest: 503,
		AllottedTimeout: 602, MediaTimeout: 604, PickedOff: 605, UserNotRegistered: 606, InvalidGateway: 608,
	}
	for c, want := range tests {
		if got := c.Q850(); got != want {
			t.Errorf("%s.Q850() = %d, want %d", c, got, want)
		}
	}
	// Every number ParseCause accepts names the cause that owns it.
	for n := range 1000 {
		if c, ok := ParseCause(fmt.Sprint(n)); ok && c.Q850() != n {
			t.Errorf("ParseCause(%d) = %s whose Q850 is %d", n, c, c.Q850())
		}
	}
}

func TestCauseAsError(t *testing.T) {
	err := fmt.Errorf("dial: %w", UserBusy)
	if c, ok := AsCause(err); !ok || c != UserBusy {
		t.Errorf("AsCause(wrapped) = %s, %v", c, ok)
	}
	if !errors.Is(err, UserBusy) || UserBusy.Error() != "USER_BUSY" {
		t.Error("Cause does not behave as an error")
	}
	if c, ok := AsCause(nil); ok || c != CauseNone {
		t.Errorf("AsCause(nil) = %s, %v", c, ok)
	}
	if _, ok := AsCause(errors.New("x")); ok {
		t.Error("AsCause found a cause in a plain error")
	}
}

func FuzzParseCause(f *testing.F) {
	for _, s := range []string{"USER_BUSY", "17", "", "-0", "999999999999999999999", " normal_clearing "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseCause(s)
		if !ok && c != NormalClearing {
			t.Fatalf("ParseCause(%q) = %s, false; want NORMAL_CLEARING", s, c)
		}
		if ok {
			if again, ok2 := ParseCause(string(c)); !ok2 || again != c {
				t.Fatalf("ParseCause(%q) = %s does not parse back", s, c)
			}
		}
	})
}
