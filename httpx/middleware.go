package httpx

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usersessions/usersessions"
)

// DefaultCookieName is the session cookie's name when Options.CookieName is
// empty.
const DefaultCookieName = "session"

// maxTokenLength bounds a session ID read from a URL or a form before it is
// looked at further; real IDs are 22 characters (backend.IDLength).
const maxTokenLength = 128

// Errors returned by Login and Logout.
var (
	// ErrNoMiddleware reports a Login or Logout on a request that did not go
	// through Manager.Handler (or through a different Manager).
	ErrNoMiddleware = errors.New("httpx: request did not pass through the session middleware")

	// ErrHeadersWritten reports a Login or Logout after the response headers
	// were sent: the cookie could no longer be changed, so nothing was done.
	ErrHeadersWritten = errors.New("httpx: response headers already written")

	// ErrEmptyUserID reports a Login with an empty user ID.
	ErrEmptyUserID = errors.New("httpx: empty user ID")

	// ErrNotSignedIn reports a call that needs a signed-in session
	// (MarkAuthenticated, CredentialsChanged) on an anonymous one.
	ErrNotSignedIn = errors.New("httpx: not signed in")
)

// Options configure a Manager. The zero value (or nil) is useful.
type Options struct {
	// CookieName names the session cookie. Default "session". A name with
	// the "__Host-" prefix forces Secure and needs an empty Domain; a
	// "__Secure-" prefix forces Secure.
	CookieName string

	// Secure sets the Secure attribute on every cookie. Without it, Secure
	// is set only when the request came over TLS, directly or (as reported
	// by a trusted proxy's X-Forwarded-Proto or Forwarded proto=) through a
	// TLS-terminating proxy.
	Secure bool

	// Domain is the cookie's Domain attribute. Empty (the default, and the
	// safest) makes a host-only cookie.
	Domain string

	// TrustedProxies are the peers whose X-Forwarded-For / Forwarded
	// headers are believed. See ClientIP. Empty: the connection's address
	// is always the client.
	TrustedProxies []netip.Prefix

	// ClientIP, when set, replaces ClientIP(r, TrustedProxies) for finding
	// the client's address (for example behind a CDN that sends its own
	// header).
	ClientIP func(r *http.Request) netip.Addr

	// Logger receives errors the middleware handles itself (a failed Touch,
	// a store error turned into a 500). Default slog.Default().
	Logger *slog.Logger

	// Now is the clock of MarkAuthenticated and RequireRecentAuth.
	// Default time.Now.
	Now func() time.Time

	// CrossOrigin protects every request with an unsafe method (POST, PUT,
	// PATCH, DELETE, ...) that goes through Handler, the app's own routes
	// included: a cross-site request (Sec-Fetch-Site, or an Origin that is
	// not the request's host) answers 403 before the session is loaded, so
	// a form on another site cannot sign a visitor in or out or change
	// their session. Default http.NewCrossOriginProtection(); pass your own
	// to trust other origins (AddTrustedOrigin) or to answer refusals
	// yourself (SetDenyHandler). Requests that carry neither header
	// (non-browser clients) pass, as with http.CrossOriginProtection.
	CrossOrigin *http.CrossOriginProtection

	// CrossOriginExempt lists ServeMux patterns (such as "POST /webhooks/")
	// whose requests skip the cross-origin check: endpoints called by other
	// sites' servers, which authenticate some other way. They are added to
	// CrossOrigin with AddInsecureBypassPattern.
	CrossOriginExempt []string

	// DisableCrossOriginProtection turns the check off for the app's
	// routes. The views (SessionsHandler, AdminHandler) keep their own.
	DisableCrossOriginProtection bool

	// OnSaveError answers a request whose session could not be saved just
	// before its headers went out (a value of an unregistered type, which
	// wraps usersessions.ErrUnsupportedType and names the key and the type,
	// or a store failure). The error is logged first; the handler's
	// response headers (cookies, caching, content) are already removed and
	// Cache-Control is no-store. It must write the response. Default: a
	// plain 500. To handle the error inside the handler instead, call
	// Save(r) before writing.
	OnSaveError func(w http.ResponseWriter, r *http.Request, err error)

	// AnonymousValues decides what happens to values set in the session of
	// a visitor who is not signed in. The default, AnonymousPersist,
	// creates a durable record per such visitor (and a cookie); a crawler
	// hitting a page that sets a value creates one record per request.
	// AnonymousRequestOnly keeps the database free of them.
	AnonymousValues AnonymousPolicy

	// DBSC, when set, turns on device-bound sessions (Device Bound
	// Session Credentials): after sign-in a browser that supports them
	// binds the session to a key it keeps, and from then on the session
	// cookie alone no longer signs anyone in. See DBSCOptions. Nil: off.
	DBSC *DBSCOptions
}

