package httpx

import (
	"cmp"
	"errors"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/usersessions/usersessions"
)

// Admin view limits.
const (
	DefaultAdminPageSize = 50
	maxAdminPageSize     = 500
	maxBulkEnd           = 1000    // ids in one bulk-end POST
	maxAdminForm         = 1 << 20 // bytes of a bulk-end POST body
)

// AdminOptions configure AdminHandler.
type AdminOptions struct {
	// Allow decides who may use the admin view; it runs on every request,
	// after the session middleware, so it can look at FromContext(r.Context()).
	// A request it refuses answers 403 Forbidden, whatever its path or
	// method: a page in the visitor's language saying who they are signed
	// in as (error.html), or JSON {"error": "forbidden"}; see LoginURL for
	// visitors who are not signed in. A nil Allow refuses everyone: the
	// admin view fails closed.
	Allow func(r *http.Request) bool

	// Prefix, Templates, Geo, Now and CrossOrigin work as in ViewOptions.
	// The admin page template is "admin.html"; its data is an *AdminPage.
	Prefix      string
	Templates   fs.FS
	Geo         *usersessions.Geo
	Now         func() time.Time
	CrossOrigin *http.CrossOriginProtection

	// LoginURL, when set, is where a visitor who is not signed in is sent
	// (HTML GET and HEAD; JSON clients get 401), with the page asked for
	// in next=, as ViewOptions.LoginURL does; the 403 page of a signed-in
	// visitor Allow refuses links to it to sign in with another account.
	// Empty (the default): visitors who are not signed in get the 403
	// page too.
	LoginURL string

	// LogoutURL is where the browser goes after the admin ended their own
	// session. Default "/".
	LogoutURL string

	// PageSize is the number of sessions per page. Default 50, at most 500.
	PageSize int

	// Language and GeoByLanguage work as in ViewOptions.
	Language      func(r *http.Request) string
	GeoByLanguage map[string]*usersessions.Geo
}

// AdminSession is one session in the admin view.
type AdminSession struct {
	SessionInfo
	UserID string `json:"user_id"` // "" for an anonymous session
	Active bool   `json:"active"`

	// DetailURL leads to the session's detail page, relative to the list.
	DetailURL string `json:"-"`
	// Name describes the session for a screen reader, in the page's
	// language: "alice, Chrome on Windows, Berlin, Germany". Set in the
	// admin list.
	Name string `json:"-"`
}

// AdminPage is the data of the admin.html template.
type AdminPage struct {
	Sessions []AdminSession // in ID order (stable for paging)
	Total    int            // sessions in the store, any state
	// Ended is the number of sessions ended by the POST that led here, -1
	// if none; Notice says what happened, "" if nothing. Both come from
	// the session, never from the URL (see SessionsPage).
	Ended  int
	Notice string

	// The filter in force, as given in the query.
	State     string // "active", "expired" or "all"
	User      string
	Anonymous bool
	Query     string
	After     string

	// NextURL is the relative URL of the next page, "" on the last one.
	// FilterQuery is the filter as a query string (no cursor), for links.
	NextURL     string
	FilterQuery string
	Now         time.Time

	// Matches is the number of sessions the filter matches, on every page;
	// MatchesMore reports that there are more than Matches (counting
	// stops at 10,000). QueryNote explains how Query was read: the IP
	// prefix searched, or why it is not a valid prefix ("" for plain
	// text), in the page's language.
	Matches     int
	MatchesMore bool
	QueryNote   string
	// SelectAll checks every box of the page (?select=all): "Select all"
	// without JavaScript. SelectAllURL and ClearURL lead to the page with
	// every box checked and with none.
	SelectAll    bool
	SelectAllURL string
	ClearURL     string
}

// adminCountLimit bounds the matches the admin list counts.
const adminCountLimit = 10000

