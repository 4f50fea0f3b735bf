// Package call is the switch core: channels (UUID, variables, state, media,
// hangup cause), the registries of dialplan applications and API commands,
// the event bus, originate of FreeSWITCH dial strings, and bridging.
//
// It also owns how FreeSWITCH reads text, so every module reads it alike:
// Separate and SeparateNested (switch_separate_string, for API lines,
// application data and dial strings), SwitchTrue (switch_true) and Atoi
// (C's atoi, as FreeSWITCH reads numeric variables).
//
// It knows no protocol: sip implements Signalling and Media for its legs and
// registers the user/ and sofia/ endpoints; acd and dialplan register apps and
// API commands. call imports nothing from ccpbx, so any module may use it.
package call
