// Package httpx connects a usersessions.Store to net/http: middleware that
// gives every request its session, Login and Logout, and ready-made views
// that let a person see and end their sessions, plus an admin view. It uses
// only the standard library (net/http, html/template, embed and
// http.CrossOriginProtection).
//
// # Setup
//
//	m := httpx.New(store, &httpx.Options{TrustedProxies: proxies})
//	mux.Handle("/account/sessions/", m.SessionsHandler(&httpx.ViewOptions{LoginURL: "/login"}))
//	mux.Handle("/admin/sessions/", m.AdminHandler(&httpx.AdminOptions{Allow: isAdmin}))
//	http.ListenAndServe(addr, m.Handler(mux))
//
// Handlers read the session with FromContext(r.Context()) (typed:
// usersessions.Value[T]), sign a user in with Login(w, r, userID) (a new
// token every time: no session fixation), choose a browser-session cookie
// with RememberMe(w, r, false), return to the page that asked with
// NextURL(r, fallback), and sign out with Logout(w, r). Save(r) saves at
// once and reports errors the handler can act on.
//
// FromContext returns nil, and Login, Logout, RememberMe and Save return
// ErrNoMiddleware, for a request that did not pass through Manager.Handler;
// the first time, an error is logged through slog.Default.
//
// # Templates
//
// Every page is an html/template that ViewOptions.Templates and
// AdminOptions.Templates can replace: their *.html files are parsed over
// the embedded ones, and a file defining a template of the same name
// wins. The pages and their data:
//
//	sessions.html  *SessionsPage     the user's sessions
//	confirm.html   *ConfirmPage      "End …?", before every destructive POST
//	ended.html     *EndedPage        a browser whose session has ended
//	error.html     *ErrorPage        403, 404, 405, … in the visitor's language
//	admin.html     *AdminPage        the admin list
//	detail.html    *AdminDetailPage  one session, for the admin
//	signin.html    SessionInfo       a suspicious sign-in's mark, as block:
//	signinmark     SessionInfo       the mark on its card, "This wasn't me"
//
// The embedded pages share three blocks, defined in layout.html, which an
// override file may redefine alone (for example a nav.html holding
// {{define "nav"}}…{{end}}); each page keeps its own markup:
//
//	nav    empty by default: the app's own links (home, account, sign
//	       out) at the top of every page, the only way from the views
//	       back to the app. Its data is the page's data.
//	head   the <head> contents: charset, viewport, color scheme, referrer
//	       policy, <title> (the block's data is the title) and the
//	       stylesheet.
//	style  the CSS, without data; Stylesheet returns it for the app's
//	       own pages.
//
// An embedded page keeps its strict Content-Security-Policy when only
// blocks are overridden: nothing loads but inline CSS and data: images, so
// a logo in nav is a data: URI or an inline SVG. A page replaced by a
// file of its name (sessions.html, ...) gets only frame-ancestors 'none'.
// The functions of FuncMap are available, in the request's language.
//
// # Design choices
//
//   - The cookie holds only the store's token (64 URL-safe characters). It
//     is HttpOnly, SameSite=Lax, Path=/, Secure on TLS requests (or always,
//     with Options.Secure), and its Max-Age is the store's lifetime. A cookie
//     value that cannot be a token is cleared without a store lookup.
//   - Anonymous visitors get a session record only once something is stored
//     in it; until then FromContext returns an in-memory session with ID "".
//     A plain page view writes nothing, and a request that changes nothing
//     writes nothing either: activity goes through Store.Touch, which is
//     batched in memory.
//   - The session is saved, and the cookie set, at most once per request,
//     just before the response headers go out. A failed save turns the
//     response into Options.OnSaveError's answer (default a 500); store
//     errors are logged, never shown.
//   - A response that sets or clears the cookie is never storable by a
//     shared cache: Cache-Control gets "private" (public and s-maxage are
//     removed) and CDN-targeted cache fields are dropped.
//   - Every request with an unsafe method passes http.CrossOriginProtection
//     in the middleware, so the app's own POST routes (sign-in, sign-out)
//     refuse cross-site requests too; Options.CrossOriginExempt exempts
//     webhooks.
//   - Options.AnonymousValues decides whether values of visitors who are
//     not signed in get a database record (the default) or last for the
//     request only.
//   - Options.DBSC turns on device-bound sessions (Device Bound Session
//     Credentials): Chrome binds a session to a key it keeps, and the
//     session cookie alone no longer signs anyone in (see DBSCOptions).
//   - The client's address comes from the connection unless the peer is a
//     trusted proxy (see ClientIP).
//   - The views find their mount point from the request (ServeMux,
//     StripPrefix, chi, gorilla/mux), ask on a GET page before every
//     destructive POST, and keep their notices in the session.
//   - The views are HTML by default and JSON when the client asks for it.
//     Their state-changing routes are POST only and pass
//     http.CrossOriginProtection; all their links and redirects are
//     relative or configured, so they cannot be made to redirect elsewhere.
//     Pages are sent with Cache-Control: no-store and may not be framed.
//   - The admin view fails closed: without an Allow function it refuses
//     everyone, with 403.
//   - The pages are translated (en, de, es, fr, nl, pt-BR, zh-CN, ja; see
//     Languages) and chosen per request: ViewOptions.Language, ?lang=, the
//     lang cookie, then Accept-Language. JSON stays English. The texts live
//     in Go catalogs, one file per language, and a test fails when one
//     lacks a key.
//   - The pages aim at WCAG 2.2 AA: controls are named by what they act on
//     (a session's user, device and place, never its ID), control borders
//     reach 3:1 in light and dark, nothing scrolls sideways at 320 CSS
//     pixels, and everything works without JavaScript.
package httpx
