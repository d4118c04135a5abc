package httpx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"
)

// TestViewsUnderRouters mounts the views, with no Prefix option, the way
// each common router does it, and drives every route (issue 14: under chi's
// Mount every view answered 404).
func TestViewsUnderRouters(t *testing.T) {
	routers := []struct {
		name   string
		build  func(views, admin http.Handler) http.Handler
		bare   bool // the router sends "/account/sessions" (no slash) to the views
		strict bool // the router says where the views are mounted
	}{
		{"ServeMux", func(v, a http.Handler) http.Handler {
			m := http.NewServeMux()
			m.Handle("/account/sessions/", v)
			m.Handle("/admin/sessions/", a)
			return m
		}, false, true}, // ServeMux itself redirects "/account/sessions"
		{"ServeMux wildcard", func(v, a http.Handler) http.Handler {
			m := http.NewServeMux()
			m.Handle("/account/sessions/{rest...}", v)
			m.Handle("/admin/sessions/{rest...}", a)
			return m
		}, false, true},
		{"StripPrefix", func(v, a http.Handler) http.Handler {
			m := http.NewServeMux()
			m.Handle("/account/sessions/", http.StripPrefix("/account/sessions", v))
			m.Handle("/admin/sessions/", http.StripPrefix("/admin/sessions/", a))
			return m
		}, false, false},
		{"chi Mount", func(v, a http.Handler) http.Handler {
			r := chi.NewRouter()
			r.Mount("/account/sessions", v)
			r.Route("/admin", func(r chi.Router) { r.Mount("/sessions", a) })
			return r
		}, true, true},
		{"chi Mount with a parameter", func(v, a http.Handler) http.Handler {
			r := chi.NewRouter()
			r.Route("/{tenant}", func(r chi.Router) {
				r.Mount("/sessions", v)
				r.Mount("/admin-sessions", a)
			})
			return http.StripPrefix("", rewrite(r, map[string]string{"/account/sessions": "/acme/sessions", "/admin/sessions": "/acme/admin-sessions"}))
		}, true, false},
		{"chi Handle wildcard", func(v, a http.Handler) http.Handler {
			r := chi.NewRouter()
			r.Handle("/account/sessions/*", v)
			r.Handle("/admin/sessions/*", a)
			return r
		}, false, true},
		{"gorilla PathPrefix", func(v, a http.Handler) http.Handler {
			r := mux.NewRouter()
			r.PathPrefix("/account/sessions/").Handler(v)
			r.PathPrefix("/admin/sessions/").Handler(a)
			return r
		}, false, false},
		{"gorilla behind ServeMux /", func(v, a http.Handler) http.Handler {
			r := mux.NewRouter()
			r.PathPrefix("/account/sessions/").Handler(v)
			r.PathPrefix("/admin/sessions/").Handler(a)
			m := http.NewServeMux()
			m.Handle("/", r)
			return m
		}, false, false},
		{"gorilla behind chi /*", func(v, a http.Handler) http.Handler {
			r := mux.NewRouter()
			r.PathPrefix("/account/sessions/").Handler(v)
			r.PathPrefix("/admin/sessions/").Handler(a)
			c := chi.NewRouter()
			c.Handle("/*", r)
			return c
		}, false, false},
	}
	for _, rt := range routers {
		t.Run(rt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newEnv(t, nil, &Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			views := e.m.SessionsHandler(nil)
			admin := e.m.AdminHandler(&AdminOptions{Allow: func(r *http.Request) bool { return FromContext(r.Context()).UserID == "admin" }})
			h := e.m.Handler(rt.build(views, admin))
			me := e.login("alice", uaChromeWin)
			other := e.login("alice", uaFirefoxMac)
			third := e.login("alice", uaSafariIOS)

			resp := serve(t, h, "session", call{method: "GET", target: "/account/sessions/?format=json", token: me})
			var list sessionsJSON
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&list) != nil || len(list.Sessions) != 3 {
				t.Fatalf("list: status %d, %d sessions", resp.StatusCode, len(list.Sessions))
			}
			resp = serve(t, h, "session", call{method: "GET", target: "/account/sessions/", token: me})
			if resp.StatusCode != 200 || !bytes.Contains([]byte(readBody(t, resp)), []byte("This session")) {
				t.Fatalf("HTML list: status %d", resp.StatusCode)
			}
			resp = serve(t, h, "session", call{method: "POST", target: "/account/sessions/" + e.sessionID(other) + "/end", token: me, header: sameOrigin()})
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "../") {
				t.Fatalf("end one: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if _, err := e.store.Load(t.Context(), other); err == nil {
				t.Fatal("ended session still loads")
			}
			resp = serve(t, h, "session", call{method: "POST", target: "/account/sessions/end-others", token: me, header: sameOrigin()})
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "./") {
				t.Fatalf("end others: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if _, err := e.store.Load(t.Context(), third); err == nil {
				t.Fatal("other session still loads")
			}
			resp = serve(t, h, "session", call{method: "GET", target: "/account/sessions/nonsense", token: me})
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown route: %d", resp.StatusCode)
			}
			if rt.strict {
				// A route with something after it, or the list below a
				// route: not the views' paths.
				for _, target := range []string{"/account/sessions/" + e.sessionID(me) + "/end/", "/account/sessions/end-others/"} {
					if resp := serve(t, h, "session", call{method: "GET", target: target, token: me}); resp.StatusCode != http.StatusNotFound {
						t.Fatalf("GET %s: %d, want 404", target, resp.StatusCode)
					}
				}
			}
			if rt.bare {
				resp = serve(t, h, "session", call{method: "GET", target: "/account/sessions", token: me})
				if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "./sessions/" {
					t.Fatalf("bare mount: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
				}
			}

			// The admin view: list, end one, bulk end.
			adm := e.login("admin", uaChromeWin)
			victim := e.login("bob", uaChromeWin)
			resp = serve(t, h, "session", call{method: "GET", target: "/admin/sessions/?format=json", token: adm})
			if resp.StatusCode != 200 {
				t.Fatalf("admin list: %d", resp.StatusCode)
			}
			resp = serve(t, h, "session", call{method: "POST", target: "/admin/sessions/" + e.sessionID(victim) + "/end", token: adm, header: sameOrigin()})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("admin end: %d", resp.StatusCode)
			}
			victim = e.login("bob", uaChromeWin)
			resp = serve(t, h, "session", call{method: "POST", target: "/admin/sessions/end", token: adm, header: sameOrigin(),
				form: map[string][]string{"id": {e.sessionID(victim)}}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("admin bulk end: %d", resp.StatusCode)
			}
			if _, err := e.store.Load(t.Context(), victim); err == nil {
				t.Fatal("bulk-ended session still loads")
			}
			if logs.Len() != 0 {
				t.Fatalf("logged: %s", logs.String())
			}
		})
	}
}

// rewrite maps path prefixes before h sees the request, to mount the same
// test paths under a router with a path parameter.
func rewrite(h http.Handler, prefixes map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for from, to := range prefixes {
			if len(r.URL.Path) >= len(from) && r.URL.Path[:len(from)] == from {
				r2 := r.Clone(r.Context())
				r2.URL.Path = to + r.URL.Path[len(from):]
				r2.RequestURI = r2.URL.RequestURI()
				h.ServeHTTP(w, r2)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
