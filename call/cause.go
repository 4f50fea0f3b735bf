package call

import (
	"strconv"
	"strings"
)

// Cause is a hangup cause with FreeSWITCH's spelling. It is also an error so
// originate and apps can return it; errors.As recovers it.
type Cause string

// Hangup causes used by ccpbx (the Q.850-derived names FreeSWITCH prints).
const (
	CauseNone                Cause = ""
	NormalClearing           Cause = "NORMAL_CLEARING"
	UserBusy                 Cause = "USER_BUSY"
	NoUserResponse           Cause = "NO_USER_RESPONSE"
	NoAnswer                 Cause = "NO_ANSWER"
	CallRejected             Cause = "CALL_REJECTED"
	OriginatorCancel         Cause = "ORIGINATOR_CANCEL"
	UserNotRegistered        Cause = "USER_NOT_REGISTERED"
	NoRouteDestination       Cause = "NO_ROUTE_DESTINATION"
	UnallocatedNumber        Cause = "UNALLOCATED_NUMBER"
	LoseRace                 Cause = "LOSE_RACE"
	DestinationOutOfOrder    Cause = "DESTINATION_OUT_OF_ORDER"
	NormalTemporaryFailure   Cause = "NORMAL_TEMPORARY_FAILURE"
	RecoveryOnTimerExpire    Cause = "RECOVERY_ON_TIMER_EXPIRE"
	IncompatibleDestination  Cause = "INCOMPATIBLE_DESTINATION"
	MediaTimeout             Cause = "MEDIA_TIMEOUT"
	SystemShutdown           Cause = "SYSTEM_SHUTDOWN"
	ManagerRequest           Cause = "MANAGER_REQUEST"
	SubscriberAbsent         Cause = "SUBSCRIBER_ABSENT"
	InvalidNumberFormat      Cause = "INVALID_NUMBER_FORMAT"
	ServiceUnavailable       Cause = "SERVICE_UNAVAILABLE"
	BearerCapabilityNotAvail Cause = "BEARERCAPABILITY_NOTAVAIL"
	NormalUnspecified        Cause = "NORMAL_UNSPECIFIED"
	AllottedTimeout          Cause = "ALLOTTED_TIMEOUT"
	ExchangeRoutingError     Cause = "EXCHANGE_ROUTING_ERROR"
	NetworkOutOfOrder        Cause = "NETWORK_OUT_OF_ORDER"
	FacilityRejected         Cause = "FACILITY_REJECTED"
	RequestedChanUnavail     Cause = "REQUESTED_CHAN_UNAVAIL"
	CallAwardedDelivered     Cause = "CALL_AWARDED_DELIVERED"
	PickedOff                Cause = "PICKED_OFF"
	MandatoryIEMissing       Cause = "MANDATORY_IE_MISSING"
	InvalidGateway           Cause = "INVALID_GATEWAY"
)

func (c Cause) Error() string { return string(c) }

// q850 maps causes to their numbers: the Q.850 number up to 127, above it
// FreeSWITCH's own cause code (switch_call_cause_t), which is what sofia
// puts in a non-Q.850 Reason header.
var q850 = map[Cause]int{
	UnallocatedNumber: 1, NoRouteDestination: 3, NormalClearing: 16, UserBusy: 17,
	NoUserResponse: 18, NoAnswer: 19, SubscriberAbsent: 20, CallRejected: 21,
	DestinationOutOfOrder: 27, InvalidNumberFormat: 28, FacilityRejected: 29,
	NormalUnspecified: 31, NetworkOutOfOrder: 38, NormalTemporaryFailure: 41,
	ServiceUnavailable: 63, BearerCapabilityNotAvail: 58, IncompatibleDestination: 88,
	RecoveryOnTimerExpire: 102, OriginatorCancel: 487, LoseRace: 502,
	UserNotRegistered: 606, MediaTimeout: 604, SystemShutdown: 501, ManagerRequest: 503,
	AllottedTimeout: 602, ExchangeRoutingError: 25, RequestedChanUnavail: 44,
	PickedOff: 605, MandatoryIEMissing: 96, InvalidGateway: 608, CallAwardedDelivered: 7,
}

// Q850 returns the cause's number (0 for an unknown cause): the Q.850 code
// up to 127, FreeSWITCH's own code above (LOSE_RACE is 502).
func (c Cause) Q850() int { return q850[c] }

// q850Var is the value of hangup_cause_q850: FreeSWITCH reports causes
// that have no Q.850 code (the ones numbered above 127) as 16,
// NORMAL_CLEARING.
func q850Var(c Cause) int {
	if n := c.Q850(); n > 0 && n <= 127 {
		return n
	}
	return 16
}

// ParseCause accepts a cause name in any case ("normal_clearing") or the
// Q.850 number of a name-unique cause ("17"). Unknown input yields
// NormalClearing and false.
func ParseCause(s string) (Cause, bool) {
	up := Cause(strings.ToUpper(strings.TrimSpace(s)))
	if _, ok := q850[up]; ok {
		return up, true
	}
	if n, err := strconv.Atoi(string(up)); err == nil {
		if c, ok := byQ850[n]; ok {
			return c, true
		}
	}
	return NormalClearing, false
}

// byQ850 maps a number back to the cause it names; numbers shared by several
// causes resolve to the most common one.
var byQ850 = map[int]Cause{
	1: UnallocatedNumber, 3: NoRouteDestination, 16: NormalClearing, 17: UserBusy,
	18: NoUserResponse, 19: NoAnswer, 20: SubscriberAbsent, 21: CallRejected,
	27: DestinationOutOfOrder, 28: InvalidNumberFormat, 31: NormalUnspecified,
	41: NormalTemporaryFailure, 88: IncompatibleDestination, 102: RecoveryOnTimerExpire,
}
