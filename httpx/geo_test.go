package httpx

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/geotest"
)

// testGeo builds a tiny GeoIP2-City database placing 198.51.100.0/24 in
// Berlin.
func testGeo(t *testing.T) *usersessions.Geo {
	t.Helper()
	data := geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{
		"198.51.100.0/24": {City: "Berlin", Country: "Germany", CountryCode: "DE"}})
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
	if !strings.Contains(body, `<span class="place">Berlin, Germany</span> · <span class="ip">`+string(breakable("198.51.100.9"))+`</span>`) {
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

// multiGeo builds a City database placing 198.51.100.0/24 in Berlin with
// English, German and Japanese names, a region, a continent, a time zone
// and coordinates, and opens it with langs first.
func multiGeo(t *testing.T, langs ...string) *usersessions.Geo {
	t.Helper()
	names := func(en, de, ja string) map[string]string {
		return map[string]string{"en": en, "de": de, "ja": ja}
	}
	data := geotest.BuildWith(t, mmdbwriter.Options{DatabaseType: "GeoIP2-City", Languages: []string{"en", "de", "ja"}},
		map[string]geotest.Entry{"198.51.100.0/24": {
			CityNames:      names("Berlin", "Berlin", "ベルリン"),
			RegionNames:    names("Land Berlin", "Land Berlin", "ベルリン州"),
			CountryNames:   names("Germany", "Deutschland", "ドイツ"),
			CountryCode:    "DE",
			ContinentNames: names("Europe", "Europa", "ヨーロッパ"),
			ContinentCode:  "EU",
			TimeZone:       "Europe/Berlin",
			Latitude:       52.52, Longitude: 13.405,
		}})
	g, err := usersessions.OpenGeoBytes(data, &usersessions.GeoOptions{Languages: langs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestLocationsInThePageLanguage(t *testing.T) {
	e := newEnv(t, nil, nil)
	resp := e.do(call{method: "POST", target: "/login", remote: "198.51.100.9:1", ua: uaChromeWin, form: url.Values{"user": {"alice"}}})
	tok := sessionCookie(t, resp, "session").Value
	byLang := map[string]*usersessions.Geo{"de-DE": multiGeo(t, "de"), "ja": multiGeo(t, "ja")}
	h := e.m.SessionsHandler(&ViewOptions{Geo: multiGeo(t), GeoByLanguage: byLang, Now: e.clock.Now})
	for lang, want := range map[string]string{"de": "Berlin, Deutschland", "ja": "ベルリン, ドイツ", "fr": "Berlin, Germany", "en": "Berlin, Germany"} {
		body := readBody(t, serve(t, h, "session", call{method: "GET", target: "/", token: tok, remote: "198.51.100.9:1", header: http.Header{"Accept-Language": {lang}}}))
		if !strings.Contains(body, `<span class="place">`+want+"</span> · ") {
			t.Errorf("%s: no %q:\n%s", lang, want, body)
		}
	}
	// JSON keeps the default Geo's names.
	body := readBody(t, serve(t, h, "session", call{method: "GET", target: "/", token: tok, remote: "198.51.100.9:1", header: http.Header{"Accept-Language": {"de"}, "Accept": {"application/json"}}}))
	if !strings.Contains(body, `"location":"Berlin, Germany"`) {
		t.Errorf("JSON: %s", body)
	}
}
