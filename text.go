package usersessions

import (
	"strings"
	"unicode/utf8"
)

// Client text.
//
// Strings from clients and callers reach storage: user agents, user IDs,
// values' keys, EndOptions. HTTP lets a header carry any byte from 0x80 to
// 0xff, and a caller may pass anything; PostgreSQL's text columns refuse
// bytes that are not UTF-8 and NUL, where the bbolt file keeps them. So the
// Store makes such text valid before it stores it or looks it up, the same
// way on every backend: one bad user agent must not fail a sign-in on one
// backend and not the other, nor a batch of everyone's activity.

// SanitizeText returns s with each run of bytes that are not UTF-8, and
// each NUL byte, replaced by U+FFFD; valid text comes back unchanged (and
// unallocated). The Store applies it to every string it stores that comes
// from a client or caller: user agents, user IDs (also where they are
// looked up, so a user ID finds its sessions in either form), values' keys
// and EndOptions. A Backend whose storage refuses such bytes may apply it
// too, so a caller that goes around the Store cannot fail a batch.
func SanitizeText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// storedUserAgent is what the Store keeps of a user agent: cut to
// MaxUserAgentLength bytes and made valid (cut first, so a huge hostile
// header costs no more than a normal one; cut again, since each bad byte
// may grow to three).
func storedUserAgent(ua string) string {
	return TruncateUserAgent(SanitizeText(TruncateUserAgent(ua)))
}
