// Package media owns the PBX's audio plane: RTP ports, SDP offer/answer for
// one audio stream, one outbound stream per leg (SSRC, sequence, timestamp)
// with sources switching underneath it, shared music-on-hold clocks, the prompt
// player, the relay bridge between two legs (PCMU<->PCMA by table), RFC 4733
// DTMF, WAV loading and call recording to WAV.
//
// It must not know SIP: the sip package turns SIP bodies into calls of Leg
// (Offer, AcceptAnswer, AnswerOffer) and decides what a failure means (for
// example ErrNoCommonCodec -> 488). It imports the standard library,
// zaf/g711, pion/srtp (with pion/rtp and pion/rtcp headers for it) and, from ccpbx, only the leaf package guard, whose Folders keep
// sound file names inside sounds_dir (and allowed roots). RTP headers are
// read and written here (rtp.go); pion/rtp is imported only by the tests, to
// check that parser.
//
// Which sources a leg accepts RTP from, and when and where it may send, is
// the RTP source policy in source.go (README "RTP source policy"); when a
// silent leg times out is in timeout.go. Both need the owner's help: sip
// calls SetSignallingSource with the INVITE's source, and Confirm on the ACK.
//
// SRTP (srtp.go) is SDES keying (RFC 4568 a=crypto, AES_CM_128_HMAC_SHA1_80
// and _32) under a per-leg policy (SetSecureMedia, FreeSWITCH's
// rtp_secure_media); pion/srtp does the cipher work. A secure leg decrypts
// and authenticates in its reader before the source policy sees a packet
// (replays and forgeries are dropped and counted) and encrypts in the one
// write path of its outbound stream, so relayed audio, music, prompts and
// DTMF are all protected per leg. Incoming SRTCP is authenticated; ccpbx
// sends no RTCP of its own.
//
// Recording (record.go) taps a leg's received and sent audio into a fixed
// ring; a writer goroutine per recording turns it into a WAV file inside
// RecordingsDir, off the packet path.
//
// Goroutines: no reader per leg: one poller per CPU (poller_linux.go) reads
// the RTP and RTCP sockets of all the legs dealt to it (a leg's packets are
// always read by the same poller, its "reader"), one digit delivery
// goroutine per leg while digits are queued, one clock goroutine per shard
// of each music-on-hold broadcaster, one writer per recording. Relayed
// packets are forwarded by the reader that received them (no re-pacing). Play and SendDigits pace their packets in
// the caller's goroutine. Nothing on a per-packet path allocates.
package media
