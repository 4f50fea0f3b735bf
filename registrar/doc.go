// Package registrar owns the user directory's authentication side and the
// location service, with no SIP stack: digest verification (MD5 and
// SHA-256, stateless HMAC nonces, stale, nc replay checks), bindings per
// user with expiry (several contacts each, refresh, Expires:0 and `*`
// unregister, Min-Expires, RFC 3261 §10.3 Call-ID/CSeq ordering), and
// persistence in store so a restart keeps registered phones.
//
// Its seam to the SIP edge is a few calls, all in plain values:
//   - Verify(DigestRequest) → AuthResult: the outcome of a request's
//     credentials (ok with the user, none, failed, stale, malformed) and
//     the realm to challenge in; Challenge(realm, source, stale) gives the
//     challenge values, Realm(domain) the realm for a phone's domain.
//   - Register(Registration) → Result: apply one authenticated REGISTER and
//     say what to answer (200 with the contacts and their lifetimes, 400,
//     403, 423 with Min-Expires, 500).
//   - Lookup(user), Bindings(): where to send calls and what `show
//     registrations` lists.
//   - Config.Notify: sofia::register / ::unregister / ::expire events.
//
// The sip package receives REGISTER, checks what is SIP (mandatory
// headers, Require, the To user), calls Verify and Register, and builds
// and sends the 401/407/420/423/200 with the same rules as every other
// response it sends.
//
// Each binding keeps the observed source address and transport of its
// REGISTER, so the sip package can send requests to a phone behind NAT
// where its REGISTER came from (and over its TCP connection).
//
// Choices worth knowing:
//   - Challenges list the configured algorithms in order, MD5 only by
//     default. Old pjsip (MicroSIP) and other phones answer only the first
//     WWW-Authenticate and fail on an algorithm they do not know; with
//     SHA-256 added after MD5, phones that know it may pick it.
//   - The realm defaults to the domain the phone addresses (To host for
//     REGISTER, From host for calls), as sofia does, unless configured.
//   - Responses must carry qop=auth (Config.AllowNoQOP accepts RFC 2069
//     ones, which cannot be told from a replay); nonces live NonceTTL
//     (60 s, sofia's nonce-ttl), are valid only from the IP address they
//     were issued to, and each nonce count is accepted once, in a table
//     bounded in size whose every operation is O(1).
//   - Stale is only said when the password was right: a wrong password
//     always gets a fresh, non-stale challenge, and unknown users get the
//     same answer as wrong passwords.
//   - A REGISTER with the Call-ID of an existing binding but a new Contact
//     replaces that binding (the phone moved: new NAT mapping or address),
//     as sofia does, instead of forking calls to a dead contact until it
//     expires. Other devices of the same user (other Call-IDs) are kept,
//     up to Config.MaxContacts (the least recently refreshed goes first).
//   - A stale or reordered request (same Call-ID, CSeq not higher) is
//     answered 400 and changes nothing (RFC 3261 §10.3 step 7 only says it
//     fails).
//   - Bindings are written to the store behind the answer (persist.go):
//     memory answers at once, changes are coalesced per binding and
//     written in batches, one transaction each, in the order they were
//     made (an unregister after a refresh stays an unregister). The queue
//     is bounded; a store too far behind makes REGISTERs wait, and after
//     5 s they are answered 500 with nothing changed. Close writes what is
//     queued, so a clean stop loses nothing; a crash loses the changes of
//     the last few tens of milliseconds, which phones repeat at their next
//     refresh.
//
// It must not import sipgo, parse or build SIP messages, route calls, send
// requests to phones or decide which SIP profile accepts REGISTER: the sip
// package owns sockets, messages and routing.
package registrar
