package httpx

import (
	"cmp"
	"encoding/json"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/backend"
)

// Default redirect targets of the views.
const (
	DefaultLoginURL  = "/login"
	DefaultLogoutURL = "/"
)

// ViewOptions configure SessionsHandler. The zero value (or nil) is useful.
type ViewOptions struct {
	// Prefix is the URL path the views are mounted at, ending in "/", for
	// example "/account/sessions/". Usually it stays empty: the mount point
	// is derived from the request, so the views work as registered on an
	// http.ServeMux ("/account/sessions/" or "/account/sessions/{rest...}"),
	// behind http.StripPrefix, under chi's r.Mount("/account/sessions", h)
	// and under gorilla/mux's PathPrefix("/account/sessions/"). All links and
	// redirects inside the views are relative, so the views never need to
	// know more. Set it only to refuse (404) everything outside it.
	Prefix string

	// LoginURL is where a visitor who is not signed in is sent (HTML; JSON
	// clients get 401), with the page asked for in the "next" query
	// parameter (see NextURL). Default "/login".
	LoginURL string

	// LogoutURL is where the browser goes after ending its own session.
	// Default "/".
	LogoutURL string

	// Templates overrides the embedded templates: every *.html file in it is
	// parsed after them, so a "sessions.html" replaces the page, and a file
	// defining "nav", "head" or "style" replaces just that block of every
	// page (see Templates in the package documentation). The template
	// functions of FuncMap are available (device, location, timesince,
	// timeuntil, date, and t, tn, tf, tb for the views' messages), in the
	// request's language, and the data is a *SessionsPage.
	Templates fs.FS

	// Geo resolves IP addresses to locations. Nil: locations are empty.
	Geo *usersessions.Geo

	// Now is the clock for "5 minutes ago". Default time.Now.
	Now func() time.Time

	// RecentAuth, when set, asks for a fresh proof of identity before
	// ending another session, "End all other sessions" and "Sign out
	// everywhere" (signing out of this session needs none): a person who
	// last signed in (or called MarkAuthenticated) longer ago than this is
	// sent to LoginURL with next= the confirmation page and reauth=1, as
	// Manager.RequireRecentAuth does. 0: no such check.
	RecentAuth time.Duration

	// CrossOrigin guards the POST routes. Default
	// http.NewCrossOriginProtection(); pass your own to add trusted origins.
	CrossOrigin *http.CrossOriginProtection

	// Language, when set, picks the language of a request's HTML pages
	// (a BCP 47 tag such as "de" or "pt-BR", for example from the user's
	// profile); "" or a language the views do not speak leaves the choice
	// to the request: the "lang" query parameter (LanguageParam), then the
	// "lang" cookie (LanguageCookie), then the Accept-Language header,
	// matched with golang.org/x/text/language, then English. See
	// Languages for the languages spoken. JSON answers are not translated.
	Language func(r *http.Request) string

	// GeoByLanguage holds, per language tag, a Geo opened with that
	// language first in GeoOptions.Languages, so that locations show in
	// the page's language ("Berlin, Deutschland"); a language without one
	// uses Geo. Keys are matched like Language ("pt", "pt-BR" and "pt-br"
	// all name Brazilian Portuguese).
	GeoByLanguage map[string]*usersessions.Geo
}

// SessionInfo is one session as the views show it. Its JSON form is the
// object of the JSON API; it never holds the token.
type SessionInfo struct {
	ID string `json:"id"`
	IP string `json:"ip"` // "" when unknown
	// Location and Device are in the page's language in HTML ("Chrome
	// unter Windows"), in English in JSON.
	Location  string `json:"location"` // "" when unknown
	Device    string `json:"device"`   // "Chrome on Windows"
	UserAgent string `json:"user_agent"`
	// CreatedAt is when the session began, LastSeen its latest activity,
	// ExpiresAt the moment it ends (the earlier of its absolute lifetime and
	// its idle timeout). RFC 3339 in JSON, UTC.
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
	// Current marks the session of the request being served.
	Current bool `json:"current"`
	// DeviceBound marks a session bound to its browser's key by DBSC
	// (Options.DBSC): its cookie alone does not sign anyone in.
	DeviceBound bool `json:"device_bound"`

	// Addr is the IP address (for the location template function).
	Addr netip.Addr `json:"-"`
	// EndURL is the form action ending this session, relative to the list.
	EndURL string `json:"-"`

	// Suspicious is the mark of a sign-in that usersessions.SignInCheck
	// found suspicious, nil when none; ReportURL leads to its "This
	// wasn't me" page, relative to the list ("" for the current session).
	Suspicious *SuspiciousInfo `json:"suspicious,omitempty"`
	ReportURL  string          `json:"-"`
}

