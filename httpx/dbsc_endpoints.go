package httpx

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/usersessions/usersessions"
)

// The registration and refresh endpoints. Both run inside the session
// middleware, which loaded the session from the long-lived cookie without
// asking for a bound cookie (that is what they hand out) and without
// recording the request as activity.

// dbscInstructions is the JSON body of a successful registration or
// refresh: the draft's "session instructions".
type dbscInstructions struct {
	SessionIdentifier string           `json:"session_identifier"`
	RefreshURL        string           `json:"refresh_url"`
	Scope             dbscScope        `json:"scope"`
	Credentials       []dbscCredential `json:"credentials"`
}

// dbscScope covers the origin of the endpoints (the session cookie is
// host-only by default, and a site-wide scope would need more checks on
// the browser's side).
type dbscScope struct {
	IncludeSite bool `json:"include_site"`
}

// dbscCredential names the bound cookie and the attributes it is set with,
// by which the browser tells that it has it.
type dbscCredential struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Attributes string `json:"attributes"`
}

// dbscEnd is the body that tells the browser to drop its DBSC session.
type dbscEnd struct {
	Continue bool `json:"continue"`
}

// register serves POST {Path}start: the browser of a session that just
// signed in sends its public key, in a proof signed with the private key
// over the challenge of the Secure-Session-Registration header. The key is
// stored with the session and the first bound cookie issued.
func (d *dbsc) register(w http.ResponseWriter, r *http.Request, st *state) {
	sess := st.sess
	secret := sessionSecret(sess)
	if sess.UserID == "" || secret == nil {
		// Not signed in, or signed in before DBSC was turned on: there
		// was no registration offered to answer.
		d.end(w, http.StatusUnauthorized)
		return
	}
	if DeviceBound(sess) {
		// Once bound, a session is not bound again: only the browser that
		// signs in (Login) may register a key, and only once.
		d.end(w, http.StatusForbidden)
		return
	}
	p, err := parseProof(headerValue(r, hdrResponse, hdrOldResponse))
	if err == nil && p.key == nil {
		err = fmt.Errorf("%w: no public key", errProof)
	}
	if err == nil {
		err = p.verify(p.key)
	}
	if err == nil {
		if _, ok := checkChallenge(secret, purposeRegister, sess.ID, p.jti, d.m.now(), d.challengeLife); !ok {
			// No new challenge is offered: anyone holding the session
			// cookie could otherwise bind the session to their own key.
			err = fmt.Errorf("%w: unknown or expired registration challenge", errProof)
		}
	}
	if err != nil {
		d.m.log.InfoContext(r.Context(), "httpx: DBSC registration refused", "session", sess.ID, "err", err)
		d.end(w, http.StatusBadRequest)
		return
	}
	der, err := x509.MarshalPKIXPublicKey(p.key)
	if err != nil { // parseJWK makes only ECDSA and RSA keys
		d.serverError(w, r, "encoding a DBSC key", err)
		return
	}
	sess.Set(dbscKeyKey, der)
	sess.Set(dbscAlgKey, p.alg)
	d.issue(w, r, st)
}

// refresh serves POST {Path}refresh: without a proof it answers 403 with a
// challenge; with a proof of a recent, unused challenge signed by the
// session's key it issues a new bound cookie.
func (d *dbsc) refresh(w http.ResponseWriter, r *http.Request, st *state) {
	sess := st.sess
	id, _ := headerItem(headerValue(r, hdrSessionID, hdrOldSessionID))
	key, alg, bound := boundKey(sess)
	secret := sessionSecret(sess)
	if sess.ID == "" || !bound || secret == nil || id != sess.ID {
		// Signed out, ended, or bound to another key since (a new
		// sign-in): the browser's DBSC session has nothing to refresh.
		d.end(w, http.StatusUnauthorized)
		return
	}
	raw := headerValue(r, hdrResponse, hdrOldResponse)
	if raw == "" {
		d.challenge(w, sess.ID, secret)
		return
	}
	p, err := parseProof(raw)
	if err == nil && p.alg != alg {
		err = fmt.Errorf("%w: %s proof, the key is %s", errProof, p.alg, alg)
	}
	if err == nil {
		err = p.verify(key)
	}
	if err != nil {
		d.refuse(r, sess, ErrBadProof, err)
		d.end(w, http.StatusBadRequest)
		return
	}
	issued, ok := checkChallenge(secret, purposeRefresh, sess.ID, p.jti, d.m.now(), d.challengeLife)
	used, _ := usersessions.Value[int64](sess, dbscUsedKey)
	if !ok || issued <= used {
		// Too old, not this session's, or used already (a replay): sign
		// a new one. A recent challenge issued before a newer one is
		// still good, as the draft asks, as long as it is unused.
		d.challenge(w, sess.ID, secret)
		return
	}
	sess.Set(dbscUsedKey, issued)
	d.issue(w, r, st)
}

// challenge answers 403 with a new refresh challenge for session id.
func (d *dbsc) challenge(w http.ResponseWriter, id string, secret []byte) {
	v := sfString(newChallenge(secret, purposeRefresh, id, d.m.now())) + ";id=" + sfString(id)
	h := w.Header()
	h.Set(hdrChallenge, v)
	h.Set(hdrOldChallenge, v)
	w.WriteHeader(http.StatusForbidden)
}

// issue saves the session's new state, then sets a new bound cookie and
// answers with the session instructions. A session that ended meanwhile
// ends the browser's DBSC session instead.
func (d *dbsc) issue(w http.ResponseWriter, r *http.Request, st *state) {
	sess := st.sess
	err := d.m.store.Save(r.Context(), sess)
	switch {
	case errors.Is(err, usersessions.ErrNotFound), errors.Is(err, usersessions.ErrConflict):
		d.end(w, http.StatusUnauthorized)
		return
	case err != nil:
		d.serverError(w, r, "saving a device-bound session", err)
		return
	}
	c := d.cookie(r, boundCookieValue(sessionSecret(sess), sess.ID, d.m.now().Add(d.life)))
	w.Header().Add("Set-Cookie", c.String())
	writeJSON(w, http.StatusOK, dbscInstructions{
		SessionIdentifier: sess.ID,
		RefreshURL:        d.refreshPath,
		Credentials:       []dbscCredential{{Type: "cookie", Name: c.Name, Attributes: cookieAttributes(c)}},
	})
}

// end tells the browser to drop its DBSC session: Chrome does so for any
// 4xx status but 403 (which asks for a proof), and the body says it too.
func (d *dbsc) end(w http.ResponseWriter, code int) {
	writeJSON(w, code, dbscEnd{Continue: false})
}

// cookie builds a bound cookie: the session cookie's attributes, its own
// name, value and lifetime.
func (d *dbsc) cookie(r *http.Request, value string) *http.Cookie {
	c := d.m.cookie(r, value, int(d.life/time.Second))
	c.Name = d.name
	return c
}

// cookieAttributes writes the attributes by which the browser recognises
// the bound cookie (Max-Age and Expires do not count), as in Set-Cookie.
func cookieAttributes(c *http.Cookie) string {
	a := []string{"Path=" + c.Path}
	if c.Domain != "" {
		a = append(a, "Domain="+c.Domain)
	}
	if c.Secure {
		a = append(a, "Secure")
	}
	if c.HttpOnly {
		a = append(a, "HttpOnly")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		a = append(a, "SameSite=Lax")
	case http.SameSiteStrictMode:
		a = append(a, "SameSite=Strict")
	case http.SameSiteNoneMode:
		a = append(a, "SameSite=None")
	}
	return strings.Join(a, "; ")
}
