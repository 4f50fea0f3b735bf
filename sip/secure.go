package sip

import "ccpbx/media"

// varSecureMedia is FreeSWITCH's channel variable for the SRTP policy: set
// in a user's directory variables, or in a dial string's [..] block.
const varSecureMedia = "rtp_secure_media"

// securePolicy is the SRTP policy of one leg: the channel variable (from
// the user's directory entry or the dial string) over the profile's
// rtp_secure_media. Config validation already refused bad spellings; a bad
// one from a dial string falls back to the profile's.
func (p *profile) securePolicy(vars map[string]string) media.SecureMedia {
	if v := vars[varSecureMedia]; v != "" {
		if m, err := media.ParseSecureMedia(v); err == nil {
			return m
		}
		p.log.Warn("ignoring bad rtp_secure_media", "value", v)
	}
	m, _ := media.ParseSecureMedia(p.cfg.RTPSecureMedia)
	return m
}

// userSecureMedia is the rtp_secure_media variable of a directory user,
// or "" when the user has none (or is unknown).
func (s *Stack) userSecureMedia(user string) string {
	if user == "" || s.reg == nil {
		return ""
	}
	if u, ok := s.reg.User(user); ok {
		return u.Variables[varSecureMedia]
	}
	return ""
}
