package media

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNoCommonCodec means the peer offered or answered no codec we support
// (PCMU, PCMA); sip answers such an offer with 488 Not Acceptable Here.
var ErrNoCommonCodec = errors.New("media: no common codec")

// ErrBadSDP wraps every SDP parse error, so callers can tell a malformed
// body (400-class) from a well-formed one we cannot accept.
var ErrBadSDP = errors.New("media: bad SDP")

// Limits keep a hostile body from costing more than a real one.
const (
	maxSDPSize   = 64 << 10
	maxSDPMedia  = 16
	maxSDPFormat = 64
)

// Direction is an SDP media direction attribute.
type Direction uint8

const (
	DirUnset Direction = iota // no attribute: sendrecv
	SendRecv
	SendOnly
	RecvOnly
	Inactive
)

func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	}
	return "sendrecv"
}

// reverse is the direction an answerer mirrors: what the peer sends we receive.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

// sends reports whether this side of the direction sends media.
func (d Direction) sends() bool { return d == SendRecv || d == SendOnly || d == DirUnset }

func parseDirection(s string) (Direction, bool) {
	switch s {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return DirUnset, false
}

// RTPMap is one a=rtpmap line.
type RTPMap struct {
	PT   uint8
	Name string // as written, e.g. "PCMU", "telephone-event"
	// Rate is the clock rate; 0 when the line gives none (RFC 4475's
	// "a=rtpmap:31 LPC"), which makes the format one we never choose.
	Rate     int
	Channels int
}

// MediaDescription is one m= section.
type MediaDescription struct {
	Media     string // "audio", "video", ...
	Port      int
	Proto     string   // "RTP/AVP", ...
	Formats   []string // m= line formats in order
	Conn      netip.Addr
	Direction Direction
	RTPMaps   []RTPMap
	Fmtp      map[uint8]string
	Ptime     int
	RTCPPort  int
	RTCPMux   bool
	Crypto    []Crypto // a=crypto lines (SDES, RFC 4568), at most maxSDPCrypto
}

// SessionDescription is a parsed SDP body (RFC 4566), audio-relevant parts.
type SessionDescription struct {
	OriginUser     string
	SessionID      string
	SessionVersion string
	OriginAddr     string
	Conn           netip.Addr // session-level c=
	Direction      Direction  // session-level direction attribute
	Media          []MediaDescription
}

// ParseSDP parses an SDP body. It accepts LF or CRLF line ends and a missing
// final line end; it never panics on garbage.
func ParseSDP(b []byte) (*SessionDescription, error) {
	if len(b) > maxSDPSize {
		return nil, fmt.Errorf("%w: body of %d bytes", ErrBadSDP, len(b))
	}
	s := &SessionDescription{}
	var cur *MediaDescription
	sawV := false
	for lineNo := 1; len(b) > 0; lineNo++ {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, fmt.Errorf("%w: line %d: %q is not type=value", ErrBadSDP, lineNo, clip(line))
		}
		typ, val := line[0], string(line[2:])
		if !sawV {
			if typ != 'v' || val != "0" {
				return nil, fmt.Errorf("%w: line %d: first line must be v=0", ErrBadSDP, lineNo)
			}
			sawV = true
			continue
		}
		switch typ {
		case 'o':
			f := strings.Fields(val)
			if len(f) != 6 {
				return nil, fmt.Errorf("%w: line %d: o= needs 6 fields", ErrBadSDP, lineNo)
			}
			s.OriginUser, s.SessionID, s.SessionVersion, s.OriginAddr = f[0], f[1], f[2], f[5]
		case 'c':
			addr, err := parseConn(val)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadSDP, lineNo, err)
			}
			if cur != nil {
				cur.Conn = addr
			} else {
				s.Conn = addr
			}
		case 'm':
			if len(s.Media) == maxSDPMedia {
				return nil, fmt.Errorf("%w: more than %d m= lines", ErrBadSDP, maxSDPMedia)
			}
			m, err := parseMediaLine(val)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadSDP, lineNo, err)
			}
			s.Media = append(s.Media, m)
			cur = &s.Media[len(s.Media)-1]
		case 'a':
			if err := parseAttr(s, cur, val); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadSDP, lineNo, err)
			}
		}
	}
	if !sawV {
		return nil, fmt.Errorf("%w: empty body", ErrBadSDP)
	}
	return s, nil
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// parseConn parses "IN IP4 addr[/ttl[/n]]".
func parseConn(v string) (netip.Addr, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, fmt.Errorf("c= %q is not IN IP4|IP6 address", v)
	}
	host, _, _ := strings.Cut(f[2], "/")
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("c= address: %w", err)
	}
	if (f[1] == "IP4") != addr.Is4() {
		return netip.Addr{}, fmt.Errorf("c= address %s does not match %s", host, f[1])
	}
	return addr, nil
}