// AnonymousPolicy is the choice of Options.AnonymousValues.
type AnonymousPolicy int

const (
	// AnonymousPersist stores a visitor's values even before sign-in: the
	// first value set creates a session record (user "") and sets the
	// cookie, and the record lives for the store's Lifetime like any other.
	// Every such visitor costs one record; Store.ClearExpired removes them
	// when they expire.
	AnonymousPersist AnonymousPolicy = iota

	// AnonymousRequestOnly keeps values set before sign-in for the current
	// request only: nothing is written and no cookie is set for them. A
	// Login in the same request carries them into the new session (a form
	// that signs in and adds to the cart at once keeps the cart). Values of
	// signed-in sessions are saved as usual. The first value dropped is
	// logged once, at Info.
	AnonymousRequestOnly
)

// Manager connects a Store to net/http: its Handler gives every request a
// session, Login and Logout change who it belongs to, and SessionsHandler and
// AdminHandler serve ready-made views. A Manager is safe for concurrent use;
// create one per Store with New.
type Manager struct {
	store  *usersessions.Store
	name   string
	secure bool
	domain string
	proxy  []netip.Prefix
	ip     func(*http.Request) netip.Addr
	log    *slog.Logger
	cop    *http.CrossOriginProtection // nil: disabled

	onSaveError func(http.ResponseWriter, *http.Request, error)
	anon        AnonymousPolicy
	warnedAnon  atomic.Bool
	now         func() time.Time
	dbsc        *dbsc // nil: off
}

