package api

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"ccpbx/call"
)

// urlUnsafe are the printable bytes FreeSWITCH percent-encodes in event
// header values (besides control and non-ASCII bytes), so a value can never
// break the "Name: value\n" framing. Clients (ESL, fs_cli) decode them back.
const urlUnsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""

const hexDigits = "0123456789ABCDEF"

// urlEncode percent-encodes v the way event-socket clients expect header
// values. Unlike FreeSWITCH, which leaves an existing "%XX" untouched, it
// always encodes '%': that way decoding gives back exactly the value that
// was fired, and ESL clients cannot tell the difference for ordinary values.
func urlEncode(v string) string {
	for i := 0; i < len(v); i++ {
		if needsEncoding(v[i]) {
			var b strings.Builder
			b.Grow(len(v) + 8)
			writeURLEncoded(&b, v)
			return b.String()
		}
	}
	return v
}

// writeURLEncoded appends the encoded v to b without an intermediate string;
// serialising events is the event socket's hot path.
func writeURLEncoded(b *strings.Builder, v string) {
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !needsEncoding(c) {
			continue
		}
		b.WriteString(v[start:i])
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
		start = i + 1
	}
	b.WriteString(v[start:])
}

func needsEncoding(c byte) bool {
	return c < ' ' || c > '~' || strings.IndexByte(urlUnsafe, c) >= 0
}

// urlDecode reverses urlEncode. Like the ESL library it decodes only
// well-formed "%XX" sequences and keeps anything else (a lone '%', '+')
// as it is, so it never fails.
func urlDecode(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Event formats the event socket can send, named as in "event plain …".
const (
	FormatPlain = "plain"
	FormatJSON  = "json"
	FormatXML   = "xml"
)

// serializeEvent renders e in the given format as the body of a
// "text/event-<format>" frame.
//
// Headers with an empty value are left out: FreeSWITCH never adds a header
// it has no value for (it would print "_undef_"), while ccpbx's event
// builders add every header of a fixed list and leave unknown ones empty.
func serializeEvent(e *call.Event, format string) string {
	switch format {
	case FormatJSON:
		return serializeJSON(e)
	case FormatXML:
		return serializeXML(e)
	default:
		return serializePlain(e, true)
	}
}

// serializePlain is "Name: value\n" per header, then either a blank line or,
// when the event has a body, "Content-Length: N\n\n<body>". encode selects
// the wire form (URL-encoded values) or the form fs_cli prints (decoded).
func serializePlain(e *call.Event, encode bool) string {
	var b strings.Builder
	size := len(e.Body) + 32
	for _, h := range e.Headers {
		size += len(h.Name) + len(h.Value) + 3
	}
	if encode {
		size += size / 4 // room for some %XX escapes
	}
	b.Grow(size)
	for _, h := range e.Headers {
		if h.Value == "" {
			continue
		}
		b.WriteString(h.Name)
		b.WriteString(": ")
		if encode {
			writeURLEncoded(&b, h.Value)
		} else {
			b.WriteString(h.Value)
		}
		b.WriteByte('\n')
	}
	if e.Body != "" {
		b.WriteString("Content-Length: ")
		b.WriteString(strconv.Itoa(len(e.Body)))
		b.WriteString("\n\n")
		b.WriteString(e.Body)
	} else {
		b.WriteByte('\n')
	}
	return b.String()
}

// serializeJSON is one JSON object with the headers in order (values are not
// URL-encoded), plus "Content-Length" and "_body" when there is a body.
func serializeJSON(e *call.Event) string {
	var b strings.Builder
	b.Grow(64 * (len(e.Headers) + 1))
	b.WriteByte('{')
	first := true
	add := func(name, value string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, name)
		b.WriteByte(':')
		writeJSONString(&b, value)
	}
	for _, h := range e.Headers {
		if h.Value != "" {
			add(h.Name, h.Value)
		}
	}
	if e.Body != "" {
		add("Content-Length", strconv.Itoa(len(e.Body)))
		add("_body", e.Body)
	}
	b.WriteByte('}')
	return b.String()
}

// writeJSONString writes s as a JSON string. Like FreeSWITCH's cJSON it
// escapes only what JSON requires (quotes, backslashes, control bytes), not
// '<', '>' and '&' as encoding/json does; invalid UTF-8 becomes U+FFFD so
// the output is always valid JSON.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(s[start:i])
				b.WriteString(`\ufffd`)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0f])
		}
		i++
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// serializeXML mirrors FreeSWITCH's event XML: <event><headers> with one
// element per header (URL-encoded text), then the body.
func serializeXML(e *call.Event) string {
	var b strings.Builder
	b.WriteString("<event>\n  <headers>\n")
	for _, h := range e.Headers {
		if h.Value == "" || !validXMLName(h.Name) {
			continue
		}
		b.WriteString("    <" + h.Name + ">" + xmlEscape(urlEncode(h.Value)) + "</" + h.Name + ">\n")
	}
	b.WriteString("  </headers>\n")
	if e.Body != "" {
		b.WriteString("  <body>" + xmlEscape(e.Body) + "</body>\n")
	}
	b.WriteString("</event>")
	return b.String()
}

// validXMLName keeps header names usable as element names; ccpbx's header
// names are all of this form, anything else is skipped rather than emitted
// as broken XML.
func validXMLName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

var xmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\"", "&quot;", "'", "&apos;")

func xmlEscape(s string) string { return xmlReplacer.Replace(s) }