// adminJSON is the JSON answer of the admin list.
type adminJSON struct {
	Sessions []AdminSession `json:"sessions"`
	Next     string         `json:"next,omitempty"` // cursor for ?after=
	Total    int            `json:"total"`
}

type admin struct {
	pageSet
	mnt    mount
	permit func(*http.Request) bool // AdminOptions.Allow
	size   int

	loginURL  string
	logoutURL string
}

// AdminHandler returns the admin view over every session in the store:
//
//	GET  {prefix}          list, filtered by the query parameters
//	                         state=active|expired|all (default active)
//	                         user=ID (one owner), anon=1 (anonymous only)
//	                         q=text (user ID or IP contains text; a CIDR
//	                         such as 203.0.113.0/24 matches the prefix)
//	                         after=ID (paging cursor)
//	GET  {prefix}{id}/     the session's details: the app's values (not
//	                       the package's own "httpx." keys), full user
//	                       agent, browser and OS versions, location and
//	                       times, with the last sign-in or re-authentication
//	                       (detail.html, data *AdminDetailPage; JSON
//	                       {"session", "authenticated_at", "device",
//	                       "location", "values"})
//	GET  {prefix}{id}/end  asks before ending one session (HTML)
//	POST {prefix}{id}/end  end one session
//	GET  {prefix}end       asks before ending the sessions named by the
//	                       repeated query parameter id (the list's "End
//	                       selected sessions" form)
//	POST {prefix}end       end every session named by a repeated form field
//	                       id (at most 1000)
//
// Access is decided by opts.Allow (403 when refused, nil refuses all; with
// opts.LoginURL a visitor who is not signed in goes to sign in). JSON
// works as in SessionsHandler: GET answers {"sessions": [...], "next":
// cursor, "total": n} with AdminSession objects, POSTs {"ended": n}. HTML
// POSTs redirect (303) back to the list with the same filter (form fields
// state, user, anon, q), where a one-time notice from the session says
// what happened; ending a session that had already ended answers HTML with
// a neutral notice and JSON with 404. Ending the admin's own current
// session logs the admin out and redirects to LogoutURL. The POST routes
// pass http.CrossOriginProtection.
//
// The list shows how many sessions the filter matches (counted up to
// 10,000) and, for a search with a slash, the IP prefix searched or why it
// is not one. ?select=all checks every box of the page (the "Select all on
// this page" link, for browsers without JavaScript); with JavaScript a
// select-all box in the table header does the same, and the page's CSP
// allows that one script by its hash. The pages speak the languages of
// SessionsHandler, chosen the same way (AdminOptions.Language).
//
// The detail page shows the session's stored values to whoever Allow
// lets in: keep secrets (tokens, keys) out of session values, or out of
// the admins' reach.
func (m *Manager) AdminHandler(opts *AdminOptions) http.Handler {
	var o AdminOptions
	if opts != nil {
		o = *opts
	}
	a := &admin{
		pageSet: pageSet{m: m, geos: newGeoSet(o.Geo, o.GeoByLanguage), lang: o.Language, now: o.Now},
		permit:  o.Allow,
		size:    o.PageSize,

		loginURL:  o.LoginURL,
		logoutURL: cmp.Or(o.LogoutURL, DefaultLogoutURL),
	}
	a.mnt = mount{prefix: o.Prefix, known: adminRoute, fail: a.fail}
	if a.now == nil {
		a.now = time.Now
	}
	if a.size <= 0 {
		a.size = DefaultAdminPageSize
	}
	a.size = min(a.size, maxAdminPageSize)
	a.lt = parseLocalized(o.Templates, a.geos, a.now)
	a.csp = pageCSPs(o.Templates, adminTemplate, confirmTemplate, detailTemplate, endedTemplate, errorTemplate)
	if a.csp[adminTemplate] != "frame-ancestors 'none'" {
		// The embedded admin page runs one script: its select-all box.
		a.csp[adminTemplate] = strings.Replace(a.csp[adminTemplate], "default-src 'none';", "default-src 'none'; script-src '"+adminScriptHash+"';", 1)
	}
	cop := o.CrossOrigin
	if cop == nil {
		cop = http.NewCrossOriginProtection()
	}
	return m.ensure(cop.Handler(http.HandlerFunc(a.serve)))
}

