package httpx

import (
	"errors"
	"net/http"

	"github.com/usersessions/usersessions"
)

// The check of the bound cookie: once a session is device-bound, its
// long-lived cookie alone no longer signs anyone in. A request that lacks
// a valid bound cookie is served as signed out: the session is not loaded
// into the request, not touched (the request is no activity of it, and a
// thief's address does not show up as the person's), not ended, and its
// cookie is left alone, so the browser that holds the key goes on once it
// refreshed. Chrome refreshes before it sends a request that would lack
// the cookie, so the real browser does not get here.

// errRefused reports a session that the DBSC check kept out of the request.
var errRefused = errors.New("httpx: session refused by the device-binding check")

// loadSession loads the session of token and records the request on it
// (Store.LoadTouch). With DBSC it refuses a device-bound session without a
// valid bound cookie (errRefused), and loads the session of a request to
// the DBSC endpoints without recording anything.
func (st *state) loadSession(r *http.Request, token string) (*usersessions.Session, error) {
	m := st.m
	if m.dbsc == nil {
		return m.store.LoadTouch(st, token, st.client)
	}
	sess, err := m.store.Load(st, token)
	if err != nil || m.dbsc.isEndpoint(r.URL.Path) {
		return sess, err
	}
	if DeviceBound(sess) {
		if err := m.dbsc.checkCookie(r, sess); err != nil {
			m.dbsc.refuse(r, sess, err, nil)
			return nil, errRefused
		}
	}
	return m.store.LoadTouch(st, token, st.client)
}

// checkCookie returns nil if r carries a valid bound cookie of sess, else
// ErrBoundCookieMissing or ErrBoundCookieInvalid.
func (d *dbsc) checkCookie(r *http.Request, sess *usersessions.Session) error {
	cookies := r.CookiesNamed(d.name)
	if len(cookies) == 0 {
		return ErrBoundCookieMissing
	}
	secret := sessionSecret(sess)
	now := d.m.now()
	for _, c := range cookies {
		if secret != nil && checkBoundCookie(secret, sess.ID, c.Value, now, d.grace) {
			return nil
		}
	}
	return ErrBoundCookieInvalid
}

// refuse logs a refused request of a device-bound session, with detail
// when there is more to say than reason, and tells OnRefused.
func (d *dbsc) refuse(r *http.Request, sess *usersessions.Session, reason, detail error) {
	args := []any{"session", sess.ID, "user", sess.UserID, "reason", reason,
		"ip", d.m.clientIP(r).String(), "user_agent", r.UserAgent(), "path", r.URL.Path}
	if detail != nil {
		args = append(args, "detail", detail)
	}
	if skipped := r.Header.Get(hdrSkipped); skipped != "" {
		// The browser says why it has no bound cookie (its refresh
		// failed): worth knowing when it is the real one.
		args = append(args, "skipped", skipped)
	}
	d.m.log.WarnContext(r.Context(), "httpx: device-bound session refused", args...)
	if d.onRefused != nil {
		d.onRefused(r, sess, reason)
	}
}
