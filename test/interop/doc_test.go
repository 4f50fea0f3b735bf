// Package interop runs the reference article's end-to-end test (issue #6)
// against the real ccpbx binary with SIP software nobody here wrote: sipp
// (Debian sip-tester) and baresip.
//
// It owns only the test harness: building and starting the binary with a
// test copy of the shipped config.toml (127.0.0.1, ports the kernel chose, data in a
// temporary directory), the sipp scenarios under sipp/, the baresip
// configuration, the audio analysis and the comparison with what a real
// FreeSWITCH did (reference/freeswitch-observed). It must not import ccpbx's
// own packages (internal/pbxtest, the shared test support, is the one
// exception): everything goes over SIP, RTP and the event socket, as it
// would for a person with softphones.
//
// Every run leaves its traces in test/interop/artifacts/latest/ (sipp -trace_msg
// and -trace_err files, the ccpbx debug log, the event stream, the baresip
// log and recordings); .ci/run prints their tails when the suite fails.
package interop
