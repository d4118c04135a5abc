package httpx

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/browsertest"
	"github.com/usersessions/usersessions/internal/geotest"
)

// TestBrowserSuspiciousSignIn shows a marked sign-in on the sessions page
// in Chromium at 320 and 390 CSS pixels: the mark and its "This wasn't me"
// button inside the viewport, nothing cut, no axe-core violation (with
// USERSESSIONS_AXE), in English and in German.
func TestBrowserSuspiciousSignIn(t *testing.T) {
	exe := browsertest.Chromium(t)
	axe := axeSource(t)
	data := geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{
		"192.0.2.0/24":   {City: "Amsterdam", Country: "Netherlands", CountryCode: "NL", Latitude: 52.37, Longitude: 4.89},
		"203.0.113.0/24": {City: "São Sebastião da Pedreira, Lisbon", Country: "Portugal", CountryCode: "PT", Latitude: 38.72, Longitude: -9.14},
	})
	geo, err := usersessions.OpenGeoBytes(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	store := openStore(t, &usersessions.Options{SignInCheck: &usersessions.SignInCheck{Geo: geo}})
	m := New(store, &Options{Logger: quietLogger(), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	srv := httptest.NewServer(m.Handler(testMux(m, time.Now)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()

	const user = "alexandra.papadopoulou-montgomery@example.com"
	httpLogin(t, srv.URL, user, uaFirefoxMac, "192.0.2.10")
	tab := browsertest.New(t, ctx, exe, uaChromeWin)
	browserSignIn(t, tab, srv.URL, user)
	httpLogin(t, srv.URL, user, uaSafariIOS, "203.0.113.77")

	for _, width := range []int64{320, 390} {
		for _, page := range []string{"/account/sessions/", "/account/sessions/?lang=de"} {
			if err := chromedp.Do(tab, chromedp.EmulateViewport(width, 800, chromedp.EmulateMobile),
				chromedp.Navigate(srv.URL+page), chromedp.WaitVisible(chromedp.CSS(".signin-mark a.button"))); err != nil {
				t.Fatalf("%s at %dpx: %v", page, width, err)
			}
			for _, p := range evalJS[[]string](t, tab, layoutJS) {
				t.Errorf("%s at %dpx: %s", page, width, p)
			}
			// Two marks (the browser's own sign-in is a new device too, and
			// has no button: it is the person asking), one button.
			all := evalJS[int](t, tab, `document.querySelectorAll(".signin-mark, .signin-mark a.button").length`)
			inside := evalJS[int](t, tab, `Array.from(document.querySelectorAll(".signin-mark, .signin-mark a.button")).filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth; }).length`)
			if all != 3 || inside != all {
				t.Errorf("%s at %dpx: %d of the %d marks and buttons inside the viewport, want 3 of 3", page, width, inside, all)
			}
			if axe != "" {
				vs, err := runAxe(tab, axe)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range vs {
					t.Errorf("%s at %dpx: axe %s (%s): %s %v", page, width, v.ID, v.Impact, v.Help, v.Targets)
				}
			}
			shoot(t, tab, fmt.Sprintf("httpx-signin-%d-%d.png", width, len(page)))
		}
	}
	// The button leads to the confirmation page, whose POST ends it.
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/account/sessions/"), chromedp.Click(chromedp.CSS(".signin-mark a.button")),
		chromedp.WaitVisible(chromedp.CSS("form button[type=submit]")), chromedp.Click(chromedp.CSS("form button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("p.notice"))); err != nil {
		t.Fatal(err)
	}
	if n := evalJS[int](t, tab, `document.querySelectorAll(".signin-mark a.button").length`); n != 0 {
		t.Errorf("%d report buttons after This wasn't me, want 0", n)
	}
}
