package media

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// ErrSecureRequired means the policy is mandatory and the peer offered or
// answered no usable a=crypto line; sip answers such an offer with 488.
// It wraps ErrNoCommonCodec, so callers that map that to 488 need no change.
var ErrSecureRequired = fmt.Errorf("%w: SRTP required (rtp_secure_media=mandatory)", ErrNoCommonCodec)

// SecureMedia is a leg's SRTP policy, FreeSWITCH's rtp_secure_media.
type SecureMedia uint8

const (
	// SecureDefault (rtp_secure_media unset): offer plain RTP/AVP, accept an
	// SRTP offer (RTP/SAVP, or RTP/AVP with a=crypto) by answering with SRTP.
	SecureDefault SecureMedia = iota
	// SecureOptional offers RTP/AVP with a=crypto (best-effort SRTP: a
	// plain peer ignores the lines) and accepts plain and SRTP offers.
	SecureOptional
	// SecureMandatory offers RTP/SAVP only and refuses offers and answers
	// without a usable a=crypto line.
	SecureMandatory
	// SecureForbidden offers and answers plain RTP only; an RTP/SAVP offer
	// is refused.
	SecureForbidden
)

// ParseSecureMedia reads FreeSWITCH's spellings; "" is SecureDefault.
// FreeSWITCH also accepts true/false; true means mandatory there.
func ParseSecureMedia(s string) (SecureMedia, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return SecureDefault, nil
	case "optional":
		return SecureOptional, nil
	case "mandatory", "true":
		return SecureMandatory, nil
	case "forbidden", "false":
		return SecureForbidden, nil
	}
	return SecureDefault, fmt.Errorf("rtp_secure_media %q: want mandatory, optional or forbidden", s)
}

func (m SecureMedia) String() string {
	switch m {
	case SecureOptional:
		return "optional"
	case SecureMandatory:
		return "mandatory"
	case SecureForbidden:
		return "forbidden"
	}
	return ""
}

// cryptoSuite is one SDES crypto suite we support (RFC 4568 §6.2).
type cryptoSuite struct {
	name    string
	profile srtp.ProtectionProfile
}

// suites in our order of preference: the one offered first is the one we
// would rather use.
var suites = [...]cryptoSuite{
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32},
}

// sdesKeyLen is the master key (16) plus master salt (14) of both suites.
const sdesKeyLen = 30

// replayWindow is the replay window of SRTP and SRTCP, in packets; the RFC
// 3711 minimum is 64, and a wider one lets more reordering through.
const replayWindow = 128

// maxSDPCrypto bounds the a=crypto lines kept per m= line.
const maxSDPCrypto = 8

// Crypto is one a=crypto line (RFC 4568 §9.1), as written.
type Crypto struct {
	Tag       int
	Suite     string
	KeyParams string
	Session   string // session parameters, if any
}

func parseCrypto(m *MediaDescription, val string) error {
	f := strings.Fields(val)
	if len(f) < 3 {
		return fmt.Errorf("a=crypto %q needs tag, suite and key parameters", clip([]byte(val)))
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return fmt.Errorf("a=crypto tag %q", clip([]byte(f[0])))
	}
	if len(m.Crypto) < maxSDPCrypto {
		m.Crypto = append(m.Crypto, Crypto{Tag: tag, Suite: f[1], KeyParams: f[2], Session: strings.Join(f[3:], " ")})
	}
	return nil
}

// sdes is the usable content of one a=crypto line: the suite (an index in
// suites) and the master key and salt.
type sdes struct {
	tag   int
	suite int
	key   [sdesKeyLen]byte
}

// usable reads c: a suite we support, one inline key of the right length,
// an optional lifetime, no MKI (we would have to track several keys) and
// no session parameter that weakens the session.
func (c Crypto) usable() (sdes, bool) {
	s := sdes{tag: c.Tag, suite: -1}
	for i := range suites {
		if strings.EqualFold(c.Suite, suites[i].name) {
			s.suite = i
		}
	}
	if s.suite < 0 || strings.Contains(c.Session, "UNENCRYPTED_") || strings.Contains(c.Session, "UNAUTHENTICATED_") {
		return sdes{}, false
	}
	kp, _, _ := strings.Cut(c.KeyParams, ";") // several keys: take the first
	inline, ok := strings.CutPrefix(kp, "inline:")
	if !ok {
		return sdes{}, false
	}
	parts := strings.Split(inline, "|")
	if len(parts) > 2 || (len(parts) == 2 && strings.Contains(parts[1], ":")) {
		return sdes{}, false // an MKI
	}
	b64 := padBase64(parts[0])
	if len(b64) > 48 {
		return sdes{}, false
	}
	var raw [36]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(b64))
	if err != nil || n != sdesKeyLen {
		return sdes{}, false
	}
	copy(s.key[:], raw[:n])
	return s, true
}

