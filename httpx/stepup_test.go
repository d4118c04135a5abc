package httpx

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

func TestRequireRecentAuth(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin) // signing in is a proof
	if resp := e.do(call{method: "GET", target: "/sensitive", token: tok}); resp.StatusCode != http.StatusOK {
		t.Fatalf("right after sign-in: %d", resp.StatusCode)
	}
	e.clock.Advance(11 * time.Minute)
	resp := e.do(call{method: "GET", target: "/sensitive?x=1", token: tok})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2Fsensitive%3Fx%3D1&reauth=1" {
		t.Fatalf("stale proof: %d to %q", resp.StatusCode, loc)
	}
	resp = e.do(call{method: "GET", target: "/sensitive", token: tok, header: acceptJSON()})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(readBody(t, resp), "reauthentication required") {
		t.Fatalf("stale proof, JSON: %d", resp.StatusCode)
	}
	if resp := e.do(call{method: "POST", target: "/reauth", token: tok, header: sameOrigin()}); resp.StatusCode != http.StatusOK {
		t.Fatalf("MarkAuthenticated: %d %s", resp.StatusCode, readBody(t, resp))
	}
	if resp := e.do(call{method: "GET", target: "/sensitive", token: tok}); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a fresh proof: %d", resp.StatusCode)
	}
	// Anonymous visitors have proved nothing.
	if resp := e.do(call{method: "GET", target: "/sensitive"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("anonymous: %d", resp.StatusCode)
	}
	if resp := e.do(call{method: "POST", target: "/reauth", header: sameOrigin()}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("MarkAuthenticated for an anonymous visitor: %d", resp.StatusCode)
	}
}

