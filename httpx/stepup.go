package httpx

import (
	"cmp"
	"net/http"
	"net/url"
	"time"

	"github.com/usersessions/usersessions"
)

// Step-up authentication: before a sensitive action (changing the email
// address, ending every other session), ask the person to prove who they
// are again if they last did so long ago, as GitHub and Laravel do. The
// session records when they last did (MarkAuthenticated; Login does it),
// and RequireRecentAuth sends a request whose proof is too old to the
// sign-in page, with next= the page it wanted.

// authKey is the session value holding the time of the last proof.
const authKey = "httpx.authAt"

// MarkAuthenticated records in the session of r that the person has just
// proved who they are (a password, a passkey, a second factor). Login does
// it by itself; call it after a re-authentication that keeps the session.
// It returns ErrNoMiddleware outside the middleware, and an error for an
// anonymous session (there is no one to have proved anything).
func MarkAuthenticated(w http.ResponseWriter, r *http.Request) error {
	st := stateFrom(r.Context())
	if st == nil {
		noMiddleware(r.Context(), "MarkAuthenticated", r.URL.Path)
		return ErrNoMiddleware
	}
	if st.sess.UserID == "" {
		return ErrNotSignedIn
	}
	st.sess.Set(authKey, st.m.now().UTC())
	return nil
}

// AuthenticatedAt returns when the person behind r last proved who they
// are in this session (MarkAuthenticated, Login), or the zero time.
func AuthenticatedAt(r *http.Request) time.Time {
	sess := FromContext(r.Context())
	if sess == nil || sess.UserID == "" {
		return time.Time{}
	}
	at, _ := usersessions.Value[time.Time](sess, authKey)
	return at
}

// recentlyAuthenticated reports whether the person behind r proved who
// they are within maxAge.
func (m *Manager) recentlyAuthenticated(r *http.Request, maxAge time.Duration) bool {
	at := AuthenticatedAt(r)
	return !at.IsZero() && m.now().Sub(at) <= maxAge
}

// RequireRecentAuth returns middleware that lets a request through only if
// the person proved who they are within maxAge. Otherwise an HTML request
// is sent to loginURL (default "/login") with next= the page it asked for
// and reauth=1 (a POST's page: its Referer's path when same-site, else
// "/"; a page whose URL exceeds 2048 bytes comes back by its path alone),
// and a JSON request gets 401 {"error": "reauthentication required"}. A visitor who is not signed in is treated the same way.
// Put it behind the Manager's Handler.
func (m *Manager) RequireRecentAuth(maxAge time.Duration, loginURL string) func(http.Handler) http.Handler {
	if loginURL == "" {
		loginURL = DefaultLoginURL
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if m.recentlyAuthenticated(r, maxAge) {
				next.ServeHTTP(w, r)
				return
			}
			page := requestPath(r)
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				page = sameSiteReferer(r) // a POST's page is the one it came from
			}
			m.askReauth(w, r, loginURL, page)
		})
	}
}

// askReauth answers a request whose proof is too old: JSON gets 401, HTML
// goes to loginURL with next=page and reauth=1.
func (m *Manager) askReauth(w http.ResponseWriter, r *http.Request, loginURL, page string) {
	noStore(w)
	if wantsJSON(r) {
		writeJSON(w, http.StatusUnauthorized, errorJSON{Error: "reauthentication required"})
		return
	}
	seeOther(w, loginURLFor(loginURL, page, true))
}

// CredentialsChanged is the call for after a password or second-factor
// change: the request's session gets a new token (sent with the response),
// and every other session of the user ends, with reason
// usersessions.EndCredentials in History. It counts as a fresh proof of
// identity (MarkAuthenticated). It returns how many sessions ended.
func CredentialsChanged(w http.ResponseWriter, r *http.Request) (int, error) {
	st := stateFrom(r.Context())
	if st == nil {
		noMiddleware(r.Context(), "CredentialsChanged", r.URL.Path)
		return 0, ErrNoMiddleware
	}
	if st.committed {
		return 0, ErrHeadersWritten
	}
	if st.sess.UserID == "" || st.token == "" {
		return 0, ErrNotSignedIn
	}
	fresh, n, err := st.m.store.CredentialsChanged(st, st.token)
	if fresh == nil {
		return n, err // nothing rotated: the cookie stays valid
	}
	st.token = fresh.Token
	adopt(st.sess, fresh, false)
	st.setCookie, st.clearCookie = true, false
	st.sess.Set(authKey, st.m.now().UTC())
	return n, err
}

// sameSiteReferer is the path and query of r's Referer when it is this
// site's (its path alone when the query is too long for next=, see
// returnPath), else "/": where a POST's person was.
func sameSiteReferer(r *http.Request) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Host != r.Host {
		return "/"
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return cmp.Or(returnPath(p), "/")
}
