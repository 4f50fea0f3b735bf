// Package sip owns the SIP side of ccpbx: one sipgo UserAgent per profile
// (like FreeSWITCH's sofia profiles), our own dialog layer on top of sipgo's
// transactions, inbound (UAS) and outbound (UAC) legs that implement
// call.Signalling and call.Media for the switch core, and the "user/" and
// "sofia/" dial-string endpoints.
//
// It turns SDP into calls on package media and REGISTER into calls on package
// registrar, but it decides nothing about where a call goes: the dialplan
// (through call.Core.Route) and the ACD (through call.Core.Originate) do.
// It must not import acd, dialplan or api.
package sip
