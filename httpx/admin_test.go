package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// adminEnv has an admin, users with sessions from several addresses, one
// anonymous session and one expired session.
type adminEnv struct {
	*env
	admin              string // admin's token
	alice1, alice2     string
	bob, anon, expired string
}

func newAdminEnv(t *testing.T) *adminEnv {
	e := newEnv(t, &usersessions.Options{Lifetime: 10 * time.Hour}, nil)
	a := &adminEnv{env: e}
	login := func(user, remote string) string {
		resp := e.do(call{method: "POST", target: "/login", remote: remote, ua: uaChromeWin, form: url.Values{"user": {user}}})
		return sessionCookie(t, resp, "session").Value
	}
	a.expired = login("old", "192.0.2.50:1")
	e.clock.Advance(9 * time.Hour)
	a.admin = login("admin", "192.0.2.1:1")
	a.alice1 = login("alice", "198.51.100.10:1")
	a.alice2 = login("alice", "198.51.100.11:1")
	a.bob = login("bob", "203.0.113.77:1")
	resp := e.do(call{method: "POST", target: "/set", remote: "203.0.113.200:1", form: url.Values{"k": {"a"}, "v": {"b"}}})
	a.anon = sessionCookie(t, resp, "session").Value
	e.clock.Advance(2 * time.Hour) // "old" expired, the rest alive
	return a
}

type adminList struct {
	Sessions []struct {
		ID      string `json:"id"`
		UserID  string `json:"user_id"`
		IP      string `json:"ip"`
		Active  bool   `json:"active"`
		Current bool   `json:"current"`
		Device  string `json:"device"`
	} `json:"sessions"`
	Next  string `json:"next"`
	Total int    `json:"total"`
}

func (a *adminEnv) list(query string) adminList {
	a.t.Helper()
	resp := a.do(call{method: "GET", target: "/admin/sessions/?" + query, token: a.admin, header: acceptJSON()})
	if resp.StatusCode != 200 {
		a.t.Fatalf("admin list %q: %d", query, resp.StatusCode)
	}
	var l adminList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		a.t.Fatal(err)
	}
	return l
}

func users(l adminList) string {
	var u []string
	for _, s := range l.Sessions {
		u = append(u, cmpOr(s.UserID, "-"))
	}
	return strings.Join(sorted(u), ",")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func TestAdminAccess(t *testing.T) {
	a := newAdminEnv(t)
	for _, tc := range []struct {
		name, token, method, path string
	}{
		{"anonymous list", "", "GET", "/admin/sessions/"},
		{"user list", a.alice1, "GET", "/admin/sessions/"},
		{"user end", a.alice1, "POST", "/admin/sessions/" + a.sessionID(a.bob) + "/end"},
		{"user bulk", a.alice1, "POST", "/admin/sessions/end"},
		{"user unknown path", a.alice1, "GET", "/admin/sessions/whatever"},
	} {
		resp := a.do(call{method: tc.method, target: tc.path, token: tc.token, header: sameOrigin()})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, resp.StatusCode)
		}
	}
	if _, err := a.store.Load(t.Context(), a.bob); err != nil {
		t.Fatal("refused admin POST ended a session")
	}
	// A nil Allow refuses everyone.
	h := a.m.AdminHandler(nil)
	if resp := serve(t, h, "session", call{method: "GET", target: "/", token: a.admin}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("nil Allow: %d", resp.StatusCode)
	}
}

func TestAdminFilters(t *testing.T) {
	a := newAdminEnv(t)
	for _, tc := range []struct{ query, want string }{
		{"", "-,admin,alice,alice,bob"},
		{"state=active", "-,admin,alice,alice,bob"},
		{"state=expired", "old"},
		{"state=all", "-,admin,alice,alice,bob,old"},
		{"state=bogus", "-,admin,alice,alice,bob"},
		{"user=alice", "alice,alice"},
		{"user=nobody", ""},
		{"anon=1", "-"},
		{"q=198.51.100.11", "alice"},
		{"q=198.51.100", "alice,alice"},
		{"q=bo", "bob"},
		{"q=203.0.113.0/24", "-,bob"},
		{"q=198.51.100.0/24&user=alice", "alice,alice"},
		{"state=all&q=192.0.2", "admin,old"},
	} {
		if got := users(a.list(tc.query)); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.query, got, tc.want)
		}
	}
	l := a.list("state=all")
	if l.Total != 6 {
		t.Fatalf("total %d", l.Total)
	}
	for _, s := range l.Sessions {
		if s.Active != (s.UserID != "old") || s.Current != (s.UserID == "admin") || (s.Device == "") != (s.UserID == "") {
			t.Fatalf("session %+v", s)
		}
	}
}

