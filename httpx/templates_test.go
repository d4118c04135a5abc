package httpx

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestEveryTemplateIsDocumented (issue 18 item 13): every template an app
// can override, pages and blocks ("nav" is the only way back from the
// views to the app), is named in the package documentation and in the
// README.
func TestEveryTemplateIsDocumented(t *testing.T) {
	var names []string
	for _, tpl := range parseTemplates(nil, FuncMap(nil, time.Now)).Templates() {
		if n := tpl.Name(); n != "" && n != "layout.html" { // layout.html only holds the blocks
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if !slices.Contains(names, "nav") || !slices.Contains(names, "error.html") {
		t.Fatalf("templates %v: the list is not what the test expects", names)
	}
	for _, doc := range []string{"doc.go", "../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !strings.Contains(string(b), "`"+n+"`") && !strings.Contains(string(b), "\t"+n+" ") {
				t.Errorf("%s does not document the template %q", doc, n)
			}
		}
	}
}

// TestNavBlockOnEveryPage: a nav.html override puts the app's links on
// every page of both views, the error pages included, and the pages keep
// their strict CSP.
func TestNavBlockOnEveryPage(t *testing.T) {
	a := newAdminEnv(t)
	nav := fstest.MapFS{"nav.html": {Data: []byte(`{{define "nav"}}<nav><a href="/">Back to the app</a></nav>{{end}}`)}}
	allow := func(r *http.Request) bool { return FromContext(r.Context()).UserID == "admin" }
	views := a.m.Handler(a.m.SessionsHandler(&ViewOptions{Templates: nav, Now: a.clock.Now}))
	admin := a.m.Handler(a.m.AdminHandler(&AdminOptions{Templates: nav, Allow: allow, Now: a.clock.Now}))
	bob := a.sessionID(a.bob)
	for _, tc := range []struct {
		name  string
		h     http.Handler
		path  string
		token string
		code  int
	}{
		{"sessions", views, "/", a.alice1, 200},
		{"confirmation", views, "/end-others", a.alice1, 200},
		{"error", views, "/nothing", a.alice1, 404},
		{"admin list", admin, "/", a.admin, 200},
		{"admin detail", admin, "/" + bob + "/", a.admin, 200},
		{"admin confirmation", admin, "/" + bob + "/end", a.admin, 200},
		{"admin 403", admin, "/", a.alice1, 403},
	} {
		resp := serve(t, tc.h, "session", call{method: "GET", target: tc.path, token: tc.token})
		body := readBody(t, resp)
		if resp.StatusCode != tc.code || !strings.Contains(body, `<nav><a href="/">Back to the app</a></nav>`) {
			t.Errorf("%s: %d, nav shown: %v", tc.name, resp.StatusCode, strings.Contains(body, "<nav>"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", tc.name, csp)
		}
	}
}
