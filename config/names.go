package config

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxListingName bounds agent and queue names: mod_callcenter's columns
// are VARCHAR(255).
const MaxListingName = 255

// ListingNameForbidden are the characters an agent or queue name must not
// hold besides blanks and control characters: the listings' field
// separator `|`, the `,` of `show`-style and tier listings, and the quotes
// callcenter_config's argument splitter gives meaning to (such a name
// could not be typed back into a command).
const ListingNameForbidden = "|,'\""

// ListingNameProblem says what is wrong with an agent or queue name, ""
// when nothing is: it must be non-empty UTF-8 of at most MaxListingName
// bytes, without blanks, control or format characters, nor any of
// ListingNameForbidden, so every listing that shows it stays parsable.
// The config file and callcenter_config use the same rule.
func ListingNameProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > MaxListingName:
		return "is longer than 255 bytes"
	case !utf8.ValidString(s):
		return "is not UTF-8"
	case strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}) >= 0:
		return "must not contain blanks or control characters"
	case strings.ContainsAny(s, ListingNameForbidden):
		return "must not contain any of " + ListingNameForbidden
	}
	return ""
}