func TestAdminPagination(t *testing.T) {
	a := newAdminEnv(t)
	h := a.m.Handler(a.m.AdminHandler(&AdminOptions{
		PageSize: 2,
		Allow:    func(r *http.Request) bool { return FromContext(r.Context()).UserID == "admin" },
	}))
	var seen []string
	after := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("no end")
		}
		target := "/?state=all"
		if after != "" {
			target += "&after=" + url.QueryEscape(after)
		}
		resp := serve(t, h, "session", call{method: "GET", target: target, token: a.admin, header: acceptJSON()})
		var l adminList
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Sessions {
			seen = append(seen, s.ID)
		}
		if l.Next == "" {
			break
		}
		if len(l.Sessions) != 2 || l.Next != l.Sessions[1].ID {
			t.Fatalf("page %d: %d sessions, next %q", page, len(l.Sessions), l.Next)
		}
		after = l.Next
	}
	if len(seen) != 6 || len(slices.Compact(sorted(slices.Clone(seen)))) != 6 {
		t.Fatalf("paged through %v", seen)
	}
	// HTML shows a next link keeping the filter.
	resp := serve(t, h, "session", call{method: "GET", target: "/?state=all&q=1", token: a.admin})
	body := readBody(t, resp)
	if !strings.Contains(body, `rel="next"`) || !strings.Contains(body, "state=all") {
		t.Fatalf("no next link:\n%s", body)
	}
	// A bad cursor is the client's error, answered by the 400 page without
	// the store's error text.
	resp = serve(t, h, "session", call{method: "GET", target: "/?after=%00bad", token: a.admin})
	if body := readBody(t, resp); resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "usersessions") || !strings.Contains(body, "<h1>Bad request</h1>") {
		t.Fatalf("bad cursor: %d %s", resp.StatusCode, body)
	}
}

func TestAdminHTML(t *testing.T) {
	a := newAdminEnv(t)
	resp := a.do(call{method: "GET", target: "/admin/sessions/?state=all", token: a.admin})
	body := readBody(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		"6 sessions in the store", "anonymous", "Expired", "bob", "Chrome on Windows",
		`name="id" value="` + a.sessionID(a.bob) + `"`, `href="` + a.sessionID(a.bob) + `/end?state=all"`,
		`<meta name="viewport"`, "End selected sessions", `<option value="all" selected>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("admin page lacks %q", want)
		}
	}
	for _, tok := range []string{a.admin, a.bob, a.anon} {
		if strings.Contains(body, tok) {
			t.Fatal("admin page shows a token")
		}
	}
}

func TestAdminEnd(t *testing.T) {
	a := newAdminEnv(t)
	bobID := a.sessionID(a.bob)

	// One session; the redirect keeps the filter.
	resp := a.do(call{method: "POST", target: "/admin/sessions/" + bobID + "/end", token: a.admin, header: sameOrigin(),
		form: url.Values{"state": {"all"}, "q": {"x y"}}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "../?q=x+y&state=all" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := a.store.Load(t.Context(), a.bob); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatal("bob not ended")
	}
	// Again: 404 (JSON; HTML gets a neutral notice, TestEndingAGoneSession).
	resp = a.do(call{method: "POST", target: "/admin/sessions/" + bobID + "/end", token: a.admin, header: acceptJSON()})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second end: %d", resp.StatusCode)
	}
	// Cross-site: 403.
	resp = a.do(call{method: "POST", target: "/admin/sessions/" + a.sessionID(a.anon) + "/end", token: a.admin,
		header: http.Header{"Sec-Fetch-Site": {"cross-site"}}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site: %d", resp.StatusCode)
	}
	// Methods (GET of the end routes is the confirmation page).
	for _, c := range []call{
		{method: "PUT", target: "/admin/sessions/end"},
		{method: "DELETE", target: "/admin/sessions/" + bobID + "/end"},
		{method: "POST", target: "/admin/sessions/"},
	} {
		c.token = a.admin
		if resp := a.do(c); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
			t.Fatalf("%s %s: %d", c.method, c.target, resp.StatusCode)
		}
	}
	// Bulk, JSON, with an unknown and a repeated id.
	form := url.Values{"id": {a.sessionID(a.alice1), a.sessionID(a.alice2), a.sessionID(a.alice2), "AAAAAAAAAAAAAAAAAAAAAA"}}
	resp = a.do(call{method: "POST", target: "/admin/sessions/end", token: a.admin, header: acceptJSON(), form: form})
	if body := readBody(t, resp); resp.StatusCode != 200 || strings.TrimSpace(body) != `{"ended":2}` {
		t.Fatalf("bulk: %d %s", resp.StatusCode, body)
	}
	if l := a.list("user=alice"); len(l.Sessions) != 0 {
		t.Fatal("alice's sessions survived")
	}
	// Bulk, HTML, nothing selected.
	resp = a.do(call{method: "POST", target: "/admin/sessions/end", token: a.admin, header: sameOrigin(), form: url.Values{}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "./" {
		t.Fatalf("empty bulk: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Too many ids.
	many := url.Values{}
	for range maxBulkEnd + 1 {
		many.Add("id", "x")
	}
	if resp := a.do(call{method: "POST", target: "/admin/sessions/end", token: a.admin, form: many}); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("too many: %d", resp.StatusCode)
	}
	// Ending the admin's own session logs out.
	resp = a.do(call{method: "POST", target: "/admin/sessions/end", token: a.admin, form: url.Values{"id": {a.sessionID(a.admin), a.sessionID(a.anon)}}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("self end: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := sessionCookie(t, resp, "session"); c == nil || c.MaxAge >= 0 {
		t.Fatal("admin cookie not cleared")
	}
	if n, _ := a.store.Count(t.Context()); n != 1 { // only the expired one is left
		t.Fatalf("%d sessions left", n)
	}
}
