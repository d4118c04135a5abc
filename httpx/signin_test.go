package httpx

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/geotest"
)

// signInEnv is an env whose Store runs the sign-in check with a database
// of Amsterdam and Lisbon, and records the reasons of Hooks.Ended.
func signInEnv(t *testing.T) (*env, func(id string) usersessions.EndReason) {
	data := geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{
		"192.0.2.0/24":   {City: "Amsterdam", Country: "Netherlands", CountryCode: "NL", Latitude: 52.37, Longitude: 4.89},
		"203.0.113.0/24": {City: "Lisbon", Country: "Portugal", CountryCode: "PT", Latitude: 38.72, Longitude: -9.14},
	})
	geo, err := usersessions.OpenGeoBytes(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { geo.Close() })
	var mu sync.Mutex
	ended := map[string]usersessions.EndReason{}
	e := newEnv(t, &usersessions.Options{
		History:     time.Hour,
		SignInCheck: &usersessions.SignInCheck{Geo: geo},
		Hooks: usersessions.Hooks{Ended: func(_ context.Context, s *usersessions.Session, r usersessions.EndReason) {
			mu.Lock()
			defer mu.Unlock()
			ended[s.ID] = r
		}},
	}, nil)
	return e, func(id string) usersessions.EndReason {
		mu.Lock()
		defer mu.Unlock()
		return ended[id]
	}
}

// loginFrom signs user in from the address remote.
func (e *env) loginFrom(user, ua, remote string) string {
	e.t.Helper()
	resp := e.do(call{method: "POST", target: "/login", ua: ua, remote: remote, form: map[string][]string{"user": {user}}})
	c := sessionCookie(e.t, resp, e.m.CookieName())
	if resp.StatusCode != http.StatusSeeOther || c == nil {
		e.t.Fatalf("login %s: status %d", user, resp.StatusCode)
	}
	return c.Value
}

func TestSuspiciousSignInShown(t *testing.T) {
	e, _ := signInEnv(t)
	mine := e.loginFrom("alice", uaFirefoxMac, "192.0.2.10:1234")
	e.clock.Advance(time.Hour)
	theirs := e.sessionID(e.loginFrom("alice", uaSafariIOS, "203.0.113.77:1234"))
	body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: mine, ua: uaFirefoxMac}))
	for _, want := range []string{
		"Unusual sign-in", "new device · new country · too far from your last session",
		"Signed in from Lisbon, Portugal.", "1863 km from your previous session in Amsterdam, Netherlands, 1 hour earlier.",
		`href="` + theirs + `/report"`, `aria-label="This wasn&#39;t me: end the sign-in on Safari on iPhone"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "/report\""); n != 1 {
		t.Errorf("%d report links, want 1 (the current session has none)", n)
	}
	de := readBody(t, e.do(call{method: "GET", target: "/account/sessions/?lang=de", token: mine, ua: uaFirefoxMac}))
	if !strings.Contains(de, "Ungewöhnliche Anmeldung") || !strings.Contains(de, "Das war ich nicht") {
		t.Errorf("German page lacks the mark:\n%s", de)
	}
	resp := e.do(call{method: "GET", target: "/account/sessions/", token: mine, header: acceptJSON()})
	var got struct {
		Sessions []struct {
			ID         string
			Suspicious *struct {
				Reasons    []string `json:"reasons"`
				Place      string   `json:"place"`
				Previous   string   `json:"previous_place"`
				DistanceKm float64  `json:"distance_km"`
				Since      int64    `json:"since_seconds"`
			} `json:"suspicious"`
		} `json:"sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, s := range got.Sessions {
		if s.Suspicious == nil {
			continue
		}
		marked++
		m := s.Suspicious
		if s.ID != theirs || !slices.Equal(m.Reasons, []string{"new_device", "new_country", "impossible_travel"}) ||
			m.Place != "Lisbon, Portugal" || m.Previous != "Amsterdam, Netherlands" || m.DistanceKm != 1863 || m.Since != 3600 {
			t.Errorf("JSON mark of %s: %+v", s.ID, m)
		}
	}
	if marked != 1 {
		t.Errorf("%d marked sessions in JSON, want 1", marked)
	}
}

func TestReportSignIn(t *testing.T) {
	e, endedReason := signInEnv(t)
	mine := e.loginFrom("alice", uaFirefoxMac, "192.0.2.10:1234")
	e.clock.Advance(time.Hour)
	theirsToken := e.loginFrom("alice", uaSafariIOS, "203.0.113.77:1234")
	theirs := e.sessionID(theirsToken)
	bob := e.loginFrom("bob", uaChromeWin, "192.0.2.11:1234")
	target := "/account/sessions/" + theirs + "/report"

	page := readBody(t, e.do(call{method: "GET", target: target, token: mine}))
	if !strings.Contains(page, "End a sign-in that wasn&#39;t you?") || !strings.Contains(page, `action="report"`) {
		t.Fatalf("confirmation page:\n%s", page)
	}
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	if resp := e.do(call{method: "POST", target: target, token: mine, header: cross}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: status %d, want 403", resp.StatusCode)
	}
	resp := e.do(call{method: "POST", target: target + "?format=json", token: bob, header: sameOrigin()})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("bob reporting alice's session: status %d, want 404", resp.StatusCode)
	}
	if _, err := e.store.Load(t.Context(), theirsToken); err != nil {
		t.Fatalf("another user's report ended the session: %v", err)
	}
	own := "/account/sessions/" + e.sessionID(mine) + "/report"
	if resp := e.do(call{method: "POST", target: own, token: mine, header: sameOrigin()}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("reporting the current session: status %d, want 400", resp.StatusCode)
	}
	resp = e.do(call{method: "POST", target: target, token: mine, header: sameOrigin()})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "../" {
		t.Fatalf("report: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := e.store.Load(t.Context(), theirsToken); err == nil {
		t.Fatal("the reported session still loads")
	}
	if r := endedReason(theirs); r != usersessions.EndReported {
		t.Fatalf("Ended hook reason %q, want reported", r)
	}
	list := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: mine}))
	if !strings.Contains(list, "Ended: reported as not you") {
		t.Errorf("recently ended lacks the reason:\n%s", list)
	}
}

func TestReportSignInNeedsRecentAuth(t *testing.T) {
	e, _ := signInEnv(t)
	mine := e.loginFrom("alice", uaFirefoxMac, "192.0.2.10:1234")
	e.clock.Advance(time.Hour)
	theirs := e.sessionID(e.loginFrom("alice", uaSafariIOS, "203.0.113.77:1234"))
	resp := e.do(call{method: "POST", target: "/strict/sessions/" + theirs + "/report", token: mine, header: sameOrigin()})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "reauth=1") {
		t.Fatalf("stale sign-in: status %d, Location %q, want the step-up", resp.StatusCode, loc)
	}
}
