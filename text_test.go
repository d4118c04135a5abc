package usersessions

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"Mozilla/5.0 (Windows NT 10.0)", "Mozilla/5.0 (Windows NT 10.0)"},
		{"Zürich ✓", "Zürich ✓"},
		{"Mozilla/5.0 \xff\xfe", "Mozilla/5.0 \uFFFD"}, // a run of bad bytes is one U+FFFD
		{"a\xffb\xfec", "a\uFFFDb\uFFFDc"},
		{"nul\x00byte", "nul\uFFFDbyte"},
		{"\xc0\x00", "\uFFFD\uFFFD"},
		{"cut \xe2\x9c", "cut \uFFFD"}, // a truncated sequence
	} {
		if got := SanitizeText(c.in); got != c.want {
			t.Errorf("SanitizeText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A hostile user agent costs what a normal one does: it is cut before it
// is made valid, and the result fits MaxUserAgentLength.
func TestStoredUserAgentBounded(t *testing.T) {
	for _, ua := range []string{
		strings.Repeat("\xff", 1<<20),
		strings.Repeat("a\xfe", MaxUserAgentLength),
		strings.Repeat("é", MaxUserAgentLength),
		strings.Repeat("\x80", 3*MaxUserAgentLength),
	} {
		got := storedUserAgent(ua)
		if len(got) > MaxUserAgentLength || !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Errorf("storedUserAgent(%q...) = %d bytes, valid %v", ua[:8], len(got), utf8.ValidString(got))
		}
	}
	if got := storedUserAgent("curl/8.5.0"); got != "curl/8.5.0" {
		t.Errorf("storedUserAgent changed a valid user agent: %q", got)
	}
}