// parseMediaLine parses "audio 49170[/2] RTP/AVP 0 8 101".
func parseMediaLine(v string) (MediaDescription, error) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return MediaDescription{}, fmt.Errorf("m= %q needs media, port, proto and formats", v)
	}
	portStr, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return MediaDescription{}, fmt.Errorf("m= port %q", f[1])
	}
	if len(f)-3 > maxSDPFormat {
		return MediaDescription{}, fmt.Errorf("m= has more than %d formats", maxSDPFormat)
	}
	return MediaDescription{Media: f[0], Port: port, Proto: f[2], Formats: f[3:]}, nil
}

func parseAttr(s *SessionDescription, m *MediaDescription, v string) error {
	name, val, _ := strings.Cut(v, ":")
	if d, ok := parseDirection(name); ok {
		if m != nil {
			m.Direction = d
		} else {
			s.Direction = d
		}
		return nil
	}
	if m == nil {
		return nil // other session-level attributes do not matter for audio
	}
	switch name {
	case "rtpmap":
		ptStr, enc, ok := strings.Cut(val, " ")
		if !ok {
			return fmt.Errorf("a=rtpmap %q", val)
		}
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			return fmt.Errorf("a=rtpmap payload type %q", ptStr)
		}
		parts := strings.Split(strings.TrimSpace(enc), "/")
		if len(parts) > 3 || parts[0] == "" {
			return fmt.Errorf("a=rtpmap encoding %q", enc)
		}
		// An encoding without a clock rate breaks RFC 4566's grammar.
		// For a codec we do not use it only makes that one format
		// unusable: it is kept with rate 0 (so the static table does not
		// stand in for it) and never negotiated, while the offer's other
		// formats are. One of ours without a rate stays an error.
		rate := 0
		if len(parts) == 1 && codecKind(RTPMap{Name: parts[0], Rate: 8000, Channels: 1}) != kindNone {
			return fmt.Errorf("a=rtpmap rate missing in %q", enc)
		}
		if len(parts) >= 2 {
			if rate, err = strconv.Atoi(parts[1]); err != nil || rate <= 0 {
				return fmt.Errorf("a=rtpmap rate %q", parts[1])
			}
		}
		ch := 1
		if len(parts) == 3 {
			if ch, err = strconv.Atoi(parts[2]); err != nil || ch <= 0 {
				return fmt.Errorf("a=rtpmap channels %q", parts[2])
			}
		}
		if len(m.RTPMaps) < maxSDPFormat {
			m.RTPMaps = append(m.RTPMaps, RTPMap{PT: uint8(pt), Name: parts[0], Rate: rate, Channels: ch})
		}
	case "fmtp":
		ptStr, params, _ := strings.Cut(val, " ")
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			return fmt.Errorf("a=fmtp payload type %q", ptStr)
		}
		if m.Fmtp == nil {
			m.Fmtp = make(map[uint8]string)
		}
		if len(m.Fmtp) < maxSDPFormat {
			m.Fmtp[uint8(pt)] = strings.TrimSpace(params)
		}
	case "ptime":
		if p, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && p > 0 {
			m.Ptime = p
		}
	case "rtcp":
		portStr, _, _ := strings.Cut(strings.TrimSpace(val), " ")
		if p, err := strconv.Atoi(portStr); err == nil && p > 0 && p <= 65535 {
			m.RTCPPort = p
		}
	case "rtcp-mux":
		m.RTCPMux = true
	case "crypto":
		return parseCrypto(m, val)
	}
	return nil
}

