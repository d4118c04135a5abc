package httpx

import (
	"io/fs"
	"net/http"
	"strconv"

	"github.com/usersessions/usersessions"
)

// noticeKey is the session value holding a one-time notice (a "flash") for
// the next page of the views: what the POST that led there did. Keys
// starting with "httpx." are reserved for this package.
const noticeKey = "httpx.notice"

// noticeGone is the neutral notice for a session that could not be ended:
// it does not say whether it ever existed or whose it is.
const noticeGone = "That session had already ended."

// setNotice stores a notice for the next page in the signed-in session.
// ended is the number of sessions ended, -1 for a neutral notice.
func setNotice(r *http.Request, text string, ended int) {
	if s := FromContext(r.Context()); s != nil && s.ID != "" {
		s.Set(noticeKey, map[string]any{"text": text, "ended": ended})
	}
}

// takeNotice returns and removes the notice stored by setNotice: its text
// ("" if none) and the number of sessions ended (-1 if none).
func takeNotice(r *http.Request) (string, int) {
	s := FromContext(r.Context())
	v, ok := usersessions.Value[map[string]any](s, noticeKey)
	if !ok {
		return "", -1
	}
	s.Delete(noticeKey)
	text, _ := v["text"].(string)
	ended, ok := v["ended"].(int)
	if !ok {
		ended = -1
	}
	return text, ended
}

// endedNotice says how many sessions were ended.
func endedNotice(n int) string {
	return sessionCount(n) + " ended."
}

// sessionCount is "1 session", "3 sessions".
func sessionCount(n int) string {
	if n == 1 {
		return "1 session"
	}
	return strconv.Itoa(n) + " sessions"
}

// SessionEnded reports whether the request came with a session cookie that
// is no longer valid: its session was ended (from another device, by an
// administrator, by a password change), revoked or has expired. The
// middleware treats the visitor as anonymous and clears the cookie; a
// page can use this to say "your session has ended" instead of showing a
// plain sign-in form. It is false for a visitor who sent no cookie, and
// outside the middleware.
func SessionEnded(r *http.Request) bool {
	st := stateFrom(r.Context())
	return st != nil && st.stale
}

// pageCSPs returns the Content-Security-Policy of each named page.
func pageCSPs(override fs.FS, names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = pageCSP(override, n)
	}
	return m
}
