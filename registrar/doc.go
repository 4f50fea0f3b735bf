// Package registrar owns the user directory's authentication side and the
// location service: REGISTER handling with digest authentication (MD5 and
// SHA-256, stateless HMAC nonces, stale=true, nc replay checks), bindings
// per user with expiry (several contacts each, refresh, Expires:0 and `*`
// unregister, 423 Min-Expires, RFC 3261 §10.3 Call-ID/CSeq ordering),
// write-through persistence in store so a restart keeps registered
// phones, and digest checks for calls (Authenticate answers 407).
//
// Each binding keeps the observed source address and transport of its
// REGISTER, so the sip package can send requests to a phone behind NAT
// where its REGISTER came from (and over its TCP connection).
//
// It must not route calls, send requests to phones or decide which SIP
// profile accepts REGISTER: the sip package owns sockets and routing and
// calls HandleRegister / Authenticate from its handlers.
package registrar