// rtpmap returns the rtpmap for pt, falling back to the static payload types
// of RFC 3551 that need no rtpmap line.
func (m *MediaDescription) rtpmap(pt uint8) (RTPMap, bool) {
	for _, r := range m.RTPMaps {
		if r.PT == pt {
			return r, true
		}
	}
	switch pt {
	case 0:
		return RTPMap{PT: 0, Name: "PCMU", Rate: 8000, Channels: 1}, true
	case 8:
		return RTPMap{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}, true
	case 13:
		return RTPMap{PT: 13, Name: "CN", Rate: 8000, Channels: 1}, true
	}
	return RTPMap{}, false
}

// formatKind reads one payload type of the m= line and what its rtpmap (or
// the static table) makes it; kindNone for a bad number or a codec we do
// not handle, which offer and answer alike skip.
func (m *MediaDescription) formatKind(f string) (pt uint8, kind uint8) {
	n, err := strconv.ParseUint(f, 10, 7)
	if err != nil {
		return 0, kindNone
	}
	r, ok := m.rtpmap(uint8(n))
	if !ok {
		return 0, kindNone
	}
	return uint8(n), codecKind(r)
}

// direction is the effective direction of m: media level over session level.
func (s *SessionDescription) direction(m *MediaDescription) Direction {
	d := m.Direction
	if d == DirUnset {
		d = s.Direction
	}
	if d == DirUnset {
		d = SendRecv
	}
	return d
}

// conn is the effective connection address of m: media level over session.
func (s *SessionDescription) conn(m *MediaDescription) netip.Addr {
	if m.Conn.IsValid() {
		return m.Conn
	}
	return s.Conn
}

// payload kinds a leg receives and sends.
const (
	kindNone uint8 = iota
	kindPCMU
	kindPCMA
	kindDTMF
	kindCN
)

// negotiation is the outcome of an offer/answer exchange for the audio
// stream: what we send, what we accept, where to and in which direction.
type negotiation struct {
	codec    string // "PCMU" or "PCMA": what we send
	codecPT  uint8
	dtmfPT   int // -1: none negotiated
	dtmfFmtp string
	cnPT     int // -1: none negotiated
	kinds    [128]uint8
	remote   netip.AddrPort // may be 0.0.0.0:port (hold)
	dir      Direction      // OUR direction
	mline    int            // index of the audio m= line used
	proto    string         // the m= line's profile: RTP/AVP or RTP/SAVP
	secure   bool           // SRTP: crypto holds the peer's chosen a=crypto line
	crypto   sdes
	sec      *srtpSession // set by the leg before apply when secure
}

func codecKind(r RTPMap) uint8 {
	if r.Rate != 8000 || r.Channels != 1 {
		return kindNone
	}
	switch {
	case strings.EqualFold(r.Name, "PCMU"):
		return kindPCMU
	case strings.EqualFold(r.Name, "PCMA"):
		return kindPCMA
	case strings.EqualFold(r.Name, "telephone-event"):
		return kindDTMF
	case strings.EqualFold(r.Name, "CN"):
		return kindCN
	}
	return kindNone
}

func kindCodec(k uint8) string {
	if k == kindPCMA {
		return "PCMA"
	}
	return "PCMU"
}