// New returns a Manager for store. It panics on an impossible cookie
// configuration (a "__Host-" cookie with a Domain), a programming error.
func New(store *usersessions.Store, opts *Options) *Manager {
	var o Options
	if opts != nil {
		o = *opts
	}
	m := &Manager{
		store:  store,
		name:   o.CookieName,
		secure: o.Secure,
		domain: o.Domain,
		proxy:  append([]netip.Prefix(nil), o.TrustedProxies...),
		ip:     o.ClientIP,
		log:    o.Logger,

		onSaveError: o.OnSaveError,
		anon:        o.AnonymousValues,
		now:         o.Now,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.name == "" {
		m.name = DefaultCookieName
	}
	if strings.HasPrefix(m.name, "__Host-") || strings.HasPrefix(m.name, "__Secure-") {
		m.secure = true
	}
	if strings.HasPrefix(m.name, "__Host-") && m.domain != "" {
		panic("httpx: a __Host- cookie cannot have a Domain")
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if !o.DisableCrossOriginProtection {
		m.cop = o.CrossOrigin
		if m.cop == nil {
			m.cop = http.NewCrossOriginProtection()
		}
		for _, p := range o.CrossOriginExempt {
			m.cop.AddInsecureBypassPattern(p)
		}
	}
	if o.DBSC != nil {
		m.dbsc = newDBSC(m, o.DBSC)
	}
	return m
}

// Store returns the Manager's store.
func (m *Manager) Store() *usersessions.Store { return m.store }

// CookieName returns the session cookie's name.
func (m *Manager) CookieName() string { return m.name }

// clientIP finds the client's address for r.
func (m *Manager) clientIP(r *http.Request) netip.Addr {
	if m.ip != nil {
		return m.ip(r)
	}
	return ClientIP(r, m.proxy)
}

// isSecure reports whether the cookie for r gets the Secure attribute.
func (m *Manager) isSecure(r *http.Request) bool {
	if m.secure || r.TLS != nil {
		return true
	}
	if len(m.proxy) == 0 {
		return false
	}
	peer := parseRemoteAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, m.proxy) {
		return false
	}
	if p := r.Header.Values("X-Forwarded-Proto"); len(p) > 0 {
		v := p[len(p)-1]
		if i := strings.LastIndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
		return strings.EqualFold(strings.TrimSpace(v), "https")
	}
	return forwardedProto(r.Header.Values("Forwarded")) == "https"
}

// state is the per-request session state. It doubles as the request's
// context (one allocation instead of two) and as the wrapped ResponseWriter's
// bookkeeping.
type state struct {
	context.Context
	m      *Manager
	r      *http.Request
	sess   *usersessions.Session
	token  string // the cookie token of sess, when persisted
	client usersessions.Client
	header http.Header // the response's header map

	stale       bool // the request's session cookie was no longer valid
	cookieSent  bool // commit put a Set-Cookie for the session in the headers
	setCookie   bool // a new token must be sent
	clearCookie bool // the browser's cookie must be removed
	committed   bool // save and cookie done (or headers gone out)

	// Allocated with the state, to save two allocations per request.
	rw   responseWriter
	anon usersessions.Session
}

type ctxKey struct{}

// Value implements context.Context.
func (s *state) Value(key any) any {
	if key == (ctxKey{}) {
		return s
	}
	return s.Context.Value(key)
}

func stateFrom(ctx context.Context) *state {
	s, _ := ctx.Value(ctxKey{}).(*state)
	return s
}

// FromContext returns the session of the request whose context is ctx.
//
// For every request that went through Manager.Handler it is non-nil: the
// loaded session, or, for an anonymous visitor, a fresh session with ID ""
// that exists only in memory until something is stored in it (Set) and the
// middleware saves it. The pointer stays valid for the whole request: Login
// and Logout update the same *Session in place (new token, user, ID and
// times), so a handler may keep it.
//
// Outside the middleware (a handler registered on a mux that m.Handler does
// not wrap, or a context not derived from the request's) it returns nil,
// and using that nil *Session panics. Login, Logout and RememberMe return
// ErrNoMiddleware there. The first such call is logged as an error through
// slog.Default, once per process, so the mistake shows up in the log.
//
// A Session is not safe for concurrent use; use it from the handler's
// goroutine.
func FromContext(ctx context.Context) *usersessions.Session {
	if s := stateFrom(ctx); s != nil {
		return s.sess
	}
	noMiddleware(ctx, "FromContext", "")
	return nil
}

// warnedNoMiddleware makes noMiddleware log once per process.
var warnedNoMiddleware atomic.Bool

// noMiddleware logs, once per process, that the app used the session on a
// request the middleware did not wrap: a handler registered outside
// m.Handler gets a nil session and ErrNoMiddleware, which would otherwise
// show up only as a nil pointer panic or a failed sign-in.
func noMiddleware(ctx context.Context, what, path string) {
	if !warnedNoMiddleware.CompareAndSwap(false, true) {
		return
	}
	slog.Default().ErrorContext(ctx, "httpx: "+what+" on a request that did not pass through Manager.Handler; "+
		"wrap the whole app (http.ListenAndServe(addr, m.Handler(mux))), not only the views. "+
		"FromContext returns nil and Login/Logout/RememberMe return ErrNoMiddleware there (logged once)",
		"path", path)
}

// Handler returns middleware that gives every request its session.
//
// Requests with an unsafe method first pass Options.CrossOrigin
// (http.CrossOriginProtection, on by default): a cross-site POST to any
// route answers 403 and never reaches the session or the handler.
//
// It reads the session cookie and loads the session. A missing, malformed,
// expired or revoked cookie makes the visitor anonymous, and a stale cookie
// is cleared. A store failure other than "not found" (a closed store, an I/O
// error) answers 500 and is logged; the details never reach the client. A
// corrupt record is logged and treated as not found, so one bad record
// cannot lock a visitor out.
//
// Every request with a session records its client (IP and user agent):
// the session is read with Store.LoadTouch, Load and Touch in one pass,
// which only updates memory (the store flushes activity in batches), so the
// session the handler sees already shows this request.
//
// A response that sets or clears the cookie is made unstorable by shared
// caches: "public" and "s-maxage" are removed, "private" is added (unless
// "no-store" or "private" is there), and CDN-targeted fields
// (CDN-Cache-Control, Surrogate-Control) are dropped, so a CDN can never
// hand one visitor's new session to another.
//
// Before the response headers go out (first Write, WriteHeader, Flush or
// ReadFrom, or when the handler returns without writing) the session is saved
// if its values changed, an anonymous session that now holds values is
// created, and the cookie is set or cleared. That happens at most once per
// request; a session that did not change costs no write. Changes made after
// the headers went out are not saved (a warning is logged): set values
// before writing the body. If saving fails, the handler's response is
// replaced by Options.OnSaveError's answer (default a 500); call Save(r)
// first to handle the error in the handler. A session that was ended by someone else while the
// request ran (Save reports ErrNotFound) loses the request's changes and its
// cookie is cleared; the response goes on.
//
// With Options.DBSC it also serves the DBSC registration and refresh
// endpoints, and serves a request of a device-bound session that lacks a
// valid bound cookie as signed out (see DBSCOptions).
//
// The wrapped ResponseWriter keeps http.Flusher, http.Hijacker and
// io.ReaderFrom, and has Unwrap for http.ResponseController. A hijacked
// connection saves the session but sends no cookie (the handler writes its
// own response).
func (m *Manager) Handler(next http.Handler) http.Handler {
	if m.dbsc != nil {
		next = m.dbsc.endpoints(next)
	}
	h := m.handler(next)
	if m.cop != nil {
		return m.cop.Handler(h)
	}
	return h
}

func (m *Manager) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &state{Context: r.Context(), m: m, header: w.Header()}
		st.client = usersessions.Client{IP: m.clientIP(r), UserAgent: usersessions.TruncateUserAgent(r.UserAgent())}
		if err := st.load(r); err != nil {
			neverCache(w.Header())
			if errors.Is(err, usersessions.ErrUnavailable) {
				// The storage is down, not the session: keep the cookie,
				// and let the client retry instead of signing it out.
				m.log.WarnContext(r.Context(), "httpx: session storage unavailable", "err", err)
				w.Header().Set("Retry-After", "1")
				http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
				return
			}
			m.log.ErrorContext(r.Context(), "httpx: loading session", "err", err)
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		r = r.WithContext(st)
		st.r = r
		rw := &st.rw
		rw.ResponseWriter, rw.st = w, st
		next.ServeHTTP(rw, r)
		switch {
		case !rw.wroteHeader && !rw.hijacked:
			rw.commit()
		case st.cookieSent && !rw.failed && !rw.hijacked:
			rw.guardHeaders()
			if st.sess.Modified() && (st.sess.ID != "" || m.anon != AnonymousRequestOnly) {
				m.log.WarnContext(r.Context(), "httpx: session changed after the response headers were written; the change is not saved",
					"session", st.sess.ID, "path", r.URL.Path)
			}
		case !rw.failed && st.sess.Modified() && (st.sess.ID != "" || m.anon != AnonymousRequestOnly):
			m.log.WarnContext(r.Context(), "httpx: session changed after the response headers were written; the change is not saved",
				"session", st.sess.ID, "path", r.URL.Path)
		}
	})
}

