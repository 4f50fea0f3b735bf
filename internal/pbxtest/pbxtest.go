// Package pbxtest owns the test support that ccpbx's test packages share:
// waiting for a condition the code under test makes true by itself
// ([WaitFor], [Until]), checking that every goroutine a test started has ended
// ([VerifyNoLeaks], [CheckLeaks]), and sockets on ephemeral ports
// ([ListenUDP], [ListenTCP], and for subprocesses [PortFor],
// [UDPPortRange] and [RetryAddrInUse]).
//
// It exists so that no test synchronises by sleeping, none depends on a
// fixed port being free, and none skips silently when a port is taken.
//
// pbxtest must not import any other ccpbx package (every package's tests may
// import it) and must not be imported by production code; test
// infrastructure such as internal/testphone may use it.
package pbxtest
