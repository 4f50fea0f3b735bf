package sip

import (
	"strconv"

	"ccpbx/call"
)

// statusForCause maps a hangup cause to the final response an unanswered
// inbound leg gets, following FreeSWITCH's hangup_cause_to_sip so phones and
// trunks see what they would see from FreeSWITCH.
func statusForCause(c call.Cause) (int, string) {
	switch c {
	case call.UnallocatedNumber, call.NoRouteDestination:
		return 404, "Not Found"
	case call.InvalidNumberFormat:
		return 484, "Address Incomplete"
	case call.UserBusy:
		return 486, "Busy Here"
	case call.NoUserResponse, call.RecoveryOnTimerExpire:
		return 408, "Request Timeout"
	case call.CallRejected:
		return 603, "Decline"
	case call.DestinationOutOfOrder:
		return 502, "Bad Gateway"
	case call.FacilityRejected:
		return 501, "Not Implemented"
	case call.IncompatibleDestination, call.BearerCapabilityNotAvail:
		return 488, "Not Acceptable Here"
	case call.OriginatorCancel, call.LoseRace, call.PickedOff:
		return 487, "Request Terminated"
	case call.NormalTemporaryFailure, call.SystemShutdown, call.RequestedChanUnavail,
		call.ServiceUnavailable, call.NetworkOutOfOrder:
		return 503, "Service Unavailable"
	case call.ExchangeRoutingError:
		return 483, "Too Many Hops"
	default:
		// NO_ANSWER, USER_NOT_REGISTERED, SUBSCRIBER_ABSENT, NORMAL_CLEARING
		// before answer and anything unmapped: "Temporarily Unavailable".
		return 480, "Temporarily Unavailable"
	}
}

// causeForStatus maps a failure response to an outbound INVITE to the hangup
// cause the ACD and the dialplan see; the ACD's reject/busy/no-answer delays
// depend on this mapping.
func causeForStatus(code int) call.Cause {
	switch code {
	case 401, 402, 403, 407, 603:
		return call.CallRejected
	case 404:
		return call.UnallocatedNumber
	case 485, 604:
		return call.NoRouteDestination
	case 408, 480, 504:
		return call.NoAnswer
	case 484:
		return call.InvalidNumberFormat
	case 486, 600:
		return call.UserBusy
	case 487:
		return call.OriginatorCancel
	case 488, 606:
		return call.IncompatibleDestination
	case 501:
		return call.FacilityRejected
	case 502:
		return call.NetworkOutOfOrder
	case 500, 503:
		return call.NormalTemporaryFailure
	}
	switch {
	case code >= 600:
		return call.CallRejected
	case code >= 500:
		return call.NormalTemporaryFailure
	}
	return call.NormalUnspecified
}

// reasonHeader renders the Reason header FreeSWITCH puts on BYE and CANCEL.
func reasonHeader(c call.Cause) string {
	return "Q.850;cause=" + strconv.Itoa(c.Q850()) + ";text=\"" + string(c) + "\""
}
