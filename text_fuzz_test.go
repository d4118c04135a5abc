package usersessions

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzSanitizeText: the result is valid UTF-8 without NUL, valid text
// without NUL comes back as it was, and sanitizing twice changes nothing.
func FuzzSanitizeText(f *testing.F) {
	for _, s := range []string{"", "Mozilla/5.0 \xff\xfe", "nul\x00", "é\xc3", "\uFFFD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeText(s)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("SanitizeText(%q) = %q: not storable", s, got)
		}
		if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && got != s {
			t.Fatalf("SanitizeText(%q) = %q: changed valid text", s, got)
		}
		if again := SanitizeText(got); again != got {
			t.Fatalf("SanitizeText is not idempotent on %q: %q, then %q", s, got, again)
		}
		if ua := storedUserAgent(s); len(ua) > MaxUserAgentLength || !utf8.ValidString(ua) || strings.IndexByte(ua, 0) >= 0 {
			t.Fatalf("storedUserAgent(%q) = %q", s, ua)
		}
	})
}