// load reads the cookie and loads the session into st.
func (st *state) load(r *http.Request) error {
	m := st.m
	st.sess = &st.anon
	c, err := r.Cookie(m.name)
	if err != nil { // no cookie
		return nil
	}
	if !validToken(c.Value) {
		st.clearCookie = true // never one of ours: not "ended"
		return nil
	}
	sess, err := st.loadSession(r, c.Value)
	switch {
	case err == nil:
	case errors.Is(err, errRefused):
		return nil // served as signed out; the cookie stays
	case errors.Is(err, usersessions.ErrNotFound):
		st.clearCookie, st.stale = true, true
		return nil
	case errors.Is(err, usersessions.ErrCorrupt):
		m.log.ErrorContext(r.Context(), "httpx: corrupt session record, treating the visitor as anonymous", "err", err)
		st.clearCookie, st.stale = true, true
		return nil
	default:
		return err
	}
	sess.Token = ""
	st.sess, st.token = sess, c.Value
	return nil
}

// validToken accepts a value of a token's length. Store.Load refuses any
// other malformed value before it does any work, so this only spares the
// call; a wrong-length cookie is cleared without touching the store.
func validToken(s string) bool {
	return len(s) == usersessions.TokenLength
}

// commit saves the session if needed and sets or clears the cookie, once.
// It must run before the headers are written.
func (st *state) commit() error {
	if st.committed {
		return nil
	}
	st.committed = true
	if err := st.save(); err != nil {
		return err
	}
	m, sess := st.m, st.sess
	if st.setCookie {
		maxAge := int(m.store.Lifetime() / time.Second)
		if !remembered(sess) {
			maxAge = 0 // a browser-session cookie: no Max-Age, no Expires
		}
		st.header.Add("Set-Cookie", m.cookie(st.r, st.token, maxAge).String())
		keepFromSharedCaches(st.header)
		st.cookieSent, st.rw.guard = true, true
	} else if st.clearCookie {
		st.header.Add("Set-Cookie", m.cookie(st.r, "", -1).String())
		keepFromSharedCaches(st.header)
		st.cookieSent, st.rw.guard = true, true
	}
	return nil
}