// negotiateOffer chooses our answer to an offer: the first audio m= line
// with a usable port and a profile the policy allows, the first offered codec
// we support (prefer, when offered, wins so a bridge need not transcode), the
// offerer's own telephone-event payload type, CN when offered, the first
// usable a=crypto line (unless SRTP is forbidden) and the mirrored direction.
func negotiateOffer(s *SessionDescription, prefer string, policy SecureMedia) (negotiation, error) {
	n := negotiation{dtmfPT: -1, cnPT: -1, mline: -1}
	refusedForSecurity := false
	for i := range s.Media {
		m := &s.Media[i]
		if m.Media != "audio" || m.Port == 0 || (m.Proto != "RTP/AVP" && !isSAVP(m.Proto)) {
			continue
		}
		c, hasCrypto := chooseCrypto(m)
		if policy == SecureForbidden {
			hasCrypto = false
		}
		if !hasCrypto && (isSAVP(m.Proto) || policy == SecureMandatory) {
			refusedForSecurity = true
			continue
		}
		n.proto, n.secure, n.crypto = m.Proto, hasCrypto, c
		found := false
		for _, f := range m.Formats {
			pt, k := m.formatKind(f)
			switch k {
			case kindPCMU, kindPCMA:
				if !found || (prefer != "" && strings.EqualFold(kindCodec(k), prefer) && !strings.EqualFold(n.codec, prefer)) {
					n.codec, n.codecPT, found = kindCodec(k), pt, true
				}
			case kindDTMF:
				if n.dtmfPT < 0 {
					n.dtmfPT = int(pt)
					n.dtmfFmtp = m.Fmtp[pt]
				}
			case kindCN:
				if n.cnPT < 0 {
					n.cnPT = int(pt)
				}
			}
		}
		if !found {
			continue
		}
		n.mline = i
		n.setKinds()
		addr := s.conn(m)
		if !addr.IsValid() {
			return negotiation{}, fmt.Errorf("%w: audio stream has no c= address", ErrBadSDP)
		}
		n.remote = netip.AddrPortFrom(addr, uint16(m.Port))
		dir := s.direction(m)
		if addr.IsUnspecified() {
			// RFC 2543 hold: c=0.0.0.0 means "do not send to me".
			switch dir {
			case SendRecv:
				dir = SendOnly
			case RecvOnly:
				dir = Inactive
			}
		}
		n.dir = dir.reverse()
		return n, nil
	}
	if refusedForSecurity {
		return negotiation{}, ErrSecureRequired
	}
	return negotiation{}, ErrNoCommonCodec
}

// setKinds fills the receive table: the chosen codec, the other G.711 law is
// not accepted (we answered one codec), DTMF and CN by their payload types.
func (n *negotiation) setKinds() {
	n.kinds = [128]uint8{}
	if n.codec == "PCMA" {
		n.kinds[n.codecPT] = kindPCMA
	} else {
		n.kinds[n.codecPT] = kindPCMU
	}
	if n.dtmfPT >= 0 {
		n.kinds[n.dtmfPT] = kindDTMF
	}
	if n.cnPT >= 0 {
		n.kinds[n.cnPT] = kindCN
	}
}

