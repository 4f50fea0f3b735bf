// Package sip is ccpbx's one SIP edge: one sipgo UserAgent per profile
// (like FreeSWITCH's sofia profiles), our own dialog layer on top of sipgo's
// transactions, the legs that implement call.Signalling and call.Media for
// the switch core, REGISTER, digest challenges, and the "user/" and
// "sofia/" dial-string endpoints.
//
// The seams, file by file:
//   - routes.go binds each profile's request handlers (panics answer 500);
//     every request first meets admit (limits.go): the profile's ACL, the
//     RFC 4475 checks sipgo leaves to us (validate.go), and for new calls
//     and registrations the call limits and overload shedding
//     (overload.go). A refused request is answered there, never handled.
//   - respond.go: every response ccpbx sends goes through Stack.reply, so
//     REGISTER and INVITE answers agree by construction on where they go
//     (the UDP source address, the TCP connection), the To tag, our
//     User-Agent, the UDP size limit and which Require tags we refuse.
//   - register.go receives REGISTER and asks the registrar (Verify,
//     Register); authenticate is the digest challenge for REGISTER (401)
//     and calls (407). The registrar itself knows no SIP.
//   - inbound.go creates the channel of an INVITE we receive; its leg is a
//     uasLeg (uas.go: provisionals, 200 and its retransmission, the ACK
//     wait (Timer H), final errors, BYE after the ACK). The ACK is the
//     caller's consent to media (media.Leg.Confirm); sessiontimer.go ends
//     calls whose RFC 4028 session is not refreshed.
//   - outbound.go resolves dial strings to INVITEs we send; their leg is a
//     uacLeg (uac.go: the response loop, digest retry, CANCEL, late 2xx).
//     target.go says where a registered phone is reached (its Contact or
//     the REGISTER's source, FreeSWITCH's NAT rules).
//     What both kinds of leg share (state, dialog, in-dialog requests,
//     re-offers, BYE) is leg.go; dialog.go is RFC 3261 §12.
//   - user/ with several registered contacts hands one dial per contact to
//     call.Race, the same parallel fork as a comma group of a dial string.
//   - transportlog.go keeps input that is not SIP away from sipgo (its
//     transport read hook for UDP, a wrapped listener for TCP) and bounds
//     SIP over TCP: connection caps, idle and partial-message deadlines,
//     an accept loop that outlives EMFILE (guard.Listener).
//
// It turns SDP into calls on package media and REGISTER into calls on package
// registrar, but it decides nothing about where a call goes: the dialplan
// (through call.Core.Route) and the ACD (through call.Core.Originate) do.
// It must not import acd, dialplan or api.
package sip