// save writes the session's changes: it creates the record of an anonymous
// session that now holds values (unless Options.AnonymousValues keeps them
// out of the store) and saves a persisted one that changed. On an error
// the session keeps its unsaved changes and no record is left behind.
func (st *state) save() error {
	m, sess := st.m, st.sess
	switch {
	case sess.ID == "" && sess.Modified() && len(sess.Keys()) > 0:
		if m.anon == AnonymousRequestOnly {
			if m.warnedAnon.CompareAndSwap(false, true) {
				m.log.InfoContext(st, "httpx: values set for a visitor who is not signed in are kept for the request only (Options.AnonymousValues); logged once",
					"path", st.r.URL.Path)
			}
			return nil
		}
		// An anonymous visitor stored something: the session is born.
		created, err := m.store.Create(st, "", st.client)
		if err != nil {
			return err
		}
		adopt(sess, created, true)
		if err := m.store.Save(st, sess); err != nil {
			// Leave no empty record behind, and the session as it was.
			if derr := m.store.End(context.WithoutCancel(st), created.ID, usersessions.EndOptions{}); derr != nil && !errors.Is(derr, usersessions.ErrNotFound) {
				m.log.ErrorContext(st, "httpx: removing the record of a session that could not be saved", "session", created.ID, "err", derr)
			}
			sess.ID, sess.UserID = "", ""
			sess.CreatedAt, sess.LastSeen, sess.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
			return err
		}
		st.token = created.Token
		st.setCookie, st.clearCookie = true, false
	case sess.ID != "" && sess.Modified():
		err := m.store.Save(st, sess)
		if errors.Is(err, usersessions.ErrNotFound) {
			// Ended elsewhere while this request ran.
			m.log.InfoContext(st, "httpx: session ended during the request; changes dropped", "session", sess.ID)
			*sess = usersessions.Session{}
			st.token, st.setCookie, st.clearCookie = "", false, true
		} else if errors.Is(err, usersessions.ErrConflict) {
			// A sign-in or sign-out by another request landed while this
			// one ran: its changes were made for the identity before, and
			// must not undo it. The other request set the cookie.
			m.log.InfoContext(st, "httpx: session signed in or out during the request; changes dropped", "session", sess.ID)
		} else if err != nil {
			return err
		}
	}
	return nil
}