func (a *admin) serve(w http.ResponseWriter, r *http.Request) {
	if a.permit == nil || !a.permit(r) {
		a.refuse(w, r)
		return
	}
	rel, ok := a.mnt.route(w, r)
	if !ok {
		return
	}
	switch {
	case rel == "":
		if a.allow(w, r, http.MethodGet, http.MethodHead) {
			a.list(w, r)
		}
	case rel == "end":
		if !a.allow(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
			return
		}
		if r.Method == http.MethodPost {
			a.bulkEnd(w, r)
			return
		}
		a.confirm(w, r, r.URL.Query()["id"], "./")
	default:
		if id, ok := detailRoute(rel); ok {
			if a.allow(w, r, http.MethodGet, http.MethodHead) {
				a.detail(w, r, id)
			}
			return
		}
		id, ok := endRoute(rel)
		if !ok {
			a.fail(w, r, http.StatusNotFound)
			return
		}
		if !a.allow(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
			return
		}
		if r.Method == http.MethodPost {
			a.endOne(w, r, id)
			return
		}
		a.confirm(w, r, []string{id}, "../")
	}
}

// refuse answers a request Allow refused. A visitor who is not signed in
// is sent to sign in when there is a LoginURL (see pageSet.signIn); anyone
// else gets 403: JSON, or a page saying who they are signed in as, with a
// link to sign in with another account.
func (a *admin) refuse(w http.ResponseWriter, r *http.Request) {
	sess := FromContext(r.Context())
	signedIn := sess != nil && sess.UserID != ""
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if !signedIn && a.loginURL != "" && (get || wantsJSON(r)) {
		a.signIn(w, r, a.loginURL)
		return
	}
	noStore(w)
	if wantsJSON(r) {
		a.fail(w, r, http.StatusForbidden)
		return
	}
	loc := a.localizer(r)
	page := &ErrorPage{Status: http.StatusForbidden, Title: loc.T("error.403.title"), Message: loc.T("error.403.message")}
	if signedIn {
		page.User = sess.UserID
	} else {
		page.Message += " " + loc.T("error.403.anonymous")
	}
	if a.loginURL != "" {
		page.SignInURL = loginURLFor(a.loginURL, requestPath(r), false)
	}
	a.errorPage(w, r, loc, page)
}

// confirm asks before ending the sessions ids (from the list's "End" link
// or its "End selected sessions" form, both GET). list is the list's URL
// relative to the page; the filter in the query is kept.
func (a *admin) confirm(w http.ResponseWriter, r *http.Request, ids []string, list string) {
	noStore(w)
	if wantsJSON(r) {
		w.Header().Set("Allow", "POST")
		a.fail(w, r, http.StatusMethodNotAllowed)
		return
	}
	if len(ids) > maxBulkEnd {
		a.fail(w, r, http.StatusRequestEntityTooLarge)
		return
	}
	q := r.URL.Query()
	filter := readFilter(q).values()
	back := list
	if enc := filter.Encode(); enc != "" {
		back += "?" + enc
	}
	current := FromContext(r.Context())
	loc := a.localizer(r)
	page := &ConfirmPage{Action: "end", CancelURL: back, Now: a.now()}
	seen, err := a.confirmSessions(r, ids, page, current, loc)
	if err != nil {
		a.serverError(w, r, "reading a session", err)
		return
	}
	if len(page.Sessions) == 0 {
		key := noticeGone
		if len(ids) == 0 {
			key = noticeNone
		}
		setNotice(r, key, -1)
		seeOther(w, back)
		return
	}
	for _, k := range []string{"state", "user", "anon", "q"} {
		if v := filter.Get(k); v != "" {
			page.Hidden = append(page.Hidden, Field{k, v})
		}
	}
	n := len(page.Sessions)
	page.Title = loc.N("confirm.admin.title", n)
	page.Button = loc.N("confirm.admin.button", n)
	page.Message = loc.T("confirm.admin.message")
	if current != nil && seen[current.ID] {
		page.Message += " " + loc.T("confirm.admin.self")
	}
	a.page(w, r, loc, confirmTemplate, page)
}

