package httpx

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// follow requests the Location of a 303 from the list URL base.
func (e *env) follow(resp *http.Response, from, token string) string {
	e.t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	base, _ := url.Parse(from)
	loc, err := base.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return readBody(e.t, e.do(call{method: "GET", target: loc.RequestURI(), token: token}))
}

func TestSignOutEverywhere(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, safari, chrome, bob := threeSessions(e)
	page := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: chrome}))
	if !strings.Contains(page, `href="end-all"`) || !strings.Contains(page, "Sign out everywhere") {
		t.Fatal("the sessions page offers no way to sign out everywhere")
	}
	// The confirmation page acts on nothing.
	resp := e.do(call{method: "GET", target: "/account/sessions/end-all", token: chrome})
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `<form method="post" action="end-all"`) || !strings.Contains(body, "3 sessions") {
		t.Fatalf("confirm page: %d\n%s", resp.StatusCode, body)
	}
	if list, _ := e.store.ListByUser(t.Context(), "alice"); len(list) != 3 {
		t.Fatal("the GET ended sessions")
	}
	resp = e.do(call{method: "POST", target: "/account/sessions/end-all", token: chrome, header: sameOrigin()})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bye" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := sessionCookie(t, resp, "session"); c == nil || c.MaxAge >= 0 {
		t.Fatal("cookie not cleared")
	}
	for _, tok := range []string{firefox, safari, chrome} {
		if _, err := e.store.Load(t.Context(), tok); err == nil {
			t.Fatal("a session survived sign out everywhere")
		}
	}
	if _, err := e.store.Load(t.Context(), bob); err != nil {
		t.Fatal("another user's session ended")
	}
	// JSON.
	tok := e.login("alice", uaChromeWin)
	e.login("alice", uaFirefoxMac)
	resp = e.do(call{method: "POST", target: "/account/sessions/end-all", token: tok, header: acceptJSON()})
	if b := readBody(t, resp); strings.TrimSpace(b) != `{"ended":2,"logged_out":true}` {
		t.Fatalf("JSON: %s", b)
	}
	// Cross-site: refused.
	tok = e.login("alice", uaChromeWin)
	resp = e.do(call{method: "POST", target: "/account/sessions/end-all", token: tok, header: http.Header{"Sec-Fetch-Site": {"cross-site"}}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site: %d", resp.StatusCode)
	}
}

// TestConfirmationPages: each destructive button leads to a GET page that
// asks first and works without JavaScript; the POST acts at once.
func TestConfirmationPages(t *testing.T) {
	a := newAdminEnv(t)
	bobID := a.sessionID(a.bob)
	aliceIDs := []string{a.sessionID(a.alice1), a.sessionID(a.alice2)}
	cases := []struct {
		target, form string
		want         []string
	}{
		{"/admin/sessions/" + bobID + "/end?state=all&q=x", `<form method="post" action="end"`, []string{"bob", `name="state" value="all"`, `name="q" value="x"`}},
		{"/admin/sessions/end?id=" + aliceIDs[0] + "&id=" + aliceIDs[1] + "&user=alice", `<form method="post" action="end"`,
			[]string{`name="id" value="` + aliceIDs[0] + `"`, `name="id" value="` + aliceIDs[1] + `"`, "2 sessions", `name="user" value="alice"`}},
	}
	for _, c := range cases {
		resp := a.do(call{method: "GET", target: c.target, token: a.admin})
		body := readBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, c.form) || strings.Contains(body, "<script") {
			t.Fatalf("GET %s: %d\n%s", c.target, resp.StatusCode, body)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", c.target, w)
			}
		}
	}
	if n, _ := a.store.Count(t.Context()); n != 6 {
		t.Fatalf("a confirmation page ended sessions: %d left", n)
	}
	// The admin list links to the confirmation pages.
	list := readBody(t, a.do(call{method: "GET", target: "/admin/sessions/?state=all", token: a.admin}))
	if !strings.Contains(list, `href="`+bobID+`/end`) || !strings.Contains(list, `<form method="get" action="end"`) {
		t.Fatal("admin list does not lead to confirmation pages")
	}

	e := newEnv(t, nil, nil)
	firefox, _, chrome, _ := threeSessions(e)
	for target, form := range map[string]string{
		"/account/sessions/end-others":                       `<form method="post" action="end-others"`,
		"/account/sessions/" + e.sessionID(firefox) + "/end": `<form method="post" action="end"`,
	} {
		resp := e.do(call{method: "GET", target: target, token: chrome})
		body := readBody(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, form) {
			t.Fatalf("GET %s: %d\n%s", target, resp.StatusCode, body)
		}
	}
	if list, _ := e.store.ListByUser(t.Context(), "alice"); len(list) != 3 {
		t.Fatal("a confirmation page ended sessions")
	}
	page := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: chrome}))
	if !strings.Contains(page, `href="end-others"`) {
		t.Fatal("End all other sessions does not lead to its confirmation page")
	}
}

