package httpx

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errorTemplate is the page of a refused or failed request; data:
// *ErrorPage.
const errorTemplate = "error.html"

// ErrorPage is the data of the error.html template: why the views refused
// or could not serve a request, in the visitor's language. JSON clients
// get {"error": "..."} instead.
type ErrorPage struct {
	Status  int    // the HTTP status: 400, 403, 404, 405, 413 or 500
	Title   string // "Page not found"
	Message string // what happened, in a sentence or two
	// User is the signed-in visitor the admin view refused ("You are
	// signed in as alice."), "" otherwise.
	User string
	// SignInURL leads to AdminOptions.LoginURL with the way back to the
	// page, on the admin view's 403 page; "" when there is none.
	SignInURL string
}

// pageSet is what the views and the admin view share to answer with a
// page: the templates in every language, each page's CSP, and how a
// request's language and places are chosen.
type pageSet struct {
	m    *Manager
	lt   localized
	csp  map[string]string // per template
	geos geoSet
	lang func(*http.Request) string // ViewOptions.Language
	now  func() time.Time
}

// localizer returns the language of a request's page and the Geo naming
// places in it.
func (p *pageSet) localizer(r *http.Request) localizer {
	return p.geos.localizer(chooseLanguage(r, p.lang))
}

// page renders the template name in the language of loc, with status
// 200. It renders into a buffer first, so a template error answers a
// clean 500 page instead of half a page.
func (p *pageSet) page(w http.ResponseWriter, r *http.Request, loc localizer, name string, data any) {
	var buf bytes.Buffer
	if err := p.lt.get(loc.catalog).ExecuteTemplate(&buf, name, data); err != nil {
		p.serverError(w, r, "rendering "+name, err)
		return
	}
	writePage(w, p.csp[name], http.StatusOK, buf.Bytes())
}

// writePage sends a rendered page with its status and the headers every
// page of the views carries. Pages vary on what chose their language.
func writePage(w http.ResponseWriter, csp string, code int, page []byte) {
	h := w.Header()
	h.Add("Vary", "Accept-Language")
	h.Add("Vary", "Cookie")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(code)
	w.Write(page)
}

// fail answers an error status: JSON {"error": "not found"} to a JSON
// client, the error page in the visitor's language to a browser.
func (p *pageSet) fail(w http.ResponseWriter, r *http.Request, code int) {
	noStore(w)
	if wantsJSON(r) {
		writeJSON(w, code, errorJSON{Error: strings.ToLower(http.StatusText(code))})
		return
	}
	loc := p.localizer(r)
	p.errorPage(w, r, loc, &ErrorPage{Status: code, Title: errorText(loc.catalog, code, "title"), Message: errorText(loc.catalog, code, "message")})
}

// errorText is the title or message of an error status in c's language;
// a status without its own text gets the HTTP status text and no message.
func errorText(c *catalog, code int, part string) string {
	key := "error." + strconv.Itoa(code) + "." + part
	if _, ok := catalogEN.msgs[key]; ok {
		return c.T(key)
	}
	if part == "title" {
		return http.StatusText(code)
	}
	return ""
}

// errorPage renders page with its status. A broken override of the error
// template is logged and answered in plain text: an error page must not
// fail into another error page.
func (p *pageSet) errorPage(w http.ResponseWriter, r *http.Request, loc localizer, page *ErrorPage) {
	var buf bytes.Buffer
	if err := p.lt.get(loc.catalog).ExecuteTemplate(&buf, errorTemplate, page); err != nil {
		p.m.log.ErrorContext(r.Context(), "httpx: rendering "+errorTemplate, "err", err)
		http.Error(w, http.StatusText(page.Status), page.Status)
		return
	}
	writePage(w, p.csp[errorTemplate], page.Status, buf.Bytes())
}

// serverError logs err and answers 500 without details.
func (p *pageSet) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.m.log.ErrorContext(r.Context(), "httpx: "+what, "err", err)
	p.fail(w, r, http.StatusInternalServerError)
}

// allow answers 405 unless r's method is one of methods.
func (p *pageSet) allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	p.fail(w, r, http.StatusMethodNotAllowed)
	return false
}

// signIn answers a visitor who is not signed in: a JSON client gets 401,
// a browser whose session cookie is no longer valid the "Your session has
// ended" page (ended.html), any other browser a redirect to loginURL with
// next= this page.
func (p *pageSet) signIn(w http.ResponseWriter, r *http.Request, loginURL string) {
	noStore(w)
	if wantsJSON(r) {
		writeJSON(w, http.StatusUnauthorized, errorJSON{Error: "not signed in"})
		return
	}
	login := loginURLFor(loginURL, requestPath(r), false)
	if SessionEnded(r) {
		// Say what happened instead of a silent bounce to the login page.
		p.page(w, r, p.localizer(r), endedTemplate, &EndedPage{LoginURL: login})
		return
	}
	seeOther(w, login)
}
