package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
)

// Every place of the demo database is found at its address, in English and
// in the other languages.
func TestDemoGeo(t *testing.T) {
	want := map[string]string{
		"zwolle": "Zwolle, Netherlands", "london": "London, United Kingdom",
		"sanfrancisco": "San Francisco, United States", "tokyo": "Tokyo, Japan",
		"saopaulo": "São Paulo, Brazil", "berlin": "Berlin, Germany",
	}
	geos, err := openGeos("", []string{"en"})
	if err != nil {
		t.Fatal(err)
	}
	defer geos.Close()
	geo := geos.def
	if len(demoPlaces) != len(want) {
		t.Errorf("%d places", len(demoPlaces))
	}
	for _, p := range demoPlaces {
		if got := geo.Location(p.Addr); got != want[p.Key] {
			t.Errorf("%s: %q, want %q", p.Key, got, want[p.Key])
		}
		if got := geo.Location(p.Addr.Prev().Prev()); p.Network.Contains(p.Addr.Prev().Prev()) && got != want[p.Key] {
			t.Errorf("%s: another address of the network: %q", p.Key, got)
		}
		info, ok := geo.LocationInfo(p.Addr)
		if !ok || info.CountryCode != p.ISO || info.TimeZone != p.TimeZone || info.Region == "" || info.Continent == "" {
			t.Errorf("%s: %+v, %v", p.Key, info, ok)
		}
		if demoPlaceByKey(p.Key) == nil {
			t.Errorf("%s not found by key", p.Key)
		}
	}
	if got := geo.Location(demoPlaces[0].Network.Addr().Prev()); got != "" {
		t.Errorf("an address outside the networks: %q", got)
	}
	if demoPlaceByKey("atlantis") != nil || demoPlaceByKey("") != nil {
		t.Error("an unknown key found a place")
	}
	// Without languages, every language of the views has its own.
	all, err := openGeos("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if len(all.byLang) != len(httpx.Languages()) || all.def != all.byLang["en"] {
		t.Errorf("the demo's database opened for %d languages, default English %v", len(all.byLang), all.def == all.byLang["en"])
	}
	for lang, w := range map[string]string{"nl": "Zwolle, Nederland", "de": "Zwolle, Niederlande", "ja": "ズヴォレ, オランダ王国", "zh-CN": "兹沃勒, 荷兰", "pt-BR": "Zwolle, Holanda"} {
		if got := all.byLang[lang].Location(demoPlaces[0].Addr); got != w {
			t.Errorf("%s: %q, want %q", lang, got, w)
		}
	}
}