// Save saves the session of r now and reports the outcome, instead of
// leaving it to the middleware just before the response headers go out.
// Use it where the handler can still do something about a failure: a
// value of a type the store cannot encode gives an error wrapping
// usersessions.ErrUnsupportedType that names the key and the type; the
// handler may Delete that key (or register the type) and Save again.
// A session that changes again after Save is saved again before the
// headers go out; the cookie is sent with the response as usual.
//
// An anonymous session that holds values gets its record here (unless
// Options.AnonymousValues is AnonymousRequestOnly; then nothing is written
// and Save returns nil). Save returns ErrHeadersWritten after the headers
// went out and ErrNoMiddleware outside the middleware.
func Save(r *http.Request) error {
	st := stateFrom(r.Context())
	if st == nil {
		noMiddleware(r.Context(), "Save", r.URL.Path)
		return ErrNoMiddleware
	}
	if st.committed {
		return ErrHeadersWritten
	}
	return st.save()
}

// adopt makes dst the session fresh, keeping the values of dst: with all
// true, every value of dst is carried over; otherwise only when dst had
// unsaved changes (fresh already holds the stored values).
func adopt(dst, fresh *usersessions.Session, all bool) {
	carry := all || dst.Modified()
	var values map[string]any
	if carry {
		values = make(map[string]any, len(dst.Keys()))
		for _, k := range dst.Keys() {
			values[k], _ = dst.Get(k)
		}
	}
	*dst = *fresh
	dst.Token = ""
	if !carry {
		return
	}
	// The Store's own values (the sign-in mark it just stored) are
	// fresh's: the request's copy must not drop or replace them.
	for _, k := range dst.Keys() {
		if _, ok := values[k]; !ok && k != usersessions.SignInMarkKey {
			dst.Delete(k)
		}
	}
	for k, v := range values {
		if k != usersessions.SignInMarkKey {
			dst.Set(k, v)
		}
	}
}

// cookie builds the session cookie (maxAge < 0 deletes it).
func (m *Manager) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     m.name,
		Value:    value,
		Path:     "/",
		Domain:   m.domain,
		MaxAge:   maxAge,
		Secure:   m.isSecure(r),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// Login makes the request's session belong to userID.
//
// The token always changes, so a token planted before login (session
// fixation) is worthless afterwards. A persisted session is rotated and bound
// to the user in one durable write (Store.RotateUser, which also restarts the
// session's lifetime) and keeps its values; an anonymous session that was
// never saved becomes a new session of the user (Store.Create) and carries
// over any values set during this request. A session that belongs to a
// different user is deleted instead, and the new user starts with an empty
// session: nothing leaks from one account to the next. Logging in again as
// the same user just rotates. The new cookie is sent with the response. The
// *Session from FromContext is updated in place.
//
// Call it before writing the response; afterwards it returns
// ErrHeadersWritten and changes nothing.
func (m *Manager) Login(w http.ResponseWriter, r *http.Request, userID string) error {
	st := stateFrom(r.Context())
	if st == nil || st.m != m {
		noMiddleware(r.Context(), "Login", r.URL.Path)
		return ErrNoMiddleware
	}
	return st.login(userID)
}

