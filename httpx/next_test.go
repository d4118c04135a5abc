package httpx

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
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

// TestLongURLsKeepTheLoginPath (issue 18 item 8): a page whose URL is too
// long to be carried in next= still sends the browser to the login page,
// with next= its path (the query dropped) and reauth=1 as a real query
// parameter, never "/login&reauth=1".
func TestLongURLsKeepTheLoginPath(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	e.clock.Advance(11 * time.Minute)
	long := "?q=" + strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name, method, target, token string
		next, reauth                string
	}{
		{"RequireRecentAuth", "GET", "/sensitive" + long, tok, "/sensitive", "1"},
		{"views, stale proof", "GET", "/strict/sessions/end-others" + long, tok, "/strict/sessions/end-others", "1"},
		{"views, not signed in", "GET", "/account/sessions/" + long, "", "/account/sessions/", ""},
		{"a backslash in the query", "GET", `/sensitive?q=a\b`, tok, `/sensitive?q=a%5Cb`, "1"},
	} {
		resp := e.do(call{method: tc.method, target: tc.target, token: tc.token})
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil {
			t.Fatalf("%s: %d Location %q (%v)", tc.name, resp.StatusCode, resp.Header.Get("Location"), err)
		}
		q := loc.Query()
		if loc.Path != "/login" || q.Get("next") != tc.next || q.Get("reauth") != tc.reauth {
			t.Errorf("%s: Location %q: path %q, next %q, reauth %q; want /login, %q, %q",
				tc.name, resp.Header.Get("Location"), loc.Path, q.Get("next"), q.Get("reauth"), tc.next, tc.reauth)
		}
	}
	// A POST goes back to the page it came from: a long one by its path.
	h := e.m.RequireRecentAuth(time.Minute, "")(http.NotFoundHandler())
	resp := serve(t, e.m.Handler(h), "session", call{method: "POST", target: "/act", token: tok,
		header: http.Header{"Referer": {"http://example.com/form" + long}, "Sec-Fetch-Site": {"same-origin"}}})
	if got := resp.Header.Get("Location"); got != "/login?next=%2Fform&reauth=1" {
		t.Errorf("POST from a long page: Location %q", got)
	}
}

// TestLoginURLsKeepTheirOwnQuery: a configured login URL with a query, a
// bare flag or a fragment keeps them, and next= and reauth=1 are added as
// query parameters before the fragment.
func TestLoginURLsKeepTheirOwnQuery(t *testing.T) {
	for _, tc := range []struct {
		login, page string
		reauth      bool
		want        string
	}{
		{"/login", "/a?b=c", false, "/login?next=%2Fa%3Fb%3Dc"},
		{"/login", "/a", true, "/login?next=%2Fa&reauth=1"},
		{"/login?lang=nl", "/a", true, "/login?lang=nl&next=%2Fa&reauth=1"},
		{"/login?sso", "/a", false, "/login?sso&next=%2Fa"},
		{"/login#form", "/a", true, "/login?next=%2Fa&reauth=1#form"},
		{"/login?next=%2Fold", "/a", false, "/login?next=%2Fa"},
		{"https://id.example/login?x=1", "/a", false, "https://id.example/login?x=1&next=%2Fa"},
		{"/login", "//evil.example", true, "/login?reauth=1"},
		{"/login", "/" + strings.Repeat("a", 3000), false, "/login"},
	} {
		if got := loginURLFor(tc.login, tc.page, tc.reauth); got != tc.want {
			t.Errorf("loginURLFor(%q, %.20q, %v) = %q, want %q", tc.login, tc.page, tc.reauth, got, tc.want)
		}
	}
}