// TestNoticesCannotBeForged: notices come from the session (a flash), not
// from the URL, and show once.
func TestNoticesCannotBeForged(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, _, chrome, _ := threeSessions(e)
	if body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/?ended=42", token: chrome})); strings.Contains(body, "42 sessions") || strings.Contains(body, `class="notice`) {
		t.Fatal("a notice taken from the URL")
	}
	resp := e.do(call{method: "POST", target: "/account/sessions/end-others", token: chrome, header: sameOrigin()})
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "ended") {
		t.Fatalf("Location %q carries the notice", loc)
	}
	if body := e.follow(resp, "/account/sessions/end-others", chrome); !strings.Contains(body, "2 sessions ended.") {
		t.Fatal("no notice after ending sessions")
	}
	if body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: chrome})); strings.Contains(body, "sessions ended") {
		t.Fatal("the notice showed twice")
	}
	// Admin, too.
	a := newAdminEnv(t)
	if body := readBody(t, a.do(call{method: "GET", target: "/admin/sessions/?ended=42", token: a.admin})); strings.Contains(body, "42 sessions") {
		t.Fatal("admin notice taken from the URL")
	}
	resp = a.do(call{method: "POST", target: "/admin/sessions/" + a.sessionID(a.bob) + "/end", token: a.admin, header: sameOrigin()})
	if body := a.follow(resp, "/admin/sessions/x/end", a.admin); !strings.Contains(body, "1 session ended.") {
		t.Fatal("no admin notice")
	}
}

// TestEndingAGoneSession: a session that already ended, or is another
// user's, answers HTML with a neutral notice (303) and JSON with 404, and
// the other user's session survives.
func TestEndingAGoneSession(t *testing.T) {
	e := newEnv(t, nil, nil)
	_, _, chrome, bob := threeSessions(e)
	for _, id := range []string{e.sessionID(bob), "AAAAAAAAAAAAAAAAAAAAAA"} {
		target := "/account/sessions/" + id + "/end"
		resp := e.do(call{method: "POST", target: target, token: chrome, header: sameOrigin()})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "../" {
			t.Fatalf("%s: %d %q", id, resp.StatusCode, resp.Header.Get("Location"))
		}
		if body := e.follow(resp, target, chrome); !strings.Contains(body, "That session had already ended.") {
			t.Fatalf("%s: no neutral notice", id)
		}
		resp = e.do(call{method: "POST", target: target, token: chrome, header: acceptJSON()})
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s JSON: %d", id, resp.StatusCode)
		}
	}
	if _, err := e.store.Load(t.Context(), bob); err != nil {
		t.Fatal("bob's session ended")
	}
	a := newAdminEnv(t)
	gone := a.sessionID(a.bob)
	a.do(call{method: "POST", target: "/admin/sessions/" + gone + "/end", token: a.admin, header: sameOrigin()})
	resp := a.do(call{method: "POST", target: "/admin/sessions/" + gone + "/end", token: a.admin, header: sameOrigin()})
	if body := a.follow(resp, "/admin/sessions/x/end", a.admin); !strings.Contains(body, "That session had already ended.") {
		t.Fatal("admin: no neutral notice")
	}
	if resp := a.do(call{method: "POST", target: "/admin/sessions/" + gone + "/end", token: a.admin, header: acceptJSON()}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("admin JSON: %d", resp.StatusCode)
	}
}

// TestDeadCookieSaysSessionEnded: a browser whose session was ended
// elsewhere is told so, instead of being bounced to the login page.
func TestDeadCookieSaysSessionEnded(t *testing.T) {
	e := newEnv(t, nil, nil)
	firefox, _, chrome, _ := threeSessions(e)
	e.do(call{method: "POST", target: "/account/sessions/" + e.sessionID(firefox) + "/end", token: chrome, header: sameOrigin()})
	resp := e.do(call{method: "GET", target: "/account/sessions/", token: firefox})
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your session has ended") || !strings.Contains(body, `href="/login?next=%2Faccount%2Fsessions%2F"`) {
		t.Fatalf("dead cookie: %d\n%s", resp.StatusCode, body)
	}
	if c := sessionCookie(t, resp, "session"); c == nil || c.MaxAge >= 0 {
		t.Fatal("dead cookie not cleared")
	}
	// No cookie at all: straight to the login page; JSON: 401.
	if resp := e.do(call{method: "GET", target: "/account/sessions/"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("no cookie: %d", resp.StatusCode)
	}
	if resp := e.do(call{method: "GET", target: "/account/sessions/", token: firefox, header: acceptJSON()}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("JSON dead cookie: %d", resp.StatusCode)
	}
	// The app's own pages can ask.
	var ended []bool
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ended = append(ended, SessionEnded(r))
		io.WriteString(w, "x")
	}))
	serve(t, h, "session", call{method: "GET", target: "/", token: firefox})
	serve(t, h, "session", call{method: "GET", target: "/", token: chrome})
	serve(t, h, "session", call{method: "GET", target: "/"})
	if len(ended) != 3 || !ended[0] || ended[1] || ended[2] {
		t.Fatalf("SessionEnded = %v, want [true false false]", ended)
	}
}

func TestTimesRoundAndShowZones(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{14*24*time.Hour - time.Second, "in 14 days"},
		{14*24*time.Hour - 5*time.Minute, "in 14 days"},
		{13*24*time.Hour + 11*time.Hour, "in 13 days"},
		{13*24*time.Hour + 13*time.Hour, "in 14 days"},
		{2*time.Hour - time.Second, "in 2 hours"},
		{90 * time.Second, "in 2 minutes"},
	} {
		if got := timeUntil(now.Add(tc.in), now); got != tc.want {
			t.Errorf("until %v: %q, want %q", tc.in, got, tc.want)
		}
	}
	e := newEnv(t, &usersessions.Options{Lifetime: 14 * 24 * time.Hour}, nil)
	tok := e.login("alice", uaChromeWin)
	e.clock.Advance(3 * time.Second)
	body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: tok}))
	if !strings.Contains(body, "in 14 days") || !strings.Contains(body, "1 Jun 2025, 12:00 UTC") {
		t.Fatalf("sessions page times:\n%s", body)
	}
	a := newAdminEnv(t)
	body = readBody(t, a.do(call{method: "GET", target: "/admin/sessions/", token: a.admin}))
	if !strings.Contains(body, " UTC") {
		t.Fatal("admin times without a zone")
	}
	var out sessionsJSON
	json.NewDecoder(e.do(call{method: "GET", target: "/account/sessions/?format=json", token: tok}).Body).Decode(&out)
	if len(out.Sessions) != 1 {
		t.Fatal("json")
	}
}