// SessionsPage is the data of the sessions.html template.
type SessionsPage struct {
	UserID   string
	Sessions []SessionInfo // newest activity first
	Current  *SessionInfo  // nil if the list raced with an end
	Others   int           // sessions other than the current one
	// Ended is the number of sessions ended by the POST that led here, -1
	// if none. Notice is what to tell the person about it ("2 sessions
	// ended.", "That session had already ended."), "" if nothing. Both
	// come from the session (a one-time notice stored by the POST), never
	// from the URL, so a link cannot make the page claim anything.
	Ended  int
	Notice string
	// EndOthersURL and EndAllURL lead to the confirmation pages of "End
	// all other sessions" and "Sign out everywhere", relative to the list.
	EndOthersURL string
	EndAllURL    string
	Now          time.Time
	// Recent lists the user's recently ended sessions, most recent first
	// (at most recentMax), when the Store keeps a History.
	Recent []EndedInfo
}

// EndedInfo is a recently ended session, for the list's "Recently ended".
type EndedInfo struct {
	ID       string    `json:"id"`
	Device   string    `json:"device"`
	Location string    `json:"location"`
	IP       string    `json:"ip"`
	EndedAt  time.Time `json:"ended_at"`
	Reason   string    `json:"reason"` // usersessions.EndReason: "logout", "others", ...
	// ReasonText is Reason in the page's language ("Signed out").
	ReasonText string `json:"-"`
}

// recentMax bounds the "Recently ended" list.
const recentMax = 10

// ConfirmPage is the data of the confirm.html template: the page a GET of
// a destructive route shows, asking before its POST acts. It works without
// JavaScript: a form that POSTs Hidden to Action, and a Cancel link.
type ConfirmPage struct {
	Title     string         // "End all other sessions?"
	Message   string         // what will happen, in a sentence or two
	Sessions  []AdminSession // the sessions concerned (UserID set in the admin view)
	Action    string         // the form's action, relative to the page
	Hidden    []Field        // the form's hidden fields
	Button    string         // the submit button's label
	CancelURL string         // relative
	Now       time.Time      // the views' clock, for timesince
}

// Field is a hidden form field of a ConfirmPage.
type Field struct{ Name, Value string }

// EndedPage is the data of the ended.html template, shown (HTML only) to a
// browser whose session cookie is no longer valid: it was ended elsewhere,
// revoked or expired.
type EndedPage struct {
	LoginURL string // LoginURL with next= this page
}

// sessionsJSON is the JSON answer of GET {prefix}.
type sessionsJSON struct {
	Sessions []SessionInfo `json:"sessions"`
	Recent   []EndedInfo   `json:"recently_ended,omitempty"`
}

// endedJSON answers the POST routes for JSON clients.
type endedJSON struct {
	Ended     int  `json:"ended"`
	LoggedOut bool `json:"logged_out,omitempty"`
}

type errorJSON struct {
	Error string `json:"error"`
}

// views serves SessionsHandler.
type views struct {
	pageSet
	mnt       mount
	loginURL  string
	logoutURL string
	recent    time.Duration // ViewOptions.RecentAuth
}

