package httpx

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usersessions/usersessions"
)

// Device Bound Session Credentials (DBSC, W3C WebAppSec draft): after
// sign-in the browser makes a key pair (TPM-backed where it can) and
// registers the public key; from then on every request of the session
// needs, besides the long-lived session cookie, a short-lived "bound"
// cookie that only the holder of the private key can get, by signing a
// challenge at the refresh endpoint. A copied session cookie is then worth
// nothing once the bound cookie that came with it expires.
//
// The middleware serves the two endpoints itself, under DBSCOptions.Path:
//
//	POST {Path}start    registration: verify the proof, store the key
//	POST {Path}refresh  refresh: 403 with a challenge, then verify the
//	                    signed challenge and issue a new bound cookie
//
// See docs/design.md for the protocol details.

// DBSCOptions turn on device-bound sessions (Options.DBSC). The zero value
// is useful.
//
// Browsers without DBSC keep working as before: nothing is enforced for a
// session until its browser registered a key.
type DBSCOptions struct {
	// Path is where the middleware serves the registration ("start") and
	// refresh ("refresh") endpoints. It must start and end with "/".
	// Default "/dbsc/".
	Path string

	// CookieName names the short-lived bound cookie. Default: the session
	// cookie's name with "_bound" appended (which keeps a "__Host-" prefix).
	CookieName string

	// CookieLifetime is how long a bound cookie lasts: how long a copy of
	// the cookies works. The browser gets a new one from the refresh
	// endpoint (before it expires while a page of the site is open).
	// Default 10 minutes; at least a second.
	CookieLifetime time.Duration

	// ChallengeLifetime is how old a challenge a proof signs may be.
	// Default 5 minutes.
	ChallengeLifetime time.Duration

	// OnRefused, when set, is told of every request of a device-bound
	// session that is refused: one without a valid bound cookie (treated
	// as signed out; err is ErrBoundCookieMissing or ErrBoundCookieInvalid)
	// and a refresh whose proof does not verify (ErrBadProof). Each is
	// also logged, at Warn. sess is the session concerned; it must not be
	// changed. The usual cause is a stolen session cookie used elsewhere;
	// an app may alert the person, or end the session. It runs on the
	// request's goroutine.
	OnRefused func(r *http.Request, sess *usersessions.Session, err error)
}

// Errors passed to DBSCOptions.OnRefused.
var (
	// ErrBoundCookieMissing reports a request of a device-bound session
	// without its bound cookie.
	ErrBoundCookieMissing = errors.New("httpx: device-bound session used without its bound cookie")

	// ErrBoundCookieInvalid reports a request of a device-bound session
	// with a bound cookie that is expired, forged or another session's.
	ErrBoundCookieInvalid = errors.New("httpx: device-bound session used with an invalid or expired bound cookie")

	// ErrBadProof reports a refresh of a device-bound session whose proof
	// is malformed or not signed by the session's key.
	ErrBadProof = errors.New("httpx: device-bound session refresh with a proof that does not verify")
)

// Defaults of DBSCOptions.
const (
	DefaultDBSCPath            = "/dbsc/"
	DefaultBoundCookieLifetime = 10 * time.Minute
	DefaultChallengeLifetime   = 5 * time.Minute
)

// maxBoundCookieGrace bounds how long after its expiry a bound cookie is
// still accepted: the browser drops it at expiry, but its last request may
// still be on the way.
const maxBoundCookieGrace = 30 * time.Second

// dbsc is a Manager's DBSC configuration.
type dbsc struct {
	m             *Manager
	startPath     string // registration endpoint
	refreshPath   string // refresh endpoint
	name          string // bound cookie
	life          time.Duration
	grace         time.Duration
	challengeLife time.Duration
	cop           *http.CrossOriginProtection
	onRefused     func(*http.Request, *usersessions.Session, error)
}

// newDBSC applies the defaults of o for m. It panics on a Path that is not
// an absolute directory path, a programming error.
func newDBSC(m *Manager, o *DBSCOptions) *dbsc {
	path := o.Path
	if path == "" {
		path = DefaultDBSCPath
	}
	if !validDBSCPath(path) {
		panic("httpx: DBSCOptions.Path must be a URL path starting and ending with \"/\": " + path)
	}
	d := &dbsc{
		m:             m,
		startPath:     path + "start",
		refreshPath:   path + "refresh",
		name:          o.CookieName,
		life:          o.CookieLifetime,
		challengeLife: o.ChallengeLifetime,
		cop:           m.cop,
		onRefused:     o.OnRefused,
	}
	if d.name == "" {
		d.name = m.name + "_bound"
	}
	if d.life <= 0 {
		d.life = DefaultBoundCookieLifetime
	}
	d.life = max(d.life, time.Second).Round(time.Second)
	d.grace = min(d.life, maxBoundCookieGrace)
	if d.challengeLife <= 0 {
		d.challengeLife = DefaultChallengeLifetime
	}
	if d.cop == nil {
		// The app turned the check off for its routes; these two keep it,
		// as the views do.
		d.cop = http.NewCrossOriginProtection()
	}
	return d
}

// validDBSCPath reports whether p is an absolute directory path as it is
// sent (escaped, printable ASCII): it goes into a header as is.
func validDBSCPath(p string) bool {
	u, err := url.Parse(p)
	return err == nil && strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") &&
		u.EscapedPath() == p && u.RawQuery == "" && u.Fragment == "" && u.Host == ""
}

// isEndpoint reports whether path is one of the DBSC endpoints.
func (d *dbsc) isEndpoint(path string) bool {
	return path == d.startPath || path == d.refreshPath
}

// endpoints serves the DBSC endpoints and passes every other request to
// next. It runs inside the session middleware.
func (d *dbsc) endpoints(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var serve func(http.ResponseWriter, *http.Request, *state)
		switch r.URL.Path {
		case d.startPath:
			serve = d.register
		case d.refreshPath:
			serve = d.refresh
		default:
			next.ServeHTTP(w, r)
			return
		}
		noStore(w)
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			dbscError(w, http.StatusMethodNotAllowed)
			return
		}
		// Chrome's DBSC requests are same-origin, with Origin and
		// Sec-Fetch-Site; another site's form or fetch is refused here,
		// whatever the app's own settings.
		if err := d.cop.Check(r); err != nil {
			dbscError(w, http.StatusForbidden)
			return
		}
		serve(w, r, stateFrom(r.Context()))
	})
}

// dbscError answers a DBSC request with an error status, in JSON: the
// endpoints answer a browser's background requests, never pages.
func dbscError(w http.ResponseWriter, code int) {
	writeJSON(w, code, errorJSON{Error: strings.ToLower(http.StatusText(code))})
}

// serverError logs err and answers 500 without details.
func (d *dbsc) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	d.m.log.ErrorContext(r.Context(), "httpx: "+what, "err", err)
	dbscError(w, http.StatusInternalServerError)
}

// offer asks the browser of a session that just signed in to bind it:
// the binding starts over (a new secret, no key), and the response gets a
// Secure-Session-Registration header with a fresh challenge.
func (d *dbsc) offer(st *state) {
	secret := resetBinding(st.sess)
	challenge := newChallenge(secret, purposeRegister, st.sess.ID, d.m.now())
	v := "(ES256 RS256);path=" + sfString(d.startPath) + ";challenge=" + sfString(challenge)
	st.header.Set(hdrRegistration, v)
	st.header.Set(hdrOldRegistration, v)
}