// confirmSessions adds to page the sessions ids that exist, each once,
// with a hidden "id" field each; IDs that are malformed or gone are
// skipped. It returns the IDs it looked at.
func (a *admin) confirmSessions(r *http.Request, ids []string, page *ConfirmPage, current *usersessions.Session, loc localizer) (map[string]bool, error) {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] || !isID(id) {
			continue
		}
		seen[id] = true
		s, err := a.m.store.Get(r.Context(), id)
		if errors.Is(err, usersessions.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		page.Sessions = append(page.Sessions, AdminSession{SessionInfo: info(s, current.ID, loc), UserID: s.UserID, Active: s.Active(page.Now)})
		page.Hidden = append(page.Hidden, Field{"id", id})
	}
	return seen, nil
}

// adminRoute reports whether rel is a route of AdminHandler.
func adminRoute(rel string) bool {
	switch rel {
	case "", "end":
		return true
	}
	if _, ok := detailRoute(rel); ok {
		return true
	}
	_, ok := endRoute(rel)
	return ok
}

// detailRoute parses "{id}/", where id has the form of a session ID.
func detailRoute(rel string) (string, bool) {
	id, ok := strings.CutSuffix(rel, "/")
	if !ok || !isID(id) {
		return "", false
	}
	return id, true
}

// adminFilter is the filter part of the admin query.
type adminFilter struct {
	state, user, query string
	anon               bool
}

func readFilter(v url.Values) adminFilter {
	f := adminFilter{
		state: v.Get("state"),
		user:  strings.TrimSpace(v.Get("user")),
		query: strings.TrimSpace(v.Get("q")),
		anon:  v.Get("anon") == "1" || v.Get("anon") == "on",
	}
	if f.state != "expired" && f.state != "all" {
		f.state = "active"
	}
	return f
}

func (f adminFilter) values() url.Values {
	v := url.Values{}
	if f.state != "active" {
		v.Set("state", f.state)
	}
	if f.user != "" {
		v.Set("user", f.user)
	}
	if f.anon {
		v.Set("anon", "1")
	}
	if f.query != "" {
		v.Set("q", f.query)
	}
	return v
}

func (f adminFilter) store(after string) usersessions.Filter {
	sf := usersessions.Filter{UserID: f.user, Anonymous: f.anon, After: after}
	switch f.state {
	case "active":
		sf.State = usersessions.ActiveOnly
	case "expired":
		sf.State = usersessions.ExpiredOnly
	}
	if f.query != "" {
		if p, err := netip.ParsePrefix(f.query); err == nil {
			sf.IPPrefix = p.Masked()
		} else {
			sf.Search = f.query
		}
	}
	return sf
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := readFilter(q)
	after := q.Get("after")
	ctx := r.Context()
	asJSON := wantsJSON(r)
	loc := a.localizer(r)
	if asJSON {
		loc = a.geos.localizer(catalogEN)
	}
	page := &AdminPage{
		State: f.state, User: f.user, Anonymous: f.anon, Query: f.query, After: after,
		Ended: -1, FilterQuery: f.values().Encode(), Now: a.now(),
		SelectAll: q.Get("select") == "all",
	}
	if !asJSON {
		page.Notice, page.Ended = takeNotice(r, loc.catalog)
	}
	next, err := a.readPage(r, f, page, loc, asJSON)
	if after != "" && errors.Is(err, usersessions.ErrNotFound) { // a bad cursor
		a.fail(w, r, http.StatusBadRequest)
		return
	}
	if err != nil {
		a.serverError(w, r, "listing sessions", err)
		return
	}
	if after != "" && !asJSON {
		n, more, err := a.countMatches(r, f)
		if err != nil {
			a.serverError(w, r, "counting sessions", err)
			return
		}
		page.Matches, page.MatchesMore = n, more
	}
	page.linkSessions(loc)
	total, err := a.m.store.Count(ctx)
	if err != nil {
		a.serverError(w, r, "counting sessions", err)
		return
	}
	page.Total = total
	page.setLinks(f, after, next)
	page.QueryNote = queryNote(loc.catalog, f.query)
	noStore(w)
	w.Header().Add("Vary", "Accept")
	if asJSON {
		writeJSON(w, http.StatusOK, adminJSON{Sessions: page.Sessions, Next: next, Total: total})
		return
	}
	a.page(w, r, loc, adminTemplate, page)
}