// SessionsHandler returns the views that let the signed-in user see and end
// their sessions:
//
//	GET  {prefix}               the user's active sessions (HTML, or JSON)
//	GET  {prefix}{id}/end       asks before ending one session (HTML)
//	POST {prefix}{id}/end       ends one session
//	GET  {prefix}{id}/report    asks before "This wasn't me" (HTML)
//	POST {prefix}{id}/report    ends another session with reason "reported"
//	GET  {prefix}end-others     asks before ending all other sessions
//	POST {prefix}end-others     ends every session of the user but this one
//	GET  {prefix}end-all        asks before signing out everywhere
//	POST {prefix}end-all        ends every session of the user, this one too
//
// The GET pages (confirm.html) are plain forms that POST to the same URL,
// so every action works without JavaScript; the POST routes act at once.
//
// The pages speak English, German, Spanish, French, Dutch, Brazilian
// Portuguese, Simplified Chinese and Japanese (see Languages): the
// language comes from ViewOptions.Language, else the "lang" query
// parameter, else the "lang" cookie, else Accept-Language (matched with
// golang.org/x/text/language), else English, and sets <html lang>.
// Relative times ("vor 5 Minuten"), dates (with their zone), device names
// ("Chrome unter Windows"), notices and, with GeoByLanguage, locations
// follow it.
//
// JSON is served when the request's Accept header prefers application/json
// (or with ?format=json): GET {prefix} answers {"sessions": [...]} (see
// SessionInfo), the POST routes answer {"ended": n} (plus "logged_out":
// true when the current session was ended), errors answer {"error":
// "..."}. HTML POSTs answer 303 See Other back to the list (or to
// LogoutURL when the current session was ended), and the list then shows
// a notice of what happened; the notice is kept in the session for one
// page view, never read from the URL. Ending a session that has already
// ended, or that belongs to someone else, answers HTML with the same
// neutral notice ("That session had already ended.") and JSON with 404.
//
// A visitor who is not signed in is redirected to LoginURL (303) with the
// page in ?next= (see NextURL); a browser whose session cookie is no longer
// valid gets a "Your session has ended" page (ended.html) with a sign-in
// link instead; a JSON client gets 401. The POST routes pass
// http.CrossOriginProtection, so a cross-site POST answers 403. A wrong
// method answers 405 with an Allow header. Errors (an unknown page, a
// wrong method, a failure) answer a page in the visitor's language
// (error.html, data *ErrorPage), or {"error": "..."} in JSON. Responses
// carry Cache-Control: no-store and forbid framing.
//
// The handler runs the Manager's middleware itself when the request did not
// already go through it, so mux.Handle("/account/sessions/",
// m.SessionsHandler(nil)) is enough. It panics if the override templates do
// not parse.
func (m *Manager) SessionsHandler(opts *ViewOptions) http.Handler {
	var o ViewOptions
	if opts != nil {
		o = *opts
	}
	v := &views{
		pageSet:   pageSet{m: m, geos: newGeoSet(o.Geo, o.GeoByLanguage), lang: o.Language, now: o.Now},
		loginURL:  cmp.Or(o.LoginURL, DefaultLoginURL),
		logoutURL: cmp.Or(o.LogoutURL, DefaultLogoutURL),
		recent:    o.RecentAuth,
	}
	v.mnt = mount{prefix: o.Prefix, known: sessionsRoute, fail: v.fail}
	if v.now == nil {
		v.now = time.Now
	}
	v.lt = parseLocalized(o.Templates, v.geos, v.now)
	v.csp = pageCSPs(o.Templates, sessionsTemplate, confirmTemplate, endedTemplate, errorTemplate)
	cop := o.CrossOrigin
	if cop == nil {
		cop = http.NewCrossOriginProtection()
	}
	return m.ensure(cop.Handler(http.HandlerFunc(v.serve)))
}

// ensure runs h behind the Manager's middleware unless the request already
// went through it.
func (m *Manager) ensure(h http.Handler) http.Handler {
	wrapped := m.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil && st.m == m {
			h.ServeHTTP(w, r)
			return
		}
		wrapped.ServeHTTP(w, r)
	})
}

