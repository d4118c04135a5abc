package httpx

import (
	"io/fs"
	"net/http"

	"github.com/usersessions/usersessions"
)

// noticeKey is the session value holding a one-time notice (a "flash") for
// the next page of the views: what the POST that led there did. Keys
// starting with "httpx." are reserved for this package.
const noticeKey = "httpx.notice"

// Notice keys: the notice is stored as a catalog key and a count, and
// translated when the page shows it.
const (
	noticeGone  = "notice.gone"  // neutral: a session that could not be ended (already ended, or not the user's)
	noticeEnded = "notice.ended" // plural, with the count
	noticeNone  = "notice.none"  // an empty selection
)

// setNotice stores a notice for the next page in the signed-in session:
// a catalog key and the number of sessions ended (-1 for a neutral
// notice).
func setNotice(r *http.Request, key string, ended int) {
	if s := FromContext(r.Context()); s != nil && s.ID != "" {
		s.Set(noticeKey, map[string]any{"key": key, "ended": ended})
	}
}

// takeNotice returns and removes the notice stored by setNotice, in the
// language of c: its text ("" if none) and the number of sessions ended
// (-1 if none). A notice stored as text by an older version is shown as
// it is.
func takeNotice(r *http.Request, c *catalog) (string, int) {
	s := FromContext(r.Context())
	v, ok := usersessions.Value[map[string]any](s, noticeKey)
	if !ok {
		return "", -1
	}
	s.Delete(noticeKey)
	ended, ok := v["ended"].(int)
	if !ok {
		ended = -1
	}
	key, _ := v["key"].(string)
	switch key {
	case noticeEnded:
		return c.N(noticeEnded, max(ended, 0)), ended
	case noticeGone, noticeNone:
		return c.T(key), ended
	}
	text, _ := v["text"].(string)
	return text, ended
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
