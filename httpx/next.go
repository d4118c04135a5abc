package httpx

import (
	"net/http"
	"net/url"
	"strings"
)

// NextParam is the query parameter that carries the return path: the views
// send a visitor who is not signed in to LoginURL?next=/the/page, and
// NextURL reads it back after Login.
const NextParam = "next"

// maxNextLength bounds an accepted return path.
const maxNextLength = 2048

// NextURL returns where to send the browser after signing in: the "next"
// value of r (query string or form, see NextParam) when it is a path on
// this site (IsLocalPath), otherwise fallback. Use it as the target of the
// redirect that follows Login:
//
//	if err := httpx.Login(w, r, user); err != nil { ... }
//	http.Redirect(w, r, httpx.NextURL(r, "/account/sessions/"), http.StatusSeeOther)
//
// The sign-in form carries the value from its GET to its POST, for
// example in <input type="hidden" name="next" value="{{.Next}}">
// (html/template escapes it). A value that is not a local path is ignored,
// so the parameter cannot be used to redirect to another site.
func NextURL(r *http.Request, fallback string) string {
	if next := r.FormValue(NextParam); IsLocalPath(next) {
		return next
	}
	return fallback
}

// IsLocalPath reports whether s is safe to redirect to as a path on this
// site: it starts with a single "/", and it has no scheme or host, no
// backslash (browsers read "/\evil.example" as "//evil.example"), no
// control character or space, and at most 2048 bytes. It refuses
// "//evil.example", "/\evil.example", "https://evil.example",
// "javascript:...", "" and relative paths.
func IsLocalPath(s string) bool {
	if s == "" || len(s) > maxNextLength || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	return strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(u.Path, "//")
}

// reauthParam is the query parameter that tells the sign-in page the
// person is signed in but must prove it again (RequireRecentAuth).
const reauthParam = "reauth"

// loginURLFor is loginURL with next= the way back to page (see
// returnPath) and, for a step-up, reauth=1. loginURL's own query is kept
// as written (a bare "?sso" stays bare) less any next or reauth of its
// own, and its fragment stays last.
func loginURLFor(loginURL, page string, reauth bool) string {
	base, frag, hasFrag := strings.Cut(loginURL, "#")
	path, query, _ := strings.Cut(base, "?")
	var params []string
	for p := range strings.SplitSeq(query, "&") {
		if name, _, _ := strings.Cut(p, "="); p != "" && name != NextParam && name != reauthParam {
			params = append(params, p)
		}
	}
	if next := returnPath(page); next != "" {
		params = append(params, NextParam+"="+url.QueryEscape(next))
	}
	if reauth {
		params = append(params, reauthParam+"=1")
	}
	u := path
	if len(params) > 0 {
		u += "?" + strings.Join(params, "&")
	}
	if hasFrag {
		u += "#" + frag
	}
	return u
}

// returnPath is page as a next= value: page itself when it is a local
// path (a backslash in its query, which IsLocalPath refuses anywhere,
// escaped as %5C, which means the same to a server), else its path alone
// when the query made it too long, else "": no way back beats a broken
// one.
func returnPath(page string) string {
	if path, query, ok := strings.Cut(page, "?"); ok {
		page = path + "?" + strings.ReplaceAll(query, `\`, "%5C")
		if len(page) > maxNextLength {
			page = path
		}
	}
	if !IsLocalPath(page) {
		return ""
	}
	return page
}

// requestPath is the path and query the client asked for, before any
// http.StripPrefix: where to come back to.
func requestPath(r *http.Request) string {
	p := originalPath(r)
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return p
}