// A real database (-geoip) is opened once per language of -geoip-lang,
// the first being the default; the languages are matched as the views
// match them; a missing file says so.
func TestOpenGeosFromFile(t *testing.T) {
	data, err := buildDemoGeo()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	geos, err := openGeos(path, []string{"de", "ja-JP", "ru"})
	if err != nil {
		t.Fatal(err)
	}
	defer geos.Close()
	zwolle := demoPlaces[0].Addr
	if got := geos.def.Location(zwolle); got != "Zwolle, Niederlande" {
		t.Errorf("default: %q", got)
	}
	if got := geos.byLang["ja"].Location(zwolle); got != "ズヴォレ, オランダ王国" {
		t.Errorf("ja: %q", got)
	}
	if len(geos.byLang) != 2 || len(geos.opened) != 3 {
		t.Errorf("languages %v, %d opened; want de and ja, and Russian opened but no page's", geos.byLang, len(geos.opened))
	}
	en, err := openGeos(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer en.Close()
	if len(en.opened) != 1 || en.def.Location(zwolle) != "Zwolle, Netherlands" {
		t.Errorf("a real database without languages: %d opened, %q", len(en.opened), en.def.Location(zwolle))
	}
	if _, err := openGeos(filepath.Join(t.TempDir(), "none.mmdb"), nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing database: %v", err)
	}
}

// newGeoDemo is the demo as "usersessions demo" starts it without -geoip:
// with its own GeoIP database and places.
func newGeoDemo(t *testing.T, cfg demoConfig) (*usersessions.Store, string) {
	t.Helper()
	store, err := usersessions.Open(filepath.Join(t.TempDir(), "demo.db"), &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(newDemoHandler(store, cfg))
	t.Cleanup(srv.Close)
	return store, srv.URL
}

// demoGeoConfig is the configuration "usersessions demo" runs with
// without -geoip: its own database, in every language of the views.
func demoGeoConfig(t *testing.T) demoConfig {
	geos, err := openGeos("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(geos.Close)
	return demoConfig{geo: geos.def, geoByLang: geos.byLang, places: demoPlaces}
}

// Signing in "as if from" Zwolle shows Zwolle on the sessions page, and
// keeps showing it (issue 14).
func TestDemoSignInFromPlace(t *testing.T) {
	store, base := newGeoDemo(t, demoGeoConfig(t))
	phone := newBrowser(t, base, uaIPhone)

	_, body := phone.do("GET", "/login", nil)
	for _, want := range []string{`name="from"`, `<option value="zwolle">Zwolle, Netherlands</option>`,
		`<option value="tokyo">Tokyo, Japan</option>`, "demo feature", `<option value="">Your own address</option>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the login form lacks %q", want)
		}
	}
	resp, _ := phone.do("POST", "/login", url.Values{"username": {"alice"}, "from": {"zwolle"}}, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in from Zwolle: %s", resp.Status)
	}
	for range 2 { // the next requests come "from" Zwolle too
		resp, body = phone.do("GET", "/account/sessions/", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Zwolle, Netherlands") || !strings.Contains(body, "Safari on iPhone") {
			t.Errorf("sessions page: %s\n%s", resp.Status, body)
		}
	}
	if _, body = phone.do("GET", "/", nil); !strings.Contains(body, "Zwolle, Netherlands") || !strings.Contains(body, "82.161.34.117") {
		t.Errorf("home page of a session from Zwolle:\n%s", body)
	}
	list, err := store.ListByUser(context.Background(), "alice")
	if err != nil || len(list) != 1 || list[0].IP != netip.MustParseAddr("82.161.34.117") {
		t.Fatalf("alice's sessions: %v, %v", list, err)
	}

	// Another browser at its own address: no location, and Zwolle's
	// cookie is this browser's only.
	laptop := newBrowser(t, base, uaChrome)
	laptop.login("alice")
	_, body = laptop.do("GET", "/", nil)
	if strings.Contains(body, "Zwolle") {
		t.Errorf("a session from the real address shows Zwolle:\n%s", body)
	}

	// Signing out forgets the place; signing in from another one moves.
	phone.do("POST", "/logout", nil, "Sec-Fetch-Site", "same-origin")
	if _, body = phone.do("GET", "/login", nil); strings.Contains(body, `value="zwolle" selected`) {
		t.Error("the place is still chosen after signing out")
	}
	phone.do("POST", "/login", url.Values{"username": {"alice"}, "from": {"saopaulo"}}, "Sec-Fetch-Site", "same-origin")
	if _, body = phone.do("GET", "/account/sessions/", nil); !strings.Contains(body, "São Paulo, Brazil") {
		t.Errorf("sessions page after signing in from São Paulo:\n%s", body)
	}

	// An unknown place is refused, not ignored.
	resp, body = phone.do("POST", "/login", url.Values{"username": {"alice"}, "from": {"atlantis"}}, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Choose a place from the list") {
		t.Errorf("sign in from atlantis: %s", resp.Status)
	}
	// A forged cookie with an unknown place is the real address.
	forged := newBrowser(t, base, uaChrome)
	u, _ := url.Parse(base)
	forged.client.Jar.SetCookies(u, []*http.Cookie{{Name: fromCookie, Value: "atlantis"}})
	forged.login("mallory")
	if list, _ := store.ListByUser(context.Background(), "mallory"); len(list) != 1 || !list[0].IP.IsLoopback() {
		t.Errorf("mallory's session: %v", list)
	}
}

// With a real GeoIP database (-geoip), the form offers no places and the
// field is ignored.
func TestDemoRealGeoOffersNoPlaces(t *testing.T) {
	geo, err := usersessions.OpenGeoBytes(testMMDB(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	store, base := newGeoDemo(t, demoConfig{geo: geo})
	b := newBrowser(t, base, uaIPhone)
	if _, body := b.do("GET", "/login", nil); strings.Contains(body, `name="from"`) {
		t.Error("the form offers places with a real database")
	}
	resp, _ := b.do("POST", "/login", url.Values{"username": {"alice"}, "from": {"zwolle"}}, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a place without places: %s", resp.Status)
	}
	b.login("alice")
	if list, _ := store.ListByUser(context.Background(), "alice"); len(list) != 1 || !list[0].IP.IsLoopback() {
		t.Errorf("alice's session: %v", list)
	}
}

// The demo logs a sign-in from a new device where an app would email the
// user (issue 13's newDevice), with the device and the place.
func TestDemoLogsNewSignIn(t *testing.T) {
	cfg := demoGeoConfig(t)
	var out bytes.Buffer
	hook := newSignInLogger(&out, cfg.geo)
	var london netip.Addr
	for _, p := range cfg.places {
		if p.Key == "london" {
			london = p.Addr
		}
	}
	if !london.IsValid() {
		t.Fatal("the demo's places have no London")
	}
	s := &usersessions.Session{UserID: "alice", IP: london, UserAgent: uaChrome}
	hook(context.Background(), s, false)
	if out.Len() != 0 {
		t.Fatalf("a known device was logged: %s", out.String())
	}
	hook(context.Background(), s, true)
	if got := out.String(); !strings.Contains(got, "new sign-in from Chrome on Windows in London, United Kingdom") || !strings.Contains(got, "user=alice") {
		t.Fatalf("log: %s", got)
	}
}