// serve dispatches a request to the list, the end-many routes or the
// routes of one session.
func (v *views) serve(w http.ResponseWriter, r *http.Request) {
	rel, ok := v.mnt.route(w, r)
	if !ok {
		return
	}
	switch {
	case rel == "":
		if !v.allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		v.list(w, r)
	case rel == "end-others" || rel == "end-all":
		v.serveEndMany(w, r, rel)
	default:
		v.serveOne(w, r, rel)
	}
}

// serveEndMany serves "end-others" and "end-all": the confirmation page on
// GET, the ending on POST, both after a fresh sign-in when RecentAuth asks
// for one.
func (v *views) serveEndMany(w http.ResponseWriter, r *http.Request, rel string) {
	if !v.allow(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	if v.recent > 0 && FromContext(r.Context()) != nil && FromContext(r.Context()).UserID != "" &&
		!v.m.recentlyAuthenticated(r, v.recent) {
		// Step-up: back to this confirmation page after signing in.
		page := requestPath(r)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			page = originalPath(r)
		}
		v.m.askReauth(w, r, v.loginURL, page)
		return
	}
	switch {
	case r.Method != http.MethodPost:
		v.confirmEnd(w, r, rel)
	case rel == "end-others":
		v.endOthers(w, r)
	default:
		v.endAll(w, r)
	}
}

// serveOne serves the routes of one session, ending it or reporting it:
// the confirmation page on GET, the action on POST; 404 when rel is
// neither.
func (v *views) serveOne(w http.ResponseWriter, r *http.Request, rel string) {
	id, ok := endRoute(rel)
	reported := false
	if !ok {
		id, ok = reportRoute(rel)
		reported = ok
	}
	if !ok {
		v.fail(w, r, http.StatusNotFound)
		return
	}
	if !v.allow(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	// Ending another session needs the same fresh proof as ending
	// all others (one by one it comes to the same); signing out of
	// this one never does.
	if sess := FromContext(r.Context()); v.recent > 0 && sess != nil && sess.UserID != "" && id != sess.ID &&
		!v.m.recentlyAuthenticated(r, v.recent) {
		v.m.askReauth(w, r, v.loginURL, originalPath(r))
		return
	}
	switch {
	case r.Method != http.MethodPost && reported:
		v.confirmReport(w, r, id)
	case r.Method != http.MethodPost:
		v.confirmEndOne(w, r, id, nil)
	case reported:
		v.report(w, r, id)
	default:
		v.endOne(w, r, id)
	}
}

// user returns the signed-in session, or answers 401 / redirects to login.
func (v *views) user(w http.ResponseWriter, r *http.Request) (*usersessions.Session, bool) {
	sess := FromContext(r.Context())
	if sess != nil && sess.UserID != "" {
		return sess, true
	}
	v.signIn(w, r, v.loginURL)
	return nil, false
}

func (v *views) list(w http.ResponseWriter, r *http.Request) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	list, err := v.m.store.ListByUser(r.Context(), sess.UserID)
	if err != nil {
		v.serverError(w, r, "listing sessions", err)
		return
	}
	now := v.now()
	loc := v.localizer(r)
	if wantsJSON(r) {
		loc = v.geos.localizer(catalogEN)
	}
	page := &SessionsPage{UserID: sess.UserID, Ended: -1, EndOthersURL: "end-others", EndAllURL: "end-all", Now: now}
	page.Sessions = make([]SessionInfo, 0, len(list))
	for _, s := range list {
		page.Sessions = append(page.Sessions, info(s, sess.ID, loc))
	}
	sortNewestFirst(page.Sessions)
	for i := range page.Sessions {
		if page.Sessions[i].Current {
			page.Current = &page.Sessions[i]
		} else {
			page.Others++
		}
	}
	past, err := v.m.store.History(r.Context(), sess.UserID)
	if err != nil {
		v.serverError(w, r, "reading the history", err)
		return
	}
	for _, e := range past[:min(len(past), recentMax)] {
		page.Recent = append(page.Recent, endedInfo(e, loc))
	}
	noStore(w)
	w.Header().Add("Vary", "Accept")
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, sessionsJSON{Sessions: page.Sessions, Recent: page.Recent})
		return
	}
	page.Notice, page.Ended = takeNotice(r, loc.catalog)
	v.page(w, r, loc, sessionsTemplate, page)
}

