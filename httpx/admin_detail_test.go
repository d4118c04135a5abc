package httpx

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

func TestAdminDetailHTML(t *testing.T) {
	a := newAdminEnv(t)
	bob := a.sessionID(a.bob)
	const evil = `<img src=x onerror=alert(1)>`
	a.do(call{method: "POST", target: "/set", token: a.bob, remote: "203.0.113.77:1", form: url.Values{"k": {"<b>note</b>"}, "v": {evil}}})

	resp := a.do(call{method: "GET", target: "/admin/sessions/" + bob + "/?state=all&q=bo", token: a.admin})
	body := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		"<h1>Session details</h1>", bob, "bob",
		"Chrome 124.0.0.0", "Windows 10.0", // browser and OS versions
		html.EscapeString(uaChromeWin),    // the full user agent
		string(breakable("203.0.113.77")), // wraps at its dots on a phone
		"1 Jun 2025, 21:00 UTC",           // created, with its zone
		"&lt;img src=x onerror=alert(1)&gt;", "&lt;b&gt;note&lt;/<wbr>b&gt;", "<code>string</code>",
		`href="end?q=bo&amp;state=all"`, // the end action, through the confirmation page
		`href="../?q=bo&amp;state=all"`, // back to the filtered list
	} {
		if !strings.Contains(body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}
	if strings.Contains(body, evil) || strings.Contains(body, "<b>note") {
		t.Fatal("a session value is not escaped")
	}
	for _, tok := range []string{a.admin, a.bob} {
		if strings.Contains(body, tok) {
			t.Fatal("detail page shows a token")
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}

	// The End link leads to the existing confirmation, which ends it.
	resp = a.do(call{method: "GET", target: "/admin/sessions/" + bob + "/end?q=bo&state=all", token: a.admin})
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "End 1 session?") {
		t.Fatalf("confirmation %d:\n%s", resp.StatusCode, body)
	}

	// Unknown and malformed IDs.
	if resp := a.do(call{method: "GET", target: "/admin/sessions/AAAAAAAAAAAAAAAAAAAAAA/", token: a.admin}); resp.StatusCode != 404 {
		t.Errorf("unknown session: %d", resp.StatusCode)
	}
	if resp := a.do(call{method: "GET", target: "/admin/sessions/nope/", token: a.admin}); resp.StatusCode != 404 {
		t.Errorf("malformed id: %d", resp.StatusCode)
	}
	if resp := a.do(call{method: "POST", target: "/admin/sessions/" + bob + "/", token: a.admin, header: sameOrigin()}); resp.StatusCode != 405 {
		t.Errorf("POST detail: %d", resp.StatusCode)
	}
	// Not an admin: 403 before anything.
	if resp := a.do(call{method: "GET", target: "/admin/sessions/" + bob + "/", token: a.alice1}); resp.StatusCode != 403 {
		t.Errorf("non-admin: %d", resp.StatusCode)
	}
}