// negotiateAnswer reads the peer's answer to our offer (PCMU 0, PCMA 8,
// telephone-event 101). The first answered codec is what we send; every
// answered G.711 codec is accepted inbound. When we offered a=crypto
// (offeredCrypto), an answered line whose tag and suite match ours turns
// SRTP on; under SecureMandatory an answer without one is refused.
func negotiateAnswer(s *SessionDescription, policy SecureMedia, offeredCrypto bool) (negotiation, error) {
	n := negotiation{dtmfPT: -1, cnPT: -1, mline: -1}
	var m *MediaDescription
	for i := range s.Media {
		if s.Media[i].Media == "audio" {
			m, n.mline = &s.Media[i], i
			break
		}
	}
	if m == nil {
		return negotiation{}, fmt.Errorf("%w: answer has no audio stream", ErrBadSDP)
	}
	if m.Port == 0 {
		return negotiation{}, fmt.Errorf("%w: answer rejected the audio stream", ErrNoCommonCodec)
	}
	found := false
	for _, f := range m.Formats {
		switch pt, k := m.formatKind(f); k {
		case kindPCMU, kindPCMA:
			if !found {
				n.codec, n.codecPT, found = kindCodec(k), pt, true
			}
			n.kinds[pt] = k
		case kindDTMF:
			if n.dtmfPT < 0 {
				n.dtmfPT = int(pt)
				n.kinds[pt] = kindDTMF
			}
		case kindCN:
			if n.cnPT < 0 {
				n.cnPT = int(pt)
				n.kinds[pt] = kindCN
			}
		}
	}
	if !found {
		return negotiation{}, ErrNoCommonCodec
	}
	n.proto = m.Proto
	if offeredCrypto {
		for _, c := range m.Crypto {
			if sd, ok := c.usable(); ok && sd.tag == sd.suite+1 {
				n.secure, n.crypto = true, sd
				break
			}
		}
	}
	if !n.secure && (policy == SecureMandatory || isSAVP(m.Proto)) {
		return negotiation{}, ErrSecureRequired
	}
	addr := s.conn(m)
	if !addr.IsValid() {
		return negotiation{}, fmt.Errorf("%w: audio stream has no c= address", ErrBadSDP)
	}
	n.remote = netip.AddrPortFrom(addr, uint16(m.Port))
	dir := s.direction(m)
	if addr.IsUnspecified() && dir == SendRecv {
		dir = SendOnly
	}
	n.dir = dir.reverse()
	return n, nil
}

// sdpBody writes everything after the o= line for one audio stream; the leg
// prepends v= and o= so the version can follow changes of this text.
type sdpMedia struct {
	local   netip.Addr
	port    int
	formats []formatLine // in m= order
	dir     Direction
	proto   string   // "" is RTP/AVP
	crypto  []string // a=crypto lines, each ending in CRLF
}

type formatLine struct {
	pt   uint8
	name string // rtpmap encoding name/rate
	fmtp string
}

func ipVer(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "IP4"
	}
	return "IP6"
}

func addrString(a netip.Addr) string {
	if a.Is4In6() {
		return a.Unmap().String()
	}
	return a.String()
}

// body renders the session from s= on, plus the refused m= lines: rejected
// holds, per extra offered m= line, its index and a refusal line.
func (sm sdpMedia) body(before, after []string) string {
	var b strings.Builder
	b.WriteString("s=-\r\n")
	fmt.Fprintf(&b, "c=IN %s %s\r\n", ipVer(sm.local), addrString(sm.local))
	b.WriteString("t=0 0\r\n")
	for _, l := range before {
		b.WriteString(l)
	}
	proto := sm.proto
	if proto == "" {
		proto = "RTP/AVP"
	}
	fmt.Fprintf(&b, "m=audio %d %s", sm.port, proto)
	for _, f := range sm.formats {
		fmt.Fprintf(&b, " %d", f.pt)
	}
	b.WriteString("\r\n")
	for _, f := range sm.formats {
		fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", f.pt, f.name)
		if f.fmtp != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", f.pt, f.fmtp)
		}
	}
	b.WriteString("a=ptime:20\r\n")
	fmt.Fprintf(&b, "a=%s\r\n", sm.dir)
	for _, c := range sm.crypto {
		b.WriteString(c)
	}
	for _, l := range after {
		b.WriteString(l)
	}
	return b.String()
}

// refusedLine is the answer to an m= line we do not take: same media and
// proto, port 0, its first format (RFC 3264 §6).
func refusedLine(m *MediaDescription) string {
	f := "0"
	if len(m.Formats) > 0 {
		f = m.Formats[0]
	}
	return fmt.Sprintf("m=%s 0 %s %s\r\n", m.Media, m.Proto, f)
}