func (v *views) endOne(w http.ResponseWriter, r *http.Request, id string) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	noStore(w)
	if id == sess.ID {
		if err := Logout(w, r); err != nil {
			v.serverError(w, r, "ending the current session", err)
			return
		}
		if wantsJSON(r) {
			writeJSON(w, http.StatusOK, endedJSON{Ended: 1, LoggedOut: true})
			return
		}
		seeOther(w, v.logoutURL)
		return
	}
	err := v.m.store.EndForUser(r.Context(), sess.UserID, id, usersessions.EndOptions{Reason: usersessions.EndRevoked, By: sess.ID})
	v.answerEnd(w, r, err)
}

// answerEnd answers the end of one other session, which failed with err.
func (v *views) answerEnd(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, usersessions.ErrNotFound):
		// Already ended, or not this user's: the same neutral answer.
		if wantsJSON(r) {
			v.fail(w, r, http.StatusNotFound)
			return
		}
		setNotice(r, noticeGone, -1)
		seeOther(w, "../")
		return
	case err != nil:
		v.serverError(w, r, "ending a session", err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, endedJSON{Ended: 1})
		return
	}
	setNotice(r, noticeEnded, 1)
	seeOther(w, "../")
}

func (v *views) endOthers(w http.ResponseWriter, r *http.Request) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	n, err := v.m.store.EndUser(r.Context(), sess.UserID, sess.ID, usersessions.EndOptions{Reason: usersessions.EndOthers, By: sess.ID})
	if err != nil {
		v.serverError(w, r, "ending the other sessions", err)
		return
	}
	noStore(w)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, endedJSON{Ended: n})
		return
	}
	setNotice(r, noticeEnded, n)
	seeOther(w, "./")
}

// endAll signs the user out everywhere: every session of the user ends,
// this one included.
func (v *views) endAll(w http.ResponseWriter, r *http.Request) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	n, err := v.m.store.EndUser(r.Context(), sess.UserID, "", usersessions.EndOptions{Reason: usersessions.EndEverywhere, By: sess.ID})
	if err != nil {
		v.serverError(w, r, "ending all sessions", err)
		return
	}
	if err := Logout(w, r); err != nil {
		v.serverError(w, r, "signing out", err)
		return
	}
	noStore(w)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, endedJSON{Ended: n, LoggedOut: true})
		return
	}
	seeOther(w, v.logoutURL)
}

// confirmEnd asks before "End all other sessions" and "Sign out
// everywhere".
func (v *views) confirmEnd(w http.ResponseWriter, r *http.Request, rel string) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	list, err := v.m.store.ListByUser(r.Context(), sess.UserID)
	if err != nil {
		v.serverError(w, r, "listing sessions", err)
		return
	}
	loc := v.localizer(r)
	page := &ConfirmPage{Action: rel, CancelURL: "./", Now: v.now()}
	for _, s := range list {
		if rel == "end-others" && s.ID == sess.ID {
			continue
		}
		page.Sessions = append(page.Sessions, AdminSession{SessionInfo: info(s, sess.ID, loc)})
	}
	n := len(page.Sessions)
	if rel == "end-others" {
		page.Title, page.Button = loc.T("confirm.others.title"), loc.N("confirm.others.button", n)
		page.Message = loc.N("confirm.others.message", n)
	} else {
		page.Title, page.Button = loc.T("confirm.all.title"), loc.T("confirm.all.button")
		page.Message = loc.N("confirm.all.message", n)
	}
	v.confirm(w, r, loc, page)
}

