package sip

import (
	"errors"
	"fmt"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// Caps on caller-ID values copied from one leg into another leg's headers:
// long enough for any real number or name, short enough that a hostile
// trunk cannot push an agent INVITE over the UDP size limit.
const (
	maxCallerNumber = 32
	maxCallerName   = 48
	maxUserLen      = 64
)

var errBadTarget = errors.New("bad dial target")

// sanitizeNumber keeps only characters that are safe unescaped in the user
// part of a SIP URI and meaningful in a phone number, so a caller ID from a
// trunk can never inject headers (CR/LF/NUL) or break the From URI.
func sanitizeNumber(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxCallerNumber; i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '+' || c == '*' || c == '#' || c == '.' || c == '-' || c == '_':
		default:
			continue
		}
		if c == '#' {
			b.WriteString("%23")
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// sanitizeName makes a display name safe inside a quoted string: no control
// characters (CR, LF, NUL …), no quote or backslash, valid UTF-8, capped.
func sanitizeName(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "") {
		if n >= maxCallerName {
			break
		}
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == 0xfffd {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}

// parseUserTarget parses the part after "user/": "1001" or "1001@domain".
func parseUserTarget(target string) (user, domain string, err error) {
	user, domain, _ = strings.Cut(strings.TrimSpace(target), "@")
	if user == "" || len(user) > maxUserLen {
		return "", "", fmt.Errorf("%w: user/%q", errBadTarget, target)
	}
	for i := 0; i < len(user); i++ {
		c := user[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("\"<>;:/?@%\\", c) >= 0 {
			return "", "", fmt.Errorf("%w: user/%q", errBadTarget, target)
		}
	}
	return user, domain, nil
}

// parseSofiaTarget parses the part after "sofia/": "<profile>/<sip uri>",
// where the URI may omit its "sip:" scheme as FreeSWITCH allows.
func parseSofiaTarget(target string) (profile string, uri sipmsg.Uri, err error) {
	profile, rest, ok := strings.Cut(strings.TrimSpace(target), "/")
	if !ok || profile == "" || rest == "" {
		return "", uri, fmt.Errorf("%w: sofia/%q", errBadTarget, target)
	}
	if strings.ContainsAny(rest, "\r\n\x00 <>\"") {
		return "", uri, fmt.Errorf("%w: sofia/%q", errBadTarget, target)
	}
	low := strings.ToLower(rest)
	if !strings.HasPrefix(low, "sip:") && !strings.HasPrefix(low, "sips:") {
		rest = "sip:" + rest
	}
	if err := sipmsg.ParseUri(rest, &uri); err != nil {
		return "", uri, fmt.Errorf("%w: sofia/%q: %w", errBadTarget, target, err)
	}
	if uri.Host == "" || uri.Port < 0 || uri.Port > 65535 {
		return "", uri, fmt.Errorf("%w: sofia/%q: no host", errBadTarget, target)
	}
	return profile, uri, nil
}
