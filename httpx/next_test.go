package httpx

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestIsLocalPath(t *testing.T) {
	for _, s := range []string{"/", "/account/sessions/", "/a?b=c&d=%2F", "/a#frag", "/caf%C3%A9", "/a/b/../c"} {
		if !IsLocalPath(s) {
			t.Errorf("IsLocalPath(%q) = false", s)
		}
	}
	for _, s := range []string{
		"", "a", "account", "./x", "../x",
		"//evil.example", "//evil.example/x", "/%2F%2Fevil.example", "/%2f/evil.example", "///evil.example",
		`/\evil.example`, `/\/evil.example`, `\\evil.example`, `/a\b`,
		"https://evil.example", "http:/evil.example", "javascript:alert(1)", "JAVASCRIPT:alert(1)",
		"/\tevil", "/\t/evil.example", "/\n/evil.example", "/\r\nLocation: x", "/a b", "/\x00", "/\x7f",
		"/" + strings.Repeat("a", 2048),
	} {
		if IsLocalPath(s) {
			t.Errorf("IsLocalPath(%q) = true", s)
		}
	}
}

func TestNextURL(t *testing.T) {
	for _, tc := range []struct{ target, body, want string }{
		{"/login?next=%2Faccount%2Fsessions%2F", "", "/account/sessions/"},
		{"/login", "next=%2Fcart%3Fstep%3D2", "/cart?step=2"},
		{"/login?next=%2F%2Fevil.example", "", "/home"},
		{"/login?next=https%3A%2F%2Fevil.example", "", "/home"},
		{"/login?next=%2F%5Cevil.example", "", "/home"},
		{"/login", "", "/home"},
	} {
		var r *http.Request
		if tc.body != "" {
			r = httptest.NewRequest("POST", tc.target, strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest("POST", tc.target, nil)
		}
		if got := NextURL(r, "/home"); got != tc.want {
			t.Errorf("%s %s: NextURL = %q, want %q", tc.target, tc.body, got, tc.want)
		}
	}
}

// TestLoginRedirectCarriesNext: the views send a visitor who is not signed
// in to the login page with the way back (issue 14), and a login handler
// using NextURL returns there.
func TestLoginRedirectCarriesNext(t *testing.T) {
	e := newEnv(t, nil, nil)
	for _, tc := range []struct{ method, target, want string }{
		{"GET", "/account/sessions/", "/login?next=%2Faccount%2Fsessions%2F"},
		{"GET", "/account/sessions/?x=1", "/login?next=%2Faccount%2Fsessions%2F%3Fx%3D1"},
		{"POST", "/account/sessions/end-others", "/login?next=%2Faccount%2Fsessions%2Fend-others"},
	} {
		resp := e.do(call{method: tc.method, target: tc.target, header: sameOrigin()})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.want {
			t.Fatalf("%s %s: %d Location %q, want %q", tc.method, tc.target, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
	}
	// A LoginURL with its own query keeps it.
	h := e.m.SessionsHandler(&ViewOptions{LoginURL: "/signin?lang=nl"})
	resp := serve(t, h, "session", call{method: "GET", target: "/"})
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Path != "/signin" || loc.Query().Get("lang") != "nl" || loc.Query().Get("next") != "/" {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
	// Round trip: the login handler honours next.
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := Login(w, r, "alice"); err != nil {
			t.Error(err)
		}
		http.Redirect(w, r, NextURL(r, "/"), http.StatusSeeOther)
	})
	resp = serve(t, e.m.Handler(mux), "session", call{method: "POST", target: "/login?next=%2Faccount%2Fsessions%2F", form: url.Values{}})
	if resp.Header.Get("Location") != "/account/sessions/" {
		t.Fatalf("after login: Location %q", resp.Header.Get("Location"))
	}
	resp = serve(t, e.m.Handler(mux), "session", call{method: "POST", target: "/login", form: url.Values{"next": {"//evil.example/"}}})
	if resp.Header.Get("Location") != "/" {
		t.Fatalf("open redirect: Location %q", resp.Header.Get("Location"))
	}
}
