package httpx

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/clocktest"
	"github.com/usersessions/usersessions/storetest"
)

// Test user agents.
const (
	uaChromeWin  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaFirefoxMac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaSafariIOS  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

// quietLogger discards logs (the tests provoke errors on purpose).
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens a store in a temporary directory.
func openStore(tb testing.TB, opts *usersessions.Options) *usersessions.Store {
	tb.Helper()
	s, err := usersessions.Open(filepath.Join(tb.TempDir(), "sessions.db"), storetest.TestOptions(opts))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// env is a test application: login/logout/values handlers, the views at
// /account/sessions/ and the admin view at /admin/sessions/ (for user
// "admin"), all behind the middleware.
type env struct {
	t     *testing.T
	clock *clocktest.Clock
	store *usersessions.Store
	m     *Manager
	h     http.Handler
}

func newEnv(t *testing.T, storeOpts *usersessions.Options, opts *Options) *env {
	t.Helper()
	c := clocktest.At(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	var so usersessions.Options
	if storeOpts != nil {
		so = *storeOpts
	}
	if so.Now == nil {
		so.Now = c.Now
	}
	store := openStore(t, &so)
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.Now == nil {
		o.Now = c.Now
	}
	m := New(store, &o)
	return &env{t: t, clock: c, store: store, m: m, h: m.Handler(testMux(m, c.Now))}
}

// testMux is the application of the tests (and of the browser test).
func testMux(m *Manager, now func() time.Time) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in</title></head>
<body><h1>Sign in</h1><form method="post" action="/login"><label>User <input id="user" name="user" autocomplete="username"></label> <button id="signin" type="submit">Sign in</button></form></body></html>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.FormValue("user")
		if err := Login(w, r, user); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, "/account/sessions/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Logout(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /password", func(w http.ResponseWriter, r *http.Request) {
		n, err := CredentialsChanged(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "ended %d", n)
	})
	mux.Handle("GET /sensitive", m.RequireRecentAuth(10*time.Minute, "")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "sensitive")
	})))
	mux.HandleFunc("POST /reauth", func(w http.ResponseWriter, r *http.Request) {
		if err := MarkAuthenticated(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.Handle("/strict/sessions/", m.SessionsHandler(&ViewOptions{Now: now, RecentAuth: 10 * time.Minute}))
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		io.WriteString(w, "user="+s.UserID+" id="+s.ID)
	})
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set(r.FormValue("k"), r.FormValue("v"))
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		v, _ := FromContext(r.Context()).Get(r.FormValue("k"))
		s, _ := v.(string)
		io.WriteString(w, s)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "home")
	})
	mux.Handle("/account/sessions/", m.SessionsHandler(&ViewOptions{Now: now, LogoutURL: "/bye"}))
	mux.Handle("/admin/sessions/", m.AdminHandler(&AdminOptions{
		Now:   now,
		Allow: func(r *http.Request) bool { return FromContext(r.Context()).UserID == "admin" },
	}))
	return mux
}

// call describes one request.
type call struct {
	method, target string
	token          string // session cookie value
	ua             string
	remote         string
	header         http.Header
	form           url.Values
}

// do serves one request through the environment's handler.
func (e *env) do(c call) *http.Response {
	e.t.Helper()
	return serve(e.t, e.h, e.m.CookieName(), c)
}

func serve(t testing.TB, h http.Handler, cookieName string, c call) *http.Response {
	t.Helper()
	var body io.Reader
	if c.form != nil {
		body = strings.NewReader(c.form.Encode())
	}
	r := httptest.NewRequest(c.method, c.target, body)
	if c.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.token != "" {
		r.AddCookie(&http.Cookie{Name: cookieName, Value: c.token})
	}
	if c.ua != "" {
		r.Header.Set("User-Agent", c.ua)
	}
	if c.remote != "" {
		r.RemoteAddr = c.remote
	}
	for k, vs := range c.header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Result()
}

// login signs in user with the user agent and returns the session token.
func (e *env) login(user, ua string) string {
	e.t.Helper()
	resp := e.do(call{method: "POST", target: "/login", ua: ua, form: url.Values{"user": {user}}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login %s: status %d", user, resp.StatusCode)
	}
	c := sessionCookie(e.t, resp, e.m.CookieName())
	if c == nil || c.Value == "" {
		e.t.Fatalf("login %s: no session cookie", user)
	}
	return c.Value
}

// sessionCookie returns the Set-Cookie for name in resp, or nil.
func sessionCookie(t testing.TB, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name {
			if found != nil {
				t.Fatalf("two Set-Cookie headers for %s: %v", name, resp.Header.Values("Set-Cookie"))
			}
			found = c
		}
	}
	return found
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sessionID returns the ID of the session of token.
func (e *env) sessionID(token string) string {
	e.t.Helper()
	s, err := e.store.Load(e.t.Context(), token)
	if err != nil {
		e.t.Fatalf("load: %v", err)
	}
	return s.ID
}

func sameOrigin() http.Header { return http.Header{"Sec-Fetch-Site": {"same-origin"}} }

func acceptJSON() http.Header { return http.Header{"Accept": {"application/json"}} }