func (st *state) login(userID string) error {
	if userID == "" {
		return ErrEmptyUserID
	}
	if st.committed {
		return ErrHeadersWritten
	}
	m, sess := st.m, st.sess
	if sess.UserID != "" && sess.UserID != userID {
		// Another user signs in on this browser: nothing of the previous
		// user's session may carry over, and that session is over.
		if err := st.logout(); err != nil {
			return err
		}
		st.clearCookie = false
	}
	var fresh *usersessions.Session
	rotated := false
	if st.token != "" {
		s, err := m.store.RotateUser(st, st.token, userID)
		switch {
		case err == nil:
			fresh, rotated = s, true
		case errors.Is(err, usersessions.ErrNotFound):
			// Ended meanwhile: start over with a new session below.
		default:
			return err
		}
	}
	if fresh == nil {
		s, err := m.store.Create(st, userID, st.client)
		if err != nil {
			return err
		}
		fresh = s
	}
	st.token = fresh.Token
	adopt(sess, fresh, !rotated)
	st.setCookie, st.clearCookie = true, false
	// Signing in is proving who one is: see MarkAuthenticated. The value
	// is saved with the response, like any other.
	sess.Set(authKey, m.now().UTC())
	if m.dbsc != nil {
		m.dbsc.offer(st)
	}
	return nil
}

// Logout ends the request's session: it is deleted from the store and the
// cookie is cleared. The *Session from FromContext becomes an empty,
// anonymous session. Logging out an anonymous visitor only clears the
// cookie.
//
// Call it before writing the response; afterwards it returns
// ErrHeadersWritten and changes nothing.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) error {
	st := stateFrom(r.Context())
	if st == nil || st.m != m {
		noMiddleware(r.Context(), "Logout", r.URL.Path)
		return ErrNoMiddleware
	}
	return st.logout()
}

func (st *state) logout() error {
	if st.committed {
		return ErrHeadersWritten
	}
	if id := st.sess.ID; id != "" {
		err := st.m.store.End(st, id, usersessions.EndOptions{Reason: usersessions.EndLogout, By: id})
		if err != nil && !errors.Is(err, usersessions.ErrNotFound) {
			return err
		}
	}
	*st.sess = usersessions.Session{}
	st.token, st.setCookie, st.clearCookie = "", false, true
	return nil
}

// Login makes the session of r belong to userID, using the Manager whose
// middleware r went through. See Manager.Login.
func Login(w http.ResponseWriter, r *http.Request, userID string) error {
	st := stateFrom(r.Context())
	if st == nil {
		noMiddleware(r.Context(), "Login", r.URL.Path)
		return ErrNoMiddleware
	}
	return st.login(userID)
}

// Logout ends the session of r, using the Manager whose middleware r went
// through. See Manager.Logout.
func Logout(w http.ResponseWriter, r *http.Request) error {
	st := stateFrom(r.Context())
	if st == nil {
		noMiddleware(r.Context(), "Logout", r.URL.Path)
		return ErrNoMiddleware
	}
	return st.logout()
}

// rememberKey is the session value that records RememberMe(false). Keys
// starting with "httpx." are reserved for this package.
const rememberKey = "httpx.remember"

// remembered reports whether the session's cookie is persistent (the
// default) or lasts only until the browser closes.
func remembered(s *usersessions.Session) bool {
	v, ok := s.Get(rememberKey)
	b, isBool := v.(bool)
	return !ok || !isBool || b
}