// readPage fills page.Sessions with one page of the sessions f matches
// after page.After, and returns the cursor of the next page ("" at the
// end). The first HTML page goes on counting the matches (page.Matches, up
// to adminCountLimit).
func (a *admin) readPage(r *http.Request, f adminFilter, page *AdminPage, loc localizer, asJSON bool) (next string, err error) {
	current := FromContext(r.Context())
	page.Sessions = []AdminSession{}
	for s, err := range a.m.store.All(r.Context(), f.store(page.After)) {
		if err != nil {
			return "", err
		}
		if len(page.Sessions) == a.size {
			if next == "" {
				next = page.Sessions[len(page.Sessions)-1].ID
			}
			if asJSON || page.After != "" {
				break
			}
			if page.Matches++; page.Matches >= adminCountLimit {
				page.MatchesMore = true
				break
			}
			continue
		}
		page.Matches++
		page.Sessions = append(page.Sessions, AdminSession{
			SessionInfo: info(s, current.ID, loc),
			UserID:      s.UserID,
			Active:      s.Active(page.Now),
		})
	}
	return next, nil
}

// linkSessions gives each listed session its links (which keep the
// filter) and its display name.
func (page *AdminPage) linkSessions(loc localizer) {
	for i := range page.Sessions {
		s := &page.Sessions[i]
		s.DetailURL = url.PathEscape(s.ID) + "/"
		if page.FilterQuery != "" { // the next pages keep the filter
			s.EndURL += "?" + page.FilterQuery
			s.DetailURL += "?" + page.FilterQuery
		}
		s.Name = sessionName(loc, s)
	}
}

// setLinks sets the page's next, clear and select-all links for filter f
// on the page after the cursor after, with next the following page's.
func (page *AdminPage) setLinks(f adminFilter, after, next string) {
	if next != "" {
		v := f.values()
		v.Set("after", next)
		page.NextURL = "./?" + v.Encode()
	}
	sel := f.values()
	if after != "" {
		sel.Set("after", after)
	}
	page.ClearURL = "./"
	if enc := sel.Encode(); enc != "" {
		page.ClearURL += "?" + enc
	}
	sel.Set("select", "all")
	page.SelectAllURL = "./?" + sel.Encode()
}

// countMatches counts the sessions f matches, up to adminCountLimit.
func (a *admin) countMatches(r *http.Request, f adminFilter) (n int, more bool, err error) {
	for _, err := range a.m.store.All(r.Context(), f.store("")) {
		if err != nil {
			return n, false, err
		}
		if n++; n >= adminCountLimit {
			return n, true, nil
		}
	}
	return n, false, nil
}

// sessionName describes a session of the admin list for assistive
// technology: who, on what, where. IDs mean nothing to a person.
func sessionName(loc localizer, s *AdminSession) string {
	user := s.UserID
	if user == "" {
		user = loc.T("admin.anonymous")
	}
	device := cmp.Or(s.Device, loc.T("device.unknown"))
	if s.Location != "" {
		return loc.F("admin.sessionAt", "user", user, "device", device, "location", s.Location)
	}
	if s.IP != "" {
		return loc.F("admin.sessionAt", "user", user, "device", device, "location", s.IP)
	}
	return loc.F("admin.session", "user", user, "device", device)
}