// confirmEndOne asks before ending one session; custom, when set, words
// the page for another way of ending it.
func (v *views) confirmEndOne(w http.ResponseWriter, r *http.Request, id string, custom func(localizer, *ConfirmPage)) {
	sess, ok := v.user(w, r)
	if !ok {
		return
	}
	list, err := v.m.store.ListByUser(r.Context(), sess.UserID)
	if err != nil {
		v.serverError(w, r, "listing sessions", err)
		return
	}
	i := slices.IndexFunc(list, func(s *usersessions.Session) bool { return s.ID == id })
	if i < 0 {
		setNotice(r, noticeGone, -1)
		noStore(w)
		seeOther(w, "../")
		return
	}
	loc := v.localizer(r)
	page := &ConfirmPage{
		Sessions:  []AdminSession{{SessionInfo: info(list[i], sess.ID, loc)}},
		Action:    "end",
		CancelURL: "../",
		Now:       v.now(),
	}
	if id == sess.ID {
		page.Title, page.Button = loc.T("confirm.self.title"), loc.T("confirm.self.button")
		page.Message = loc.T("confirm.self.message")
	} else {
		page.Title, page.Button = loc.T("confirm.one.title"), loc.T("confirm.one.button")
		page.Message = loc.T("confirm.one.message")
	}
	if custom != nil {
		custom(loc, page)
	}
	v.confirm(w, r, loc, page)
}

func (v *views) confirm(w http.ResponseWriter, r *http.Request, loc localizer, page *ConfirmPage) {
	noStore(w)
	if wantsJSON(r) {
		w.Header().Set("Allow", "POST")
		v.fail(w, r, http.StatusMethodNotAllowed)
		return
	}
	v.page(w, r, loc, confirmTemplate, page)
}

// info turns a stored session into its view, in loc's language.
func info(s *usersessions.Session, currentID string, loc localizer) SessionInfo {
	si := SessionInfo{
		ID:        s.ID,
		Device:    deviceOrStored(loc, s.UserAgent),
		UserAgent: s.UserAgent,
		CreatedAt: s.CreatedAt.UTC(),
		LastSeen:  s.LastSeen.UTC(),
		ExpiresAt: s.Deadline().UTC(),
		Current:   s.ID == currentID && currentID != "",
		Addr:      s.IP,
		EndURL:    url.PathEscape(s.ID) + "/end",
	}
	si.DeviceBound = DeviceBound(s)
	if s.IP.IsValid() {
		si.IP = s.IP.String()
		si.Location = locate(loc.geo, s.IP)
	}
	si.Suspicious = suspiciousInfo(s, loc)
	si.ReportURL = reportURL(&si)
	return si
}

// endedInfo is the view of a history entry.
func endedInfo(e usersessions.Ended, loc localizer) EndedInfo {
	i := info(&e.Session, "", loc)
	key := "ended." + string(e.Reason)
	text := loc.catalog.msgs[key]
	if text == "" {
		text = loc.catalog.msgs["ended.unknown"]
	}
	return EndedInfo{ID: i.ID, Device: i.Device, Location: i.Location, IP: i.IP,
		EndedAt: e.EndedAt.UTC(), Reason: string(e.Reason), ReasonText: text}
}

// deviceOrStored names the device of a user agent, or returns a device
// name kept in its place (usersessions.Privacy.NoUserAgent stores "Safari
// on iPhone" itself: no raw user agent lacks a "/").
func deviceOrStored(loc localizer, ua string) string {
	if d := loc.Device(ua); d != "" || strings.Contains(ua, "/") {
		return d
	}
	return ua
}

