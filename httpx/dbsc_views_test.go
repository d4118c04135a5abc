package httpx

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
)

func TestDBSCSessionsListShowsBound(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	bound := b.signInBound("alice").SessionIdentifier
	plain := e.sessionID(e.login("alice", uaFirefoxMac))

	resp := b.request("GET", "/account/sessions/", acceptJSON(), nil)
	var list struct{ Sessions []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Sessions) != 2 {
		t.Fatalf("JSON list: %v %v", list, err)
	}
	for _, s := range list.Sessions {
		if want := s["id"] == bound; s["device_bound"] != want {
			t.Errorf("session %v: device_bound %v, want %v", s["id"], s["device_bound"], want)
		}
	}
	for _, lang := range Languages() {
		label := catalogFor(lang).T("badge.bound")
		if label == "" || label == "badge.bound" {
			t.Fatalf("%s: no label", lang)
		}
		body := readBody(t, b.request("GET", "/account/sessions/?lang="+lang, nil, nil))
		_, rest, _ := strings.Cut(body, `data-session="`+bound+`"`)
		boundItem, _, _ := strings.Cut(rest, "</li>")
		_, rest, _ = strings.Cut(body, `data-session="`+plain+`"`)
		plainItem, _, _ := strings.Cut(rest, "</li>")
		if !strings.Contains(html.UnescapeString(boundItem), label) {
			t.Errorf("%s: the bound session lacks %q:\n%s", lang, label, boundItem)
		}
		if plainItem == "" || strings.Contains(html.UnescapeString(plainItem), label) {
			t.Errorf("%s: the other session says %q (or is missing):\n%s", lang, label, plainItem)
		}
	}
}

// TestDBSCSecretNotShownToAdmins: the admin detail page does not show a
// bound session's DBSC secret, which with a stolen session cookie would
// mint bound cookies (it leaves out every reserved "httpx." value).
func TestDBSCSecretNotShownToAdmins(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	id := b.signInBound("alice").SessionIdentifier
	secret := sessionSecret(storedSession(t, e, b))
	admin := e.login("admin", uaFirefoxMac)
	for _, h := range []http.Header{acceptJSON(), nil} {
		body := readBody(t, e.do(call{method: "GET", target: "/admin/sessions/" + id + "/", token: admin, header: h}))
		for _, enc := range []string{base64.StdEncoding.EncodeToString(secret), fmt.Sprint(secret)} {
			if strings.Contains(body, enc) {
				t.Errorf("admin detail shows the DBSC secret:\n%s", body)
			}
		}
		if !strings.Contains(body, id) {
			t.Errorf("admin detail is not the session's:\n%s", body)
		}
	}
}