func TestAdminDetailJSON(t *testing.T) {
	a := newAdminEnv(t)
	bob := a.sessionID(a.bob)
	a.do(call{method: "POST", target: "/set", token: a.bob, remote: "203.0.113.77:1", form: url.Values{"k": {"theme"}, "v": {"dark"}}})
	resp := a.do(call{method: "GET", target: "/admin/sessions/" + bob + "/", token: a.admin, header: acceptJSON()})
	var out struct {
		Session struct {
			ID, UserID string
			UA         string `json:"user_agent"`
		} `json:"session"`
		Device struct {
			Browser        string `json:"browser"`
			BrowserVersion string `json:"browser_version"`
			Platform       string `json:"platform"`
			OSVersion      string `json:"os_version"`
		} `json:"device"`
		Values []struct {
			Key   string          `json:"key"`
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"values"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Session.ID != bob || out.Session.UA != uaChromeWin || out.Device.Browser != "Chrome" || out.Device.BrowserVersion != "124.0.0.0" || out.Device.Platform != "Windows" || out.Device.OSVersion != "10.0" {
		t.Fatalf("detail JSON %+v", out)
	}
	// The package's own keys (httpx.authAt from sign-in) are not session
	// data: only the app's values are listed.
	if len(out.Values) != 1 || out.Values[0].Key != "theme" || string(out.Values[0].Value) != `"dark"` || out.Values[0].Type != "string" {
		t.Fatalf("values %+v", out.Values)
	}
}

// TestAdminDetailHidesInternalKeys (issue 18 item 18): the keys the
// package keeps in a session (httpx.authAt, httpx.notice, httpx.remember)
// are not listed as session data, in HTML or JSON; the time of the last
// sign-in or re-authentication is shown as a time, translated, instead.
func TestAdminDetailHidesInternalKeys(t *testing.T) {
	a := newAdminEnv(t)
	self := a.sessionID(a.admin)
	// An HTML POST leaves a notice in the admin's session; the admin's
	// session also gets the remember-me choice.
	a.do(call{method: "POST", target: "/admin/sessions/" + a.sessionID(a.alice1) + "/end", token: a.admin, header: sameOrigin(), form: url.Values{}})
	s, err := a.store.Load(t.Context(), a.admin)
	if err != nil {
		t.Fatal(err)
	}
	s.Set(rememberKey, false)
	s.Set("theme", "dark")
	if err := a.store.Save(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.store.Load(t.Context(), a.admin); len(s.Keys()) != 4 {
		t.Fatalf("setup: keys %v, want authAt, notice, remember and theme", s.Keys())
	}
	for _, lang := range []string{"en", "de"} {
		resp := a.do(call{method: "GET", target: "/admin/sessions/" + self + "/?lang=" + lang, token: a.admin})
		body := readBody(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", lang, resp.StatusCode)
		}
		if strings.Contains(body, "httpx.") {
			t.Errorf("%s: the detail page shows an internal key:\n%s", lang, body)
		}
		label := catalogFor(lang).T("detail.authAt")
		for _, want := range []string{label, `<time datetime="2025-06-01T21:00:00Z">` + catalogFor(lang).Date(time.Date(2025, 6, 1, 21, 0, 0, 0, time.UTC)), "theme"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s: the detail page lacks %q", lang, want)
			}
		}
	}
	resp := a.do(call{method: "GET", target: "/admin/sessions/" + self + "/", token: a.admin, header: acceptJSON()})
	body := readBody(t, resp)
	var out struct {
		AuthAt time.Time `json:"authenticated_at"`
		Values []struct {
			Key string `json:"key"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Values) != 1 || out.Values[0].Key != "theme" || strings.Contains(body, "httpx.") {
		t.Errorf("JSON values %+v in %s", out.Values, body)
	}
	if !out.AuthAt.Equal(time.Date(2025, 6, 1, 21, 0, 0, 0, time.UTC)) {
		t.Errorf("JSON authenticated_at %v", out.AuthAt)
	}
}

func TestAdminDetailLocation(t *testing.T) {
	e := newEnv(t, nil, nil)
	admin := e.login("admin", uaChromeWin)
	resp := e.do(call{method: "POST", target: "/login", remote: "198.51.100.9:1", ua: uaSafariIOS, form: url.Values{"user": {"carol"}}})
	carol := e.sessionID(sessionCookie(t, resp, "session").Value)
	h := e.m.Handler(e.m.AdminHandler(&AdminOptions{
		Geo: multiGeo(t), GeoByLanguage: map[string]*usersessions.Geo{"de": multiGeo(t, "de")},
		Now: e.clock.Now, Allow: func(*http.Request) bool { return true },
	}))
	body := readBody(t, serve(t, h, "session", call{method: "GET", target: "/" + carol + "/", token: admin}))
	for _, want := range []string{"Berlin", "Land Berlin", "Germany (DE)", "Europe", string(breakable("Europe/Berlin")), "52.5200, 13.4050",
		"1 Jun 2025, 12:00 UTC", "1 Jun 2025, 14:00 CEST at the session&#39;s location", "Safari 17.4", "iPhone 17.4", "Mobile device</dt><dd>Yes"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	body = readBody(t, serve(t, h, "session", call{method: "GET", target: "/" + carol + "/", token: admin, header: http.Header{"Accept-Language": {"de"}}}))
	for _, want := range []string{"Deutschland (DE)", "Europa", "1.6.2025, 14:00 CEST am Standort der Sitzung", "Mobilgerät</dt><dd>Ja"} {
		if !strings.Contains(body, want) {
			t.Errorf("German detail lacks %q", want)
		}
	}
}

func TestAdminMatchCountAndPrefixNote(t *testing.T) {
	a := newAdminEnv(t)
	for _, tc := range []struct{ query, want string }{
		{"", "5 sessions match."},
		{"state=all", "6 sessions match."},
		{"user=bob", "1 session matches."},
		{"q=203.0.113.5/24", "2 sessions match. Searching the addresses in 203.0.113.0/24."},
		{"q=203.0.113.0/33", "0 sessions match. “203.0.113.0/33” is not a valid IP prefix, so it was searched as text in user IDs and addresses: the number after the slash must be 0 to 32 for IPv4 and 0 to 128 for IPv6."},
		{"q=203.0.113/24", "the part before the slash is not an IP address."},
		{"q=bob", "1 session matches.</p>"},
	} {
		body := html.UnescapeString(readBody(t, a.do(call{method: "GET", target: "/admin/sessions/?" + tc.query, token: a.admin})))
		if !strings.Contains(body, tc.want) {
			t.Errorf("%q: no %q in\n%s", tc.query, tc.want, body)
		}
	}
	// The count covers every page, also from a later one.
	h := a.m.Handler(a.m.AdminHandler(&AdminOptions{PageSize: 2, Allow: func(*http.Request) bool { return true }, Now: a.clock.Now}))
	body := readBody(t, serve(t, h, "session", call{method: "GET", target: "/?state=all", token: a.admin}))
	if !strings.Contains(body, "6 sessions match.") || !strings.Contains(body, "2 sessions on this page") {
		t.Errorf("first page count:\n%s", body)
	}
	var l adminList
	json.NewDecoder(serve(t, h, "session", call{method: "GET", target: "/?state=all", token: a.admin, header: acceptJSON()}).Body).Decode(&l)
	body = readBody(t, serve(t, h, "session", call{method: "GET", target: "/?state=all&after=" + l.Next, token: a.admin}))
	if !strings.Contains(body, "6 sessions match.") {
		t.Errorf("second page count:\n%s", body)
	}
}

func TestAdminSelectAllAndNames(t *testing.T) {
	a := newAdminEnv(t)
	bob := a.sessionID(a.bob)
	resp := a.do(call{method: "GET", target: "/admin/sessions/?q=20", token: a.admin})
	body := readBody(t, resp)
	for _, want := range []string{
		`aria-label="Select bob, Chrome on Windows, 203.0.113.77"`,
		`aria-label="End bob, Chrome on Windows, 203.0.113.77"`,
		`aria-label="Select anonymous, Unknown device, 203.0.113.200"`,
		`href="./?q=20&amp;select=all"`, "Select all on this page",
		`id="select-all" hidden`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("admin list lacks %q", want)
		}
	}
	if strings.Contains(body, "Select session "+bob) || strings.Contains(body, " checked aria-label") {
		t.Error("boxes named by ID, or checked without select=all")
	}
	// The script the page runs is the one the CSP allows, and nothing else.
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src '"+adminScriptHash+"'") || strings.Count(body, "<script>") != 1 || !strings.Contains(body, "<script>"+adminScript+"</script>") {
		t.Errorf("CSP %q or script mismatch", csp)
	}
	body = readBody(t, a.do(call{method: "GET", target: "/admin/sessions/?q=20&select=all", token: a.admin}))
	if n := strings.Count(body, `name="id" value=`); n != 2 || strings.Count(body, " checked aria-label=\"Select ") != n {
		t.Errorf("select=all checked %d of %d boxes", strings.Count(body, " checked aria-label=\"Select "), n)
	}
	if !strings.Contains(body, `href="./?q=20">Clear selection`) {
		t.Error("no way to clear the selection")
	}
}

// TestExpiryRoundsEverywhere: a 14-day session created a minute ago
// expires "in 14 days" on every page, and absolute times name their zone.
func TestExpiryRoundsEverywhere(t *testing.T) {
	e := newEnv(t, &usersessions.Options{Lifetime: 14 * day}, nil)
	admin := e.login("admin", uaChromeWin)
	e.clock.Advance(time.Minute)
	id := e.sessionID(admin)
	for _, target := range []string{"/account/sessions/", "/admin/sessions/", "/admin/sessions/" + id + "/"} {
		body := readBody(t, e.do(call{method: "GET", target: target, token: admin}))
		if !strings.Contains(body, "in 14 days") || strings.Contains(body, "in 13 days") {
			t.Errorf("%s: expiry not rounded to 14 days", target)
		}
		if !strings.Contains(body, "15 Jun 2025, 12:00 UTC") && !strings.Contains(body, "2025-06-01 12:00 UTC") {
			t.Errorf("%s: no absolute time with its zone", target)
		}
	}
	body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/end-all", token: admin}))
	if !strings.Contains(body, `title="1 Jun 2025, 12:01 UTC"`) {
		t.Errorf("confirmation page: last activity without its absolute time and zone:\n%s", body)
	}
}
