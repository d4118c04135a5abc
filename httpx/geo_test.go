package httpx

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/geotest"
)

// testGeo builds a tiny GeoIP2-City database placing 198.51.100.0/24 in
// Berlin.
func testGeo(t *testing.T) *usersessions.Geo {
	t.Helper()
	data := geotest.City(t, "198.51.100.0/24", "Berlin", "Germany", "DE")
	g, err := usersessions.OpenGeoBytes(data, &usersessions.GeoOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestViewsShowLocation(t *testing.T) {
	e := newEnv(t, nil, nil)
	geo := testGeo(t)
	resp := e.do(call{method: "POST", target: "/login", remote: "198.51.100.9:1", ua: uaChromeWin, form: url.Values{"user": {"alice"}}})
	tok := sessionCookie(t, resp, "session").Value
	h := e.m.SessionsHandler(&ViewOptions{Geo: geo, Now: e.clock.Now})

	body := readBody(t, serve(t, h, "session", call{method: "GET", target: "/", token: tok, remote: "198.51.100.9:1"}))
	if !strings.Contains(body, "Berlin, Germany · <span class=\"ip\">198.51.100.9</span>") {
		t.Fatalf("no location in HTML:\n%s", body)
	}
	var got sessionsJSON
	resp = serve(t, h, "session", call{method: "GET", target: "/", token: tok, remote: "198.51.100.9:1", header: acceptJSON()})
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sessions) != 1 || got.Sessions[0].Location != "Berlin, Germany" || got.Sessions[0].IP != "198.51.100.9" {
		t.Fatalf("JSON %+v", got.Sessions)
	}
	loc := FuncMap(geo, nil)["location"].(func(any) string)
	if loc("198.51.100.1") != "Berlin, Germany" || loc("203.0.113.1") != "" || loc("not an ip") != "" {
		t.Fatal("location func")
	}
}