// padBase64 restores the padding some phones leave off.
func padBase64(s string) string {
	if r := len(s) % 4; r != 0 && len(s) <= 64 {
		return s + strings.Repeat("=", 4-r)
	}
	return s
}

// line renders an a=crypto line for suite i with key.
func cryptoLine(tag, suite int, key *[sdesKeyLen]byte) string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s\r\n", tag, suites[suite].name, base64.StdEncoding.EncodeToString(key[:]))
}

// chooseCrypto picks the first usable a=crypto line of m, in the offerer's
// order (RFC 4568 §7.1.1: the answerer picks one it supports).
func chooseCrypto(m *MediaDescription) (sdes, bool) {
	for _, c := range m.Crypto {
		if s, ok := c.usable(); ok {
			return s, true
		}
	}
	return sdes{}, false
}

// isSAVP reports whether proto is the secure audio profile.
func isSAVP(proto string) bool { return proto == "RTP/SAVP" }

// srtpSession holds one negotiated SRTP session: a context per user, since
// a pion context is not safe for concurrent use, and scratch buffers so
// the packet paths allocate nothing.
type srtpSession struct {
	suite  int
	local  [sdesKeyLen]byte
	remote [sdesKeyLen]byte

	tx   *srtp.Context // outStream.mu
	txH  rtp.Header
	txB  []byte
	rx   *srtp.Context // the RTP reader (RTP and multiplexed RTCP)
	rxH  rtp.Header
	rxB  []byte
	rxCH rtcp.Header
	rxc  *srtp.Context // the RTCP reader
	rxcH rtcp.Header
	rxcB []byte
}

func newSRTPSession(suite int, local, remote *[sdesKeyLen]byte) (*srtpSession, error) {
	p := suites[suite].profile
	mk := func(key *[sdesKeyLen]byte) (*srtp.Context, error) {
		return srtp.CreateContext(key[:16], key[16:], p,
			srtp.SRTPReplayProtection(replayWindow), srtp.SRTCPReplayProtection(replayWindow))
	}
	s := &srtpSession{suite: suite, local: *local, remote: *remote,
		txB: make([]byte, 0, rtpHeaderLen+1500+64), rxB: make([]byte, 0, 1500), rxcB: make([]byte, 0, 1500)}
	var err error
	if s.tx, err = mk(local); err != nil {
		return nil, fmt.Errorf("media: srtp: %w", err)
	}
	if s.rx, err = mk(remote); err != nil {
		return nil, fmt.Errorf("media: srtp: %w", err)
	}
	if s.rxc, err = mk(remote); err != nil {
		return nil, fmt.Errorf("media: srtp: %w", err)
	}
	return s, nil
}

// same reports whether s already serves this suite and these keys, so a
// re-INVITE that repeats them keeps the rollover counters and replay state.
func (s *srtpSession) same(suite int, local, remote *[sdesKeyLen]byte) bool {
	return s != nil && s.suite == suite && s.local == *local && s.remote == *remote
}

// encrypt protects one RTP packet; the result aliases txB. outStream.mu held.
func (s *srtpSession) encrypt(pkt []byte) ([]byte, error) {
	out, err := s.tx.EncryptRTP(s.txB[:0], pkt, &s.txH)
	if err == nil && cap(out) > cap(s.txB) {
		s.txB = out[:0]
	}
	return out, err
}

// decrypt authenticates and decrypts one SRTP packet (replays fail too);
// the result aliases rxB. Reader goroutine only.
func (s *srtpSession) decrypt(pkt []byte) ([]byte, bool) {
	out, err := s.rx.DecryptRTP(s.rxB[:0], pkt, &s.rxH)
	return out, err == nil
}

// decryptRTCPMux authenticates an SRTCP packet multiplexed on the RTP port.
func (s *srtpSession) decryptRTCPMux(pkt []byte) bool {
	_, err := s.rx.DecryptRTCP(s.rxB[:0], pkt, &s.rxCH)
	return err == nil
}

// decryptRTCP authenticates an SRTCP packet on the RTCP port.
func (s *srtpSession) decryptRTCP(pkt []byte) bool {
	_, err := s.rxc.DecryptRTCP(s.rxcB[:0], pkt, &s.rxcH)
	return err == nil
}

// newSDESKey draws a fresh master key and salt.
func newSDESKey() ([sdesKeyLen]byte, error) {
	var k [sdesKeyLen]byte
	if _, err := rand.Read(k[:]); err != nil {
		return k, errors.Join(errors.New("media: srtp key"), err)
	}
	return k, nil
}
