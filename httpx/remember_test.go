package httpx

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// rememberEnv has a sign-in route with a "remember" box, as a login form
// has, and a route that rotates the token by signing in again.
func rememberEnv(t *testing.T) (*env, http.Handler) {
	e := newEnv(t, &usersessions.Options{Lifetime: 48 * time.Hour}, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := Login(w, r, r.FormValue("user")); err != nil {
			t.Error(err)
		}
		if v := r.FormValue("remember"); v != "" {
			if err := RememberMe(w, r, v == "on"); err != nil {
				t.Error(err)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /remember", func(w http.ResponseWriter, r *http.Request) {
		if err := RememberMe(w, r, r.FormValue("remember") == "on"); err != nil {
			t.Error(err)
		}
	})
	mux.HandleFunc("POST /late", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		if err := RememberMe(w, r, false); err != ErrHeadersWritten {
			t.Errorf("RememberMe after the headers: %v", err)
		}
	})
	return e, e.m.Handler(mux)
}

// setCookieLine returns the raw Set-Cookie line of the session cookie.
func setCookieLine(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, l := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(l, "session=") {
			return l
		}
	}
	t.Fatalf("no session Set-Cookie: %v", resp.Header.Values("Set-Cookie"))
	return ""
}

func persistent(line string) bool {
	return strings.Contains(line, "Max-Age=") || strings.Contains(line, "Expires=")
}

func TestRememberMe(t *testing.T) {
	e, h := rememberEnv(t)
	post := func(target, token string, form url.Values) *http.Response {
		return serve(t, h, "session", call{method: "POST", target: target, token: token, form: form})
	}

	// Default: persistent, Max-Age = lifetime.
	resp := post("/login", "", url.Values{"user": {"alice"}})
	if l := setCookieLine(t, resp); !strings.Contains(l, "Max-Age=172800") {
		t.Fatalf("default cookie not persistent: %s", l)
	}

	// Unticked: a browser-session cookie.
	resp = post("/login", "", url.Values{"user": {"bob"}, "remember": {"off"}})
	l := setCookieLine(t, resp)
	if persistent(l) {
		t.Fatalf("RememberMe(false) cookie is persistent: %s", l)
	}
	tok := sessionCookie(t, resp, "session").Value
	s, err := e.store.Load(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ExpiresAt.Sub(s.CreatedAt); got != 48*time.Hour {
		t.Fatalf("server-side lifetime changed: %v", got)
	}

	// The choice survives a re-issue of the cookie (Login again rotates).
	resp = post("/login", tok, url.Values{"user": {"bob"}})
	l = setCookieLine(t, resp)
	if persistent(l) {
		t.Fatalf("rotated cookie lost RememberMe(false): %s", l)
	}
	tok2 := sessionCookie(t, resp, "session").Value
	if tok2 == tok {
		t.Fatal("token did not rotate")
	}

	// Changing one's mind re-issues the cookie at once.
	resp = post("/remember", tok2, url.Values{"remember": {"on"}})
	if l := setCookieLine(t, resp); !strings.Contains(l, "Max-Age=172800") {
		t.Fatalf("RememberMe(true) cookie: %s", l)
	}
	resp = post("/login", tok2, url.Values{"user": {"bob"}})
	if l := setCookieLine(t, resp); !strings.Contains(l, "Max-Age=172800") {
		t.Fatalf("after RememberMe(true), rotated cookie: %s", l)
	}

	// Another user signing in on this browser starts with the default.
	resp = post("/login", "", url.Values{"user": {"carol"}, "remember": {"off"}})
	tok3 := sessionCookie(t, resp, "session").Value
	resp = post("/login", tok3, url.Values{"user": {"dave"}})
	if l := setCookieLine(t, resp); !strings.Contains(l, "Max-Age=172800") {
		t.Fatalf("new user inherited RememberMe(false): %s", l)
	}

	post("/late", tok2, nil)
}
