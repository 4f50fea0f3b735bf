package media

import "encoding/binary"

// rtpHeaderLen is the fixed RTP header we write: no CSRC, no extension.
const rtpHeaderLen = 12

// rtpHeader is the part of a received RTP header the media plane uses.
// parseRTP fills it without allocating, whatever arrives. pion/rtp v1.10.6's
// Header.Unmarshal does not allocate for a valid packet once a reused Header's
// CSRC and Extensions slices have grown, but it builds an error with
// fmt.Errorf for every malformed one, and a reader facing the network must not
// allocate per packet even for garbage. It also decodes RFC 8285 extension
// elements, which a relay that passes extensions through has no use for.
type rtpHeader struct {
	marker     bool
	pt         uint8
	seq        uint16
	ts         uint32
	ssrc       uint32
	payloadOff int // first payload byte
	payloadEnd int // one past the last payload byte (padding removed)
}

// parseRTP checks that b is a well-formed RTP packet and fills h. It rejects
// packets shorter than a header, other versions, CSRC lists or extensions
// running past the end and padding longer than the payload.
func parseRTP(b []byte, h *rtpHeader) bool {
	if len(b) < rtpHeaderLen {
		return false
	}
	if b[0]>>6 != 2 {
		return false
	}
	padding := b[0]&0x20 != 0
	ext := b[0]&0x10 != 0
	cc := int(b[0] & 0x0f)
	off := rtpHeaderLen + 4*cc
	if off > len(b) {
		return false
	}
	if ext {
		if off+4 > len(b) {
			return false
		}
		extLen := int(binary.BigEndian.Uint16(b[off+2:])) * 4
		off += 4 + extLen
		if off > len(b) {
			return false
		}
	}
	end := len(b)
	if padding {
		if end == off {
			return false
		}
		pad := int(b[end-1])
		if pad == 0 || pad > end-off {
			return false
		}
		end -= pad
	}
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = binary.BigEndian.Uint32(b[8:])
	h.payloadOff = off
	h.payloadEnd = end
	return true
}

// putRTPHeader writes a 12-byte RTP version 2 header into b.
func putRTPHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) {
	_ = b[11]
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}
