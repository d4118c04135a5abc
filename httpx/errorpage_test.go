package httpx

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// TestAdminRefusesWithAPage (issue 18 item 14): a signed-in visitor who is
// not an admin gets a 403 page in their language, naming the account they
// are signed in with; a JSON client gets a JSON 403.
func TestAdminRefusesWithAPage(t *testing.T) {
	a := newAdminEnv(t)
	for _, lang := range Languages() {
		c := catalogFor(lang)
		for _, method := range []string{"GET", "POST"} {
			resp := a.do(call{method: method, target: "/admin/sessions/?lang=" + lang, token: a.alice1, header: sameOrigin(), form: url.Values{}})
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%s %s: %d %q:\n%s", lang, method, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			for _, want := range []string{
				`<html lang="` + lang + `">`,
				"<h1>" + c.T("error.403.title") + "</h1>",
				fill(c.T("error.403.signedIn"), []string{"user", "<strong>alice</strong>"}, nil),
			} {
				if !strings.Contains(body, want) {
					t.Errorf("%s %s: the 403 page lacks %q:\n%s", lang, method, want, body)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("%s: CSP %q", lang, csp)
			}
		}
	}
	resp := a.do(call{method: "GET", target: "/admin/sessions/", token: a.alice1, header: acceptJSON()})
	var out errorJSON
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusForbidden || out.Error != "forbidden" {
		t.Fatalf("JSON: %d %+v (%v)", resp.StatusCode, out, err)
	}
}

// TestAdminSendsAnonymousToSignIn: with AdminOptions.LoginURL, a visitor
// who is not signed in goes to the sign-in page with the way back, as the
// user views do (JSON: 401); a non-admin's 403 page links to it. Without
// it, anonymous visitors get the 403 page too.
func TestAdminSendsAnonymousToSignIn(t *testing.T) {
	a := newAdminEnv(t)
	allow := func(r *http.Request) bool { return FromContext(r.Context()).UserID == "admin" }
	withLogin := a.m.Handler(a.m.AdminHandler(&AdminOptions{Allow: allow, LoginURL: "/login?from=admin"}))
	without := a.m.Handler(a.m.AdminHandler(&AdminOptions{Allow: allow}))

	resp := serve(t, withLogin, "session", call{method: "GET", target: "/admin/?q=203.0.113.0%2F24"})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?from=admin&next=%2Fadmin%2F%3Fq%3D203.0.113.0%252F24" {
		t.Errorf("anonymous, with LoginURL: %d to %q", resp.StatusCode, loc)
	}
	if resp := serve(t, withLogin, "session", call{method: "GET", target: "/admin/", header: acceptJSON()}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous JSON, with LoginURL: %d", resp.StatusCode)
	}
	resp = serve(t, withLogin, "session", call{method: "GET", target: "/admin/", token: a.alice1})
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `href="/login?from=admin&amp;next=%2Fadmin%2F"`) || !strings.Contains(body, catalogEN.T("error.signInOther")) {
		t.Errorf("non-admin, with LoginURL: %d:\n%s", resp.StatusCode, body)
	}
	resp = serve(t, without, "session", call{method: "GET", target: "/admin/?lang=fr"})
	if body := readBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, catalogFR.T("error.403.anonymous")) || strings.Contains(body, "/login") {
		t.Errorf("anonymous, without LoginURL: %d:\n%s", resp.StatusCode, body)
	}
	// The admin still gets in.
	if resp := serve(t, withLogin, "session", call{method: "GET", target: "/admin/", token: a.admin}); resp.StatusCode != http.StatusOK {
		t.Errorf("admin: %d", resp.StatusCode)
	}
}

// TestErrorsArePages: the views' errors (unknown page, wrong method, bad
// cursor, too large a selection) are pages in the visitor's language, with
// the right status, for browsers, and JSON for JSON clients.
func TestErrorsArePages(t *testing.T) {
	a := newAdminEnv(t)
	many := url.Values{}
	for range maxBulkEnd + 1 {
		many.Add("id", "AAAAAAAAAAAAAAAAAAAAAA")
	}
	for _, tc := range []struct {
		name, method, target, token string
		form                        url.Values
		code                        int
	}{
		{"unknown page", "GET", "/account/sessions/nothing?lang=de", a.alice1, nil, 404},
		{"wrong method", "DELETE", "/account/sessions/?lang=ja", a.alice1, nil, 405},
		{"unknown admin page", "GET", "/admin/sessions/nothing?lang=es", a.admin, nil, 404},
		{"unknown session", "GET", "/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA/?lang=nl", a.admin, nil, 404},
		{"unreadable form", "POST", "/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA/end?lang=pt-BR", a.admin, url.Values{"x": {strings.Repeat("a", maxAdminForm)}}, 400},
		{"too many", "POST", "/admin/sessions/end?lang=zh-CN", a.admin, many, 413},
	} {
		resp := a.do(call{method: tc.method, target: tc.target, token: tc.token, form: tc.form, header: sameOrigin()})
		body := readBody(t, resp)
		u, _ := url.Parse(tc.target)
		c := catalogFor(u.Query().Get("lang"))
		title := c.T("error." + strconv.Itoa(tc.code) + ".title")
		if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(body, `<html lang="`+c.tag+`">`) || !strings.Contains(body, "<h1>"+title+"</h1>") {
			t.Errorf("%s: %d %q, want %d, a page titled %q:\n%s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), tc.code, title, body)
		}
		resp = a.do(call{method: tc.method, target: tc.target, token: tc.token, form: tc.form, header: http.Header{"Accept": {"application/json"}, "Sec-Fetch-Site": {"same-origin"}}})
		var out errorJSON
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != tc.code || out.Error != strings.ToLower(http.StatusText(tc.code)) {
			t.Errorf("%s, JSON: %d %+v (%v)", tc.name, resp.StatusCode, out, err)
		}
	}
}

// TestBrokenErrorTemplate: an override of error.html that fails to render
// still answers the error's status, in plain text, instead of failing into
// another error page.
func TestBrokenErrorTemplate(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	h := e.m.SessionsHandler(&ViewOptions{Templates: fstest.MapFS{"error.html": {Data: []byte(`{{.NoSuchField}}`)}}})
	resp := serve(t, h, "session", call{method: "GET", target: "/nothing", token: tok})
	if body := readBody(t, resp); resp.StatusCode != http.StatusNotFound || body != "Not Found\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}
