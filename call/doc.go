// Package call is the switch core: channels (UUID, variables, state, media,
// hangup cause), the registries of dialplan applications and API commands,
// the event bus, originate of FreeSWITCH dial strings, and bridging.
//
// It knows no protocol: sip implements Signalling and Media for its legs and
// registers the user/ and sofia/ endpoints; acd and dialplan register apps and
// API commands. call must not import sip, acd, dialplan or api.
package call