// queryNote explains how the admin search text was read: as an IP prefix
// (which one), or why text with a slash is not a valid prefix. Plain text
// gives "".
func queryNote(c *catalog, query string) string {
	if query == "" {
		return ""
	}
	if p, err := netip.ParsePrefix(query); err == nil {
		return c.F("admin.prefix", "prefix", p.Masked().String())
	}
	addr, _, ok := strings.Cut(query, "/")
	if !ok {
		return ""
	}
	reason := c.T("admin.badPrefix.bits")
	if _, err := netip.ParseAddr(addr); err != nil {
		reason = c.T("admin.badPrefix.addr")
	}
	return c.F("admin.badPrefix", "query", query, "reason", reason)
}

func (a *admin) endOne(w http.ResponseWriter, r *http.Request, id string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, r, http.StatusBadRequest)
		return
	}
	n, loggedOut, err := a.end(w, r, []string{id})
	if err != nil {
		a.serverError(w, r, "ending a session", err)
		return
	}
	if n == 0 {
		// Already ended: JSON 404, HTML back to the list with a neutral notice.
		if wantsJSON(r) {
			a.fail(w, r, http.StatusNotFound)
			return
		}
		noStore(w)
		setNotice(r, noticeGone, -1)
		seeOther(w, listURL("../", r.PostForm))
		return
	}
	a.done(w, r, "../", n, loggedOut)
}

func (a *admin) bulkEnd(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminForm)
	if err := r.ParseForm(); err != nil {
		a.fail(w, r, http.StatusBadRequest)
		return
	}
	ids := r.PostForm["id"]
	if len(ids) > maxBulkEnd {
		a.fail(w, r, http.StatusRequestEntityTooLarge)
		return
	}
	n, loggedOut, err := a.end(w, r, ids)
	if err != nil {
		a.serverError(w, r, "ending sessions", err)
		return
	}
	a.done(w, r, "./", n, loggedOut)
}

// end deletes the sessions, counting those that existed. The admin's own
// session is ended through Logout, so its cookie goes too.
func (a *admin) end(w http.ResponseWriter, r *http.Request, ids []string) (n int, loggedOut bool, err error) {
	ctx := r.Context()
	current := FromContext(ctx)
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id == "" || seen[id] || len(id) > maxTokenLength {
			continue
		}
		seen[id] = true
		if current != nil && current.ID != "" && id == current.ID {
			if err := Logout(w, r); err != nil {
				return n, loggedOut, err
			}
			n++
			loggedOut = true
			continue
		}
		by := "admin:"
		if current != nil {
			by += current.UserID
		}
		switch err := a.m.store.End(ctx, id, usersessions.EndOptions{Reason: usersessions.EndAdmin, By: by}); {
		case err == nil:
			n++
		case errors.Is(err, usersessions.ErrNotFound):
		default:
			return n, loggedOut, err
		}
	}
	return n, loggedOut, nil
}

// done answers a successful admin POST.
func (a *admin) done(w http.ResponseWriter, r *http.Request, list string, n int, loggedOut bool) {
	noStore(w)
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, endedJSON{Ended: n, LoggedOut: loggedOut})
		return
	}
	if loggedOut {
		seeOther(w, a.logoutURL)
		return
	}
	// Back to the list with the filter the form carried.
	setNotice(r, noticeEnded, n)
	seeOther(w, listURL(list, r.PostForm))
}

// listURL is the list at the relative URL list, with the filter of form.
func listURL(list string, form url.Values) string {
	if enc := readFilter(form).values().Encode(); enc != "" {
		return list + "?" + enc
	}
	return list
}
