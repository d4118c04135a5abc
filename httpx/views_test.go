package httpx

import (
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/usersessions/usersessions"
)

// threeSessions signs alice in on three devices, a minute apart, plus one
// session of bob. It returns the tokens, newest (the Chrome one) last.
func threeSessions(e *env) (firefox, safari, chrome, bob string) {
	firefox = e.login("alice", uaFirefoxMac)
	e.clock.Advance(3 * time.Hour)
	safari = e.login("alice", uaSafariIOS)
	e.clock.Advance(5 * time.Minute)
	bob = e.login("bob", uaChromeWin)
	chrome = e.login("alice", uaChromeWin)
	return
}

func TestSessionsListHTML(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, _, chrome, _ := threeSessions(e)
	e.clock.Advance(time.Minute)
	resp := e.do(call{method: "GET", target: "/account/sessions/", token: chrome, ua: uaChromeWin, remote: "198.51.100.4:1234"})
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Type":    "text/html; charset=utf-8",
		"Cache-Control":   "no-store",
		"X-Frame-Options": "DENY",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, want := range []string{
		`<meta name="viewport"`,
		"Chrome on Windows", "Firefox on macOS", "Safari on iPhone",
		"This session", "End all other sessions", "just now", "3 hours ago",
		string(breakable("198.51.100.4")), `href="end-others"`, `href="end-all"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, chrome) || strings.Contains(body, firefox) {
		t.Fatal("page shows a token")
	}
	if strings.Count(body, `data-session=`) != 3 {
		t.Fatalf("want 3 sessions, page:\n%s", body)
	}
	// Newest first: Chrome (current), Safari, Firefox.
	iC, iS, iF := strings.Index(body, "Chrome on Windows"), strings.Index(body, "Safari on iPhone"), strings.Index(body, "Firefox on macOS")
	if !(iC < iS && iS < iF) {
		t.Fatalf("order: chrome %d safari %d firefox %d", iC, iS, iF)
	}
	// HEAD works too.
	if resp := e.do(call{method: "HEAD", target: "/account/sessions/", token: chrome}); resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
}

func TestSessionsListJSON(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, safari, chrome, bob := threeSessions(e)
	for _, c := range []call{
		{method: "GET", target: "/account/sessions/", token: chrome, header: acceptJSON()},
		{method: "GET", target: "/account/sessions/", token: chrome, header: http.Header{"Accept": {"text/html;q=0.5, application/json"}}},
		{method: "GET", target: "/account/sessions/?format=json", token: chrome},
	} {
		resp := e.do(c)
		body := readBody(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Fatalf("status %d type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, tok := range []string{firefox, safari, chrome, bob} {
			if strings.Contains(body, tok) {
				t.Fatal("JSON shows a token")
			}
		}
		var raw map[string][]map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil {
			t.Fatal(err)
		}
		list := raw["sessions"]
		if len(raw) != 1 || len(list) != 3 {
			t.Fatalf("JSON: %s", body)
		}
		want := []string{"created_at", "current", "device", "device_bound", "expires_at", "id", "ip", "last_seen", "location", "user_agent"}
		for _, obj := range list {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, want) {
				t.Fatalf("keys %v, want %v", keys, want)
			}
			for _, k := range []string{"created_at", "last_seen", "expires_at"} {
				if _, err := time.Parse(time.RFC3339, obj[k].(string)); err != nil {
					t.Fatalf("%s: %v", k, err)
				}
			}
		}
		if list[0]["current"] != true || list[1]["current"] != false || list[0]["device"] != "Chrome on Windows" || list[0]["id"] != e.sessionID(chrome) {
			t.Fatalf("first: %v", list[0])
		}
		if list[2]["user_agent"] != uaFirefoxMac {
			t.Fatalf("last: %v", list[2])
		}
	}
	// A browser's Accept header gets HTML.
	resp := e.do(call{method: "GET", target: "/account/sessions/", token: chrome,
		header: http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}})
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("browser got %q", resp.Header.Get("Content-Type"))
	}
}

func TestSessionsNotSignedIn(t *testing.T) {
	e := newEnv(t, nil, nil)
	anon := sessionCookie(t, e.do(call{method: "POST", target: "/set", form: url.Values{"k": {"a"}, "v": {"b"}}}), "session").Value
	for _, tc := range []struct {
		name   string
		c      call
		status int
	}{
		{"html no cookie", call{method: "GET", target: "/account/sessions/"}, http.StatusSeeOther},
		{"html anonymous session", call{method: "GET", target: "/account/sessions/", token: anon}, http.StatusSeeOther},
		{"html bad cookie", call{method: "GET", target: "/account/sessions/", token: "junk"}, http.StatusSeeOther},
		{"html post", call{method: "POST", target: "/account/sessions/end-others", header: sameOrigin()}, http.StatusSeeOther},
		{"json", call{method: "GET", target: "/account/sessions/", header: acceptJSON()}, http.StatusUnauthorized},
		{"json post", call{method: "POST", target: "/account/sessions/AAAAAAAAAAAAAAAAAAAAAA/end", header: acceptJSON()}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(tc.c)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=%2Faccount%2Fsessions%2F") {
				t.Fatalf("Location %q", resp.Header.Get("Location"))
			}
			if tc.status == http.StatusUnauthorized {
				var body errorJSON
				if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" {
					t.Fatalf("401 body: %v %+v", err, body)
				}
			}
		})
	}
}

func TestEndOneSession(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, safari, chrome, bob := threeSessions(e)
	ffID, bobID := e.sessionID(firefox), e.sessionID(bob)

	// Another user's session: a neutral 303 (404 in JSON), and it
	// survives (TestEndingAGoneSession checks the notice).
	resp := e.do(call{method: "POST", target: "/account/sessions/" + bobID + "/end", token: chrome, header: sameOrigin()})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("other user's id: %d", resp.StatusCode)
	}
	if _, err := e.store.Get(t.Context(), bobID); err != nil {
		t.Fatalf("bob's session ended: %v", err)
	}
	// Unknown (JSON) and malformed ids: 404.
	for _, id := range []string{"AAAAAAAAAAAAAAAAAAAAAA", "nope", "%2e%2e"} {
		resp := e.do(call{method: "POST", target: "/account/sessions/" + id + "/end", token: chrome, header: acceptJSON()})
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("id %q: %d", id, resp.StatusCode)
		}
	}
	// HTML: 303 back to the list.
	resp = e.do(call{method: "POST", target: "/account/sessions/" + ffID + "/end", token: chrome, header: sameOrigin()})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "../" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := e.store.Load(t.Context(), firefox); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("ended session still loads: %v", err)
	}
	// The ended browser is logged out on its next request.
	if got := readBody(t, e.do(call{method: "GET", target: "/whoami", token: firefox})); got != "user= id=" {
		t.Fatalf("ended session: %q", got)
	}
	// The list shows the notice.
	if body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: chrome})); !strings.Contains(body, "1 session ended") {
		t.Fatal("no notice")
	}
	// JSON.
	resp = e.do(call{method: "POST", target: "/account/sessions/" + e.sessionID(safari) + "/end", token: chrome, header: acceptJSON()})
	if body := readBody(t, resp); resp.StatusCode != 200 || strings.TrimSpace(body) != `{"ended":1}` {
		t.Fatalf("JSON end: %d %s", resp.StatusCode, body)
	}
}

func TestEndCurrentSessionLogsOut(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, _, chrome, _ := threeSessions(e)
	id := e.sessionID(chrome)
	resp := e.do(call{method: "POST", target: "/account/sessions/" + id + "/end", token: chrome, header: sameOrigin()})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := sessionCookie(t, resp, "session"); c == nil || c.MaxAge >= 0 {
		t.Fatalf("cookie not cleared: %v", resp.Header.Values("Set-Cookie"))
	}
	if _, err := e.store.Get(t.Context(), id); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatal("current session not deleted")
	}
	if list, _ := e.store.ListByUser(t.Context(), "alice"); len(list) != 2 {
		t.Fatalf("%d sessions left, want 2", len(list))
	}
	// JSON flavour.
	tok := e.login("alice", uaChromeWin)
	resp = e.do(call{method: "POST", target: "/account/sessions/" + e.sessionID(tok) + "/end", token: tok, header: acceptJSON()})
	if body := readBody(t, resp); resp.StatusCode != 200 || strings.TrimSpace(body) != `{"ended":1,"logged_out":true}` {
		t.Fatalf("JSON: %d %s", resp.StatusCode, body)
	}
}

func TestEndOtherSessions(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, safari, chrome, bob := threeSessions(e)
	resp := e.do(call{method: "POST", target: "/account/sessions/end-others", token: chrome, header: sameOrigin()})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "./" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, tok := range []string{firefox, safari} {
		if _, err := e.store.Load(t.Context(), tok); !errors.Is(err, usersessions.ErrNotFound) {
			t.Fatal("other session survived")
		}
	}
	for _, tok := range []string{chrome, bob} {
		if _, err := e.store.Load(t.Context(), tok); err != nil {
			t.Fatalf("session wrongly ended: %v", err)
		}
	}
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("current cookie touched: %v", v)
	}
	readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: chrome})) // shows the notice
	body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: chrome}))
	if strings.Contains(body, "End all other sessions") || !strings.Contains(body, "only session") {
		t.Fatal("page still offers to end others")
	}
	resp = e.do(call{method: "POST", target: "/account/sessions/end-others", token: chrome, header: acceptJSON()})
	if body := readBody(t, resp); strings.TrimSpace(body) != `{"ended":0}` {
		t.Fatalf("JSON: %s", body)
	}
}

func TestCrossOriginPOSTRefused(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, _, chrome, _ := threeSessions(e)
	ffID := e.sessionID(firefox)
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"sec-fetch-site cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"sec-fetch-site same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden},
		{"origin mismatch", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"origin match", http.Header{"Origin": {"http://example.com"}}, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range []string{"/account/sessions/" + ffID + "/end", "/account/sessions/end-others"} {
				resp := e.do(call{method: "POST", target: target, token: chrome, header: tc.header})
				if resp.StatusCode != tc.want {
					t.Fatalf("%s: status %d, want %d", target, resp.StatusCode, tc.want)
				}
				if tc.want == http.StatusForbidden {
					if _, err := e.store.Load(t.Context(), firefox); err != nil {
						t.Fatal("a cross-site POST ended a session")
					}
				}
			}
		})
	}
}

func TestViewsMethodsAndPaths(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	id := e.sessionID(tok)
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"POST", "/account/sessions/", 405, "GET, HEAD"},
		{"PUT", "/account/sessions/", 405, "GET, HEAD"},
		{"DELETE", "/account/sessions/", 405, "GET, HEAD"},
		{"GET", "/account/sessions/end-others", 200, ""}, // the confirmation page
		{"GET", "/account/sessions/" + id + "/end", 200, ""},
		{"PUT", "/account/sessions/" + id + "/end", 405, "GET, HEAD, POST"},
		{"DELETE", "/account/sessions/end-all", 405, "GET, HEAD, POST"},
		{"GET", "/account/sessions/nothing", 404, ""},
		{"GET", "/account/sessions/" + id, 404, ""},
		{"GET", "/account/sessions/" + id + "/end/more", 404, ""},
		{"POST", "/account/sessions/%2F/end", 404, ""},
	} {
		resp := e.do(call{method: tc.method, target: tc.path, token: tok, header: sameOrigin()})
		if resp.StatusCode != tc.want || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.want, tc.allow)
		}
	}
	// ServeMux adds the slash (301 or 307 depending on the Go release).
	if resp := e.do(call{method: "GET", target: "/account/sessions", token: tok}); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/account/sessions/" {
		t.Errorf("no slash: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// JSON clients get JSON errors.
	resp := e.do(call{method: "GET", target: "/account/sessions/" + id + "/end", token: tok, header: acceptJSON()})
	if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("JSON 405: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestViewsMounting(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	plain := e.m.SessionsHandler(nil)
	prefixed := e.m.SessionsHandler(&ViewOptions{Prefix: "/me/sessions/"})
	for _, tc := range []struct {
		name     string
		h        http.Handler
		target   string
		want     int
		location string
	}{
		{"strip prefix no slash", http.StripPrefix("/me/sessions", plain), "/me/sessions/", 200, ""},
		{"strip prefix with slash", http.StripPrefix("/me/sessions/", plain), "/me/sessions/", 200, ""},
		{"strip prefix bare", http.StripPrefix("/me/sessions", plain), "/me/sessions", 301, "./sessions/"},
		{"root handler", plain, "/", 200, ""},
		{"prefix option", prefixed, "/me/sessions/", 200, ""},
		{"prefix option bare", prefixed, "/me/sessions", 301, "./sessions/"},
		{"prefix option outside", prefixed, "/other/", 404, ""},
		{"prefix option bare with query", prefixed, "/me/sessions?format=json", 301, "./sessions/?format=json"},
		{"no open redirect", http.StripPrefix("//evil.example", plain), "//evil.example", 301, "./evil.example/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The views run the middleware themselves when needed.
			resp := serve(t, tc.h, "session", call{method: "GET", target: tc.target, token: tok})
			if resp.StatusCode != tc.want || resp.Header.Get("Location") != tc.location {
				t.Fatalf("status %d Location %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tc.want, tc.location)
			}
		})
	}
	// Patterns with a method, and the end route under StripPrefix.
	mux := http.NewServeMux()
	mux.Handle("GET /a/sessions/", plain)
	mux.Handle("/b/", http.StripPrefix("/b", plain))
	h := e.m.Handler(mux)
	if resp := serve(t, h, "session", call{method: "GET", target: "/a/sessions/", token: tok}); resp.StatusCode != 200 {
		t.Fatalf("method pattern: %d", resp.StatusCode)
	}
	other := e.login("alice", uaFirefoxMac)
	resp := serve(t, h, "session", call{method: "POST", target: "/b/" + e.sessionID(other) + "/end", token: tok})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("end under StripPrefix: %d", resp.StatusCode)
	}
}

func TestTemplateOverride(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	fsys := fstest.MapFS{
		"sessions.html": {Data: []byte(`{{template "head" "Mine"}}<ol>{{range .Sessions}}<li>{{device .UserAgent}}|{{location .IP}}|{{timesince .LastSeen}}|{{.Current}}</li>{{end}}</ol>`)},
	}
	h := e.m.SessionsHandler(&ViewOptions{Templates: fsys, Now: e.clock.Now})
	resp := serve(t, h, "session", call{method: "GET", target: "/", token: tok})
	body := readBody(t, resp)
	if !strings.Contains(body, "<li>Chrome on Windows||just now|true</li>") || !strings.Contains(body, "<title>Mine</title>") {
		t.Fatalf("override: %s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "frame-ancestors 'none'" {
		t.Fatalf("CSP for an app template: %q", csp)
	}
	// A broken template panics at setup, not at request time.
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a broken template")
		}
	}()
	e.m.SessionsHandler(&ViewOptions{Templates: fstest.MapFS{"sessions.html": {Data: []byte(`{{.Broken`)}}})
}

func TestTemplateRenderErrorIs500(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	fsys := fstest.MapFS{"sessions.html": {Data: []byte(`before {{.NoSuchField}}`)}}
	resp := serve(t, e.m.SessionsHandler(&ViewOptions{Templates: fsys}), "session", call{method: "GET", target: "/", token: tok})
	if body := readBody(t, resp); resp.StatusCode != 500 || strings.HasPrefix(body, "before") || !strings.Contains(body, "<h1>Something went wrong</h1>") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestTimeSince(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{0, "just now"},
		{-time.Hour, "just now"},
		{59 * time.Second, "just now"},
		{time.Minute, "1 minute ago"},
		{5*time.Minute + 30*time.Second, "5 minutes ago"},
		{time.Hour, "1 hour ago"},
		{2*time.Hour + 59*time.Minute, "2 hours ago"},
		{24 * time.Hour, "1 day ago"},
		{3 * 24 * time.Hour, "3 days ago"},
		{45 * 24 * time.Hour, "1 month ago"},
		{400 * 24 * time.Hour, "1 year ago"},
	} {
		if got := TimeSince(now.Add(-tc.ago), now); got != tc.want {
			t.Errorf("%v ago: %q, want %q", tc.ago, got, tc.want)
		}
	}
	if got := TimeSince(time.Time{}, now); got != "never" {
		t.Errorf("zero: %q", got)
	}
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{{-time.Second, "expired"}, {30 * time.Second, "in less than a minute"}, {13 * 24 * time.Hour, "in 13 days"}} {
		if got := timeUntil(now.Add(tc.in), now); got != tc.want {
			t.Errorf("until %v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWantsJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                  false,
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"application/problem+json":          true,
		"text/html":                         false,
		"*/*":                               false,
		"text/html, application/json":       true,
		"text/html, application/json;q=0.9": false,
		"application/json;q=0":              false,
		"text/html;q=0.1, application/json;q=0.2": true,
		"garbage;;;": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if got := wantsJSON(r); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}

func TestFuncMapLocation(t *testing.T) {
	fm := FuncMap(nil, nil)
	loc := fm["location"].(func(any) string)
	if loc("203.0.113.1") != "" || loc(42) != "" {
		t.Fatal("nil Geo must answer empty")
	}
	dev := fm["device"].(func(string) string)
	if dev(uaChromeWin) != "Chrome on Windows" {
		t.Fatalf("device: %q", dev(uaChromeWin))
	}
	_ = io.Discard
}

func TestStylesheet(t *testing.T) {
	css := string(Stylesheet())
	if !strings.Contains(css, "--accent") || strings.Contains(css, "{{") {
		t.Fatalf("Stylesheet() is not the views' CSS: %.80q", css)
	}
}

// FuzzBreakable: breakable escapes its text and adds only <wbr> after
// separators: without them it reads as the text itself.
func FuzzBreakable(f *testing.F) {
	for _, s := range []string{"2001:db8::1", "198.51.100.7", "America/Argentina/Buenos_Aires", "a.b@example.com", "<b>&", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := string(breakable(s))
		if plain := html.UnescapeString(strings.ReplaceAll(got, "<wbr>", "")); plain != s && utf8.ValidString(s) && !strings.Contains(s, "\x00") { // html/template turns NUL into U+FFFD
			t.Fatalf("breakable(%q) = %q: reads as %q", s, got, plain)
		}
		if strings.Count(got, "<") != strings.Count(got, "<wbr>") {
			t.Fatalf("breakable(%q) = %q: markup besides <wbr>", s, got)
		}
		if want := strings.Count(s, ":") + strings.Count(s, ".") + strings.Count(s, "/") + strings.Count(s, "_") + strings.Count(s, "@"); strings.Count(got, "<wbr>") != want {
			t.Fatalf("breakable(%q) = %q: %d break opportunities, want %d", s, got, strings.Count(got, "<wbr>"), want)
		}
	})
}
