package httpx

import (
	"net/http"
	"strings"
)

// The DBSC header fields. The draft defines them as structured fields (RFC
// 9651); Chromium sends the proof and the session identifier bare, not as
// quoted strings, so both forms are read.
const (
	hdrRegistration = "Secure-Session-Registration"
	hdrChallenge    = "Secure-Session-Challenge"
	hdrResponse     = "Secure-Session-Response"
	hdrSessionID    = "Sec-Secure-Session-Id"
	hdrSkipped      = "Secure-Session-Skipped"

	// The names of Chromium's first origin trial (up to about version 140),
	// sent and read as well so those browsers work too. A browser reads
	// one spelling or the other, never both.
	hdrOldRegistration = "Sec-Session-Registration"
	hdrOldChallenge    = "Sec-Session-Challenge"
	hdrOldResponse     = "Sec-Session-Response"
	hdrOldSessionID    = "Sec-Session-Id"
)

// headerValue returns the first of the named request headers that is set.
func headerValue(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// headerItem reads a header value holding one string: a structured-field
// string ("abc";param=1, with \" and \\ escapes) or a bare value (abc, up
// to any ";" parameters). Parameters are ignored. It reports false for a
// malformed quoted string.
func headerItem(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, `"`) {
		item, _, _ := strings.Cut(v, ";")
		return strings.TrimSpace(item), true
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return b.String(), true
		case c == '\\':
			i++
			if i == len(v) || v[i] != '"' && v[i] != '\\' {
				return "", false
			}
			b.WriteByte(v[i])
		case c < 0x20 || c > 0x7e:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return "", false // no closing quote
}

// sfString writes s as a structured-field string. The values sent here
// (challenges, session IDs, paths) are printable ASCII.
func sfString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