func TestViewsAskForRecentAuth(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	e.login("alice", uaSafariIOS)
	if resp := e.do(call{method: "GET", target: "/strict/sessions/end-others", token: tok}); resp.StatusCode != http.StatusOK {
		t.Fatalf("confirmation with a fresh proof: %d", resp.StatusCode)
	}
	e.clock.Advance(11 * time.Minute)
	for _, method := range []string{"GET", "POST"} {
		resp := e.do(call{method: method, target: "/strict/sessions/end-others", token: tok, header: sameOrigin()})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2Fstrict%2Fsessions%2Fend-others&reauth=1" {
			t.Fatalf("%s end-others with a stale proof: %d to %q", method, resp.StatusCode, loc)
		}
	}
	// Ending another session one by one needs the proof as well.
	other := ""
	if list, _ := e.store.ListByUser(t.Context(), "alice"); len(list) == 2 {
		other = list[0].ID
		if other == e.sessionID(tok) {
			other = list[1].ID
		}
	}
	for _, method := range []string{"GET", "POST"} {
		resp := e.do(call{method: method, target: "/strict/sessions/" + other + "/end", token: tok, header: sameOrigin()})
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "reauth=1") {
			t.Fatalf("%s ending another session with a stale proof: %d to %q", method, resp.StatusCode, loc)
		}
	}
	if list, _ := e.store.ListByUser(t.Context(), "alice"); len(list) != 2 {
		t.Fatalf("a stale proof ended sessions: %d left", len(list))
	}
	// Signing out of this session needs no proof.
	own := e.sessionID(tok)
	if resp := e.do(call{method: "POST", target: "/strict/sessions/" + own + "/end", token: tok, header: sameOrigin()}); resp.StatusCode != http.StatusSeeOther || strings.Contains(resp.Header.Get("Location"), "reauth") {
		t.Fatalf("signing out of this session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok = e.login("alice", uaChromeWin)
	// The plain list needs no proof.
	if resp := e.do(call{method: "GET", target: "/strict/sessions/", token: tok}); resp.StatusCode != http.StatusOK {
		t.Fatalf("the list: %d", resp.StatusCode)
	}
}

func TestHistoryOnTheSessionsPage(t *testing.T) {
	e := newEnv(t, &usersessions.Options{History: 24 * time.Hour}, nil)
	laptop := e.login("alice", uaChromeWin)
	phone := e.login("alice", uaSafariIOS)
	phoneID := e.sessionID(phone)
	tablet := e.login("alice", uaSafariIOS)
	if resp := e.do(call{method: "POST", target: "/account/sessions/" + phoneID + "/end", token: laptop, header: sameOrigin()}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ending the phone: %d", resp.StatusCode)
	}
	e.clock.Advance(time.Minute)
	if resp := e.do(call{method: "POST", target: "/logout", token: tablet, header: sameOrigin()}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	body := readBody(t, e.do(call{method: "GET", target: "/account/sessions/", token: laptop}))
	for _, want := range []string{"Recently ended", "Ended from another session", "Signed out"} {
		if !strings.Contains(body, want) {
			t.Errorf("the sessions page lacks %q", want)
		}
	}
	resp := e.do(call{method: "GET", target: "/account/sessions/", token: laptop, header: acceptJSON()})
	var out struct {
		Recent []EndedInfo `json:"recently_ended"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Recent) != 2 || out.Recent[0].Reason != "logout" || out.Recent[1].Reason != "revoked" || out.Recent[1].ID != phoneID {
		t.Fatalf("recently_ended = %+v", out.Recent)
	}
	past, _ := e.store.History(t.Context(), "alice")
	if len(past) != 2 || past[1].By != e.sessionID(laptop) {
		t.Fatalf("History = %+v: the phone's end names the laptop's session", past)
	}
	// An admin's end says who.
	e.clock.Advance(time.Minute)
	admin := e.login("admin", uaChromeWin)
	// The admin detail of a session shows its user's recently ended ones.
	detail := e.do(call{method: "GET", target: "/admin/sessions/" + e.sessionID(laptop) + "/", token: admin, header: acceptJSON()})
	var d struct {
		Recent []EndedInfo `json:"recently_ended"`
	}
	if err := json.NewDecoder(detail.Body).Decode(&d); err != nil || len(d.Recent) != 2 || d.Recent[1].ID != phoneID {
		t.Fatalf("admin detail recently_ended = %+v, %v", d.Recent, err)
	}
	html := readBody(t, e.do(call{method: "GET", target: "/admin/sessions/" + e.sessionID(laptop) + "/", token: admin}))
	if !strings.Contains(html, "Recently ended") || !strings.Contains(html, "Ended from another session") {
		t.Fatal("the admin detail page lacks Recently ended")
	}
	if resp := e.do(call{method: "POST", target: "/admin/sessions/" + e.sessionID(laptop) + "/end", token: admin, header: sameOrigin()}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin end: %d %s", resp.StatusCode, readBody(t, resp))
	}
	past, _ = e.store.History(t.Context(), "alice")
	e.clock.Advance(time.Minute)
	if len(past) != 3 || past[0].Reason != usersessions.EndAdmin || past[0].By != "admin:admin" {
		t.Fatalf("History after an admin end = %+v", past[0])
	}
}

func TestCredentialsChangedEndsOthers(t *testing.T) {
	e := newEnv(t, &usersessions.Options{History: time.Hour}, nil)
	me := e.login("alice", uaChromeWin)
	other := e.login("alice", uaSafariIOS)
	resp := e.do(call{method: "POST", target: "/password", token: me, header: sameOrigin()})
	if body := readBody(t, resp); resp.StatusCode != http.StatusOK || body != "ended 1" {
		t.Fatalf("CredentialsChanged: %d %q", resp.StatusCode, body)
	}
	c := sessionCookie(t, resp, e.m.CookieName())
	if c == nil || c.Value == me || c.Value == "" {
		t.Fatalf("no new token: %v", c)
	}
	for _, old := range []string{me, other} {
		if _, err := e.store.Load(t.Context(), old); err == nil {
			t.Fatal("an old token still loads")
		}
	}
	if _, err := e.store.Load(t.Context(), c.Value); err != nil {
		t.Fatal(err)
	}
}