// RememberMe chooses how long the browser keeps the session cookie of r,
// as the "Remember me" box of a sign-in form does. With true (the default
// for every session) the cookie is persistent: its Max-Age is the store's
// lifetime. With false it becomes a browser-session cookie, without Max-Age
// or Expires, which the browser drops when it closes.
//
// The server-side lifetime does not change either way: the session still
// ends after Options.Lifetime (or IdleTimeout) even if the browser stays
// open. The choice is stored in the session (under the reserved key
// "httpx.remember") and applies to every cookie later issued for it, so a
// new token from Login keeps it; signing in as a different user starts
// over with the default.
//
// Call it after Login, before writing the response; the cookie is sent
// again with the new setting. Afterwards it returns ErrHeadersWritten and
// changes nothing. Outside the middleware it returns ErrNoMiddleware.
func RememberMe(w http.ResponseWriter, r *http.Request, remember bool) error {
	st := stateFrom(r.Context())
	if st == nil {
		noMiddleware(r.Context(), "RememberMe", r.URL.Path)
		return ErrNoMiddleware
	}
	if st.committed {
		return ErrHeadersWritten
	}
	if remembered(st.sess) == remember {
		return nil
	}
	if remember {
		st.sess.Delete(rememberKey)
	} else {
		st.sess.Set(rememberKey, false)
	}
	if st.token != "" {
		st.setCookie, st.clearCookie = true, false
	}
	return nil
}

// responseWriter saves the session and sets the cookie just before the
// headers go out.
type responseWriter struct {
	http.ResponseWriter
	st          *state
	wroteHeader bool
	failed      bool // commit failed: the handler's output is discarded
	hijacked    bool
	guard       bool // the cookie is in the headers: check them at the first Write
}

// commit runs state.commit; on a failure the handler's response is
// replaced by Options.OnSaveError's, or by a plain 500.
func (w *responseWriter) commit() bool {
	err := w.st.commit()
	if err == nil {
		return true
	}
	st := w.st
	if errors.Is(err, usersessions.ErrUnsupportedType) {
		st.m.log.ErrorContext(st, "httpx: a session value has a type the store cannot save; register the type with usersessions.RegisterType or store a supported one",
			"session", st.sess.ID, "path", st.r.URL.Path, "err", err)
	} else {
		st.m.log.ErrorContext(st, "httpx: saving session", "session", st.sess.ID, "path", st.r.URL.Path, "err", err)
	}
	w.failed = true
	w.wroteHeader = true
	h := w.ResponseWriter.Header()
	for _, k := range []string{"Content-Encoding", "Content-Length", "Content-Type", "Set-Cookie", "ETag", "Last-Modified", "Location"} {
		h.Del(k)
	}
	neverCache(h)
	if st.m.onSaveError != nil {
		st.m.onSaveError(w.ResponseWriter, st.r, err)
		return false
	}
	http.Error(w.ResponseWriter, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	return false
}

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		if !w.failed {
			w.ResponseWriter.WriteHeader(code) // let net/http log the superfluous call
		}
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): the real headers come later.
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !w.commit() {
		return
	}
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return len(p), nil
	}
	if w.guard {
		w.guardHeaders()
	}
	return w.ResponseWriter.Write(p)
}

// guardHeaders re-applies keepFromSharedCaches after the cookie went into
// the headers: a writer in front that sends headers lazily (with the first
// byte, or at a flush) would otherwise send a Cache-Control the handler set
// after WriteHeader. It runs at the first Write, at every flush and when the
// handler returns.
func (w *responseWriter) guardHeaders() {
	keepFromSharedCaches(w.st.header)
	w.guard = false
}

// ReadFrom implements io.ReaderFrom, keeping sendfile for http.ServeContent.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return io.Copy(io.Discard, src)
	}
	if w.guard {
		w.guardHeaders()
	}
	return io.Copy(w.ResponseWriter, src)
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() {
	_ = w.FlushError()
}

// FlushError flushes like Flush and reports an error; http.ResponseController
// prefers it.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return nil
	}
	if w.st.cookieSent {
		w.guardHeaders()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker. The session is saved first; no cookie can
// be sent on a hijacked connection.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.wroteHeader {
		if err := w.st.commit(); err != nil {
			return nil, nil, err
		}
	}
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