// sortNewestFirst orders by latest activity, then creation, newest first.
func sortNewestFirst(list []SessionInfo) {
	slices.SortStableFunc(list, func(a, b SessionInfo) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// endRoute parses "{id}/end", where id has the form of a session ID.
func endRoute(rel string) (string, bool) {
	id, ok := strings.CutSuffix(rel, "/end")
	if !ok || !isID(id) {
		return "", false
	}
	return id, true
}

// isID reports whether s has the form of a session ID: IDLength characters
// of unpadded base64url.
func isID(s string) bool {
	if len(s) != backend.IDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sessionsRoute reports whether rel is a route of SessionsHandler.
func sessionsRoute(rel string) bool {
	switch rel {
	case "", "end-others", "end-all":
		return true
	}
	_, ok := endRoute(rel)
	_, reported := reportRoute(rel)
	return ok || reported
}

// mount finds the path of a request relative to where a view is mounted.
// known reports whether a relative path is one of the view's routes.
type mount struct {
	prefix string
	known  func(rel string) bool
	fail   func(w http.ResponseWriter, r *http.Request, code int) // the view's error answer
}

// route returns the request path relative to the mount point, or answers
// the request itself (a redirect adding the trailing slash, or 404) and
// reports false.
//
// With an explicit Prefix, only paths under it are served. Without one the
// mount point is derived from the request, trying in turn:
//
//   - a wildcard in the matched pattern: chi's "/sessions/*" (chi sets
//     r.Pattern and the "*" path value) or a ServeMux "{rest...}";
//   - the prefix of a ServeMux pattern ending in "/";
//   - a path shortened by http.StripPrefix (it no longer matches the
//     request URI), taken as relative to the mount point;
//   - the end of the path itself (gorilla/mux and other routers that keep
//     the full path and say nothing): the longest tail that is one of the
//     view's routes, where a session ID must look like one.
//
// The first candidate that names a route wins; a path equal to the mount
// point without its trailing slash is redirected to add it.
func (mt mount) route(w http.ResponseWriter, r *http.Request) (string, bool) {
	if mt.prefix != "" {
		return mt.routeUnderPrefix(w, r)
	}
	if rel, v := mt.routeByPattern(w, r); v != routeTryNext {
		return rel, v == routeFound
	}
	if rel, v := mt.routeStripped(w, r); v != routeTryNext {
		return rel, v == routeFound
	}
	return mt.routeByTail(w, r)
}

// verdict is the outcome of one way of finding the relative path.
type verdict int

const (
	routeTryNext  verdict = iota // this way says nothing; try the next
	routeFound                   // the relative path is known
	routeAnswered                // the request was answered (redirect or 404)
)

// routeUnderPrefix finds the relative path under an explicit Prefix:
// anything else is 404, except the prefix without its trailing slash,
// which is redirected to add it.
func (mt mount) routeUnderPrefix(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.URL.Path
	base := mt.prefix
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if rel, ok := strings.CutPrefix(p, base); ok {
		return rel, true
	}
	if p+"/" == base {
		mt.addSlash(w, r)
	} else {
		mt.fail(w, r, http.StatusNotFound)
	}
	return "", false
}

// routeByPattern finds the relative path from the matched pattern: its
// wildcard, or else the prefix of a pattern ending in "/".
func (mt mount) routeByPattern(w http.ResponseWriter, r *http.Request) (string, verdict) {
	// A router's wildcard holds the relative path. A pattern more specific
	// than the catch-all "/" is decisive: what it matched and is not a
	// route is 404 (a catch-all may lead to another router that keeps the
	// full path, so the tail of the path is tried after it).
	if name, ok := patternWildcard(r.Pattern); ok {
		rel := r.PathValue(name)
		if mt.known(rel) {
			return rel, routeFound
		}
		if specific(wildcardPrefix(r.Pattern)) {
			mt.fail(w, r, http.StatusNotFound)
			return "", routeAnswered
		}
	}
	if base := patternPrefix(r.Pattern); base != "" {
		rel, ok := strings.CutPrefix(r.URL.Path, base)
		if ok && mt.known(rel) {
			return rel, routeFound
		}
		if ok && specific(base) {
			mt.fail(w, r, http.StatusNotFound)
			return "", routeAnswered
		}
	}
	return "", routeTryNext
}

// routeStripped takes a path shortened by http.StripPrefix (or the root
// itself) as relative to the mount point.
func (mt mount) routeStripped(w http.ResponseWriter, r *http.Request) (string, verdict) {
	p := r.URL.Path
	orig := originalPath(r)
	if stripped := r.URL.EscapedPath() != orig; stripped || p == "/" || p == "" {
		rel := strings.TrimPrefix(p, "/")
		if rel == "" && !strings.HasSuffix(orig, "/") {
			mt.addSlash(w, r)
			return "", routeAnswered
		}
		if mt.known(rel) {
			return rel, routeFound
		}
	}
	return "", routeTryNext
}

// routeByTail is the last resort, for routers that keep the full path and
// say nothing: the longest tail of the path that is a route; else a
// redirect adding the mount point's slash, or 404.
func (mt mount) routeByTail(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.URL.Path
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && mt.known(p[i+1:]) {
			return p[i+1:], true
		}
	}
	// chi's Mount and an exact ServeMux pattern send the mount point
	// without its slash here.
	if pat := patternPath(r.Pattern); pat != "" && !strings.HasSuffix(pat, "/") && !strings.HasSuffix(p, "/") &&
		!strings.HasSuffix(pat, "*") && !strings.HasSuffix(pat, "...}") && strings.Count(pat, "/") == strings.Count(p, "/") {
		mt.addSlash(w, r)
		return "", false
	}
	mt.fail(w, r, http.StatusNotFound)
	return "", false
}

// wildcardPrefix is the part of a pattern before its trailing wildcard:
// "/a/" for "/a/*" and "/a/{rest...}".
func wildcardPrefix(pattern string) string {
	p := patternPath(pattern)
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return p
}

// specific reports whether a mount path is more than the catch-all "/".
func specific(base string) bool { return base != "/" && base != "" }

// patternPath returns the path of a ServeMux or chi pattern: without a
// method or host.
func patternPath(pattern string) string {
	if pattern == "" {
		return ""
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 { // "GET /path/"
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	i := strings.IndexByte(pattern, '/') // drop a host
	if i < 0 {
		return ""
	}
	return pattern[i:]
}

// patternPrefix returns the path of a ServeMux pattern ending in "/" (with
// no wildcard), or "".
func patternPrefix(pattern string) string {
	pattern = patternPath(pattern)
	if !strings.HasSuffix(pattern, "/") || strings.ContainsAny(pattern, "{}*") {
		return ""
	}
	return pattern
}

// patternWildcard returns the name of the trailing wildcard of a pattern:
// "*" for chi's "/sessions/*", "rest" for ServeMux's "/sessions/{rest...}".
func patternWildcard(pattern string) (string, bool) {
	pattern = patternPath(pattern)
	if strings.HasSuffix(pattern, "/*") {
		return "*", true
	}
	if strings.HasSuffix(pattern, "...}") {
		if i := strings.LastIndex(pattern, "/{"); i >= 0 {
			return pattern[i+2 : len(pattern)-len("...}")], true
		}
	}
	return "", false
}

// originalPath is the escaped path the client asked for, before any
// http.StripPrefix.
func originalPath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && r.RequestURI != "" {
		return u.EscapedPath()
	}
	return r.URL.EscapedPath()
}

// addSlash redirects "/account/sessions" to "/account/sessions/" with a
// relative Location, so it can never point to another host.
func (mt mount) addSlash(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		mt.fail(w, r, http.StatusNotFound)
		return
	}
	orig := originalPath(r)
	loc := "./"
	if seg := orig[strings.LastIndexByte(orig, '/')+1:]; seg != "" {
		loc += seg + "/"
	}
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusMovedPermanently)
}

// seeOther redirects with 303 to loc, which is always a configured URL or a
// relative path built by the views (never taken from the request).
func seeOther(w http.ResponseWriter, loc string) {
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}

func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// wantsJSON reports whether the client prefers JSON: ?format=json, or an
// Accept header that ranks application/json at least as high as text/html.
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	var qJSON, qHTML float64 = -1, -1
	for _, line := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(s, 64); err == nil {
					q = f
				}
			}
			switch {
			case mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
				qJSON = max(qJSON, q)
			case mt == "text/html" || mt == "application/xhtml+xml":
				qHTML = max(qHTML, q)
			}
		}
	}
	return qJSON > 0 && qJSON >= qHTML
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs are encoded here
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// pageCSP is the Content-Security-Policy of a page: strict for the embedded
// templates (inline CSS only, nothing else loads), only anti-framing when
// the app brings its own template.
func pageCSP(override fs.FS, name string) string {
	if override != nil {
		if _, err := fs.Stat(override, name); err == nil {
			return "frame-ancestors 'none'"
		}
	}
	return "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'"
}
