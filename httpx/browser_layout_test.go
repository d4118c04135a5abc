package httpx

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/browsertest"
	"github.com/usersessions/usersessions/internal/geotest"
)

// longIPv6 is an address without a run of zeros to shorten it: the
// longest an IPv6 address gets in the views.
const longIPv6 = "2001:db8:85a3:1234:5678:8a2e:370:7334"

// longPlaceGeo places 2001:db8::/32 in a city, region and time zone with
// long names, and 198.51.100.0/24 in Berlin.
func longPlaceGeo(t *testing.T) *usersessions.Geo {
	t.Helper()
	data := geotest.Build(t, "GeoIP2-City", map[string]geotest.Entry{
		"2001:db8::/32": {
			City: "San Fernando del Valle de Catamarca", Region: "Ciudad Autónoma de Buenos Aires",
			Country: "Argentina", CountryCode: "AR", Continent: "South America",
			TimeZone: "America/Argentina/Buenos_Aires", Latitude: -28.4696, Longitude: -65.7852,
		},
		"198.51.100.0/24": {City: "Berlin", Country: "Germany", CountryCode: "DE"},
	})
	g, err := usersessions.OpenGeoBytes(data, &usersessions.GeoOptions{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// layoutJS lists what a person on a narrow screen could not see: element
// boxes reaching past the viewport's left or right edge, and boxes whose
// content is cut (scrollWidth beyond clientWidth, as a scrolling table
// hides its columns). Visually hidden text (inside a 1px box that hides
// its overflow) does not count.
const layoutJS = `(() => {
  const vw = document.documentElement.clientWidth, out = [];
  const name = e => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.trim().replace(/\s+/g, ".") : "") + (e.textContent ? " “" + e.textContent.trim().replace(/\s+/g, " ").slice(0, 40) + "”" : "");
  const clipped = e => { for (let p = e; p; p = p.parentElement) { const r = p.getBoundingClientRect(); if (r.width <= 1 && r.height <= 1 && getComputedStyle(p).overflow === "hidden") return true; } return false; };
  for (const e of document.querySelectorAll("body *")) {
    if (e.closest("[hidden], script, style") || clipped(e)) continue;
    const r = e.getBoundingClientRect();
    if (r.width <= 1 && r.height <= 1) continue;
    if (r.left < -0.5 || r.right > vw + 0.5) out.push(name(e) + " spans " + Math.round(r.left) + ".." + Math.round(r.right) + " of " + vw);
    const st = getComputedStyle(e);
    if (st.display !== "inline" && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0) out.push(name(e) + " cuts its content: " + e.scrollWidth + " > " + e.clientWidth);
  }
  return out;
})()`

// breaksJS lists the values in the elements matching the selector that a
// line break splits in the middle of a word: a line may only end after a
// space or a separator (: . / _ , - @), as IP addresses, place names and
// time zones are read.
const breaksJS = `((sel) => {
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    const w = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let top = null, prev = "";
    for (let n = w.nextNode(); n; n = w.nextNode()) {
      for (let i = 0; i < n.data.length; i++) {
        const r = document.createRange();
        r.setStart(n, i); r.setEnd(n, i + 1);
        const rects = r.getClientRects();
        if (!rects.length || /\s/.test(n.data[i])) { prev = n.data[i]; continue; }
        const t = rects[0].top;
        if (top !== null && t > top + 2 && !/[\s:.\/_,\-·@]/.test(prev)) out.push(JSON.stringify(el.textContent.trim()) + " breaks after " + JSON.stringify(prev) + " at " + i);
        top = t; prev = n.data[i];
      }
    }
  }
  return out;
})`

// TestBrowserNarrowLayout (issue 18 items 11 and 12) loads the admin list,
// the admin detail, the user's sessions page, the confirmation pages and
// an error page at 320 and 390 CSS pixels, with a long IPv6 address, long
// place and zone names and long user IDs, and measures the layout: every
// element box inside the viewport, nothing cut by a scrolling box, every
// row's actions visible, and addresses, places and zones wrapped only at
// separators. At 1280 px the admin table shows whole. The "Recently
// ended" titles look like the active sessions' titles.
func TestBrowserNarrowLayout(t *testing.T) {
	exe := browsertest.Chromium(t)
	store := openStore(t, &usersessions.Options{History: time.Hour})
	m := New(store, &Options{Logger: quietLogger(), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	geo := longPlaceGeo(t)
	mux := http.NewServeMux()
	mux.Handle("/", testMux(m, time.Now))
	mux.Handle("/geo/account/sessions/", m.SessionsHandler(&ViewOptions{Geo: geo}))
	mux.Handle("/geo/admin/sessions/", m.AdminHandler(&AdminOptions{Geo: geo, Allow: func(r *http.Request) bool {
		return strings.HasPrefix(FromContext(r.Context()).UserID, "admin")
	}}))
	srv := httptest.NewServer(m.Handler(mux))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()

	const admin = "admin.konstantinopoulou@example.com"
	tab := browsertest.New(t, ctx, exe, uaChromeWin)
	browserSignIn(t, tab, srv.URL, admin)
	phone := httpLogin(t, srv.URL, admin, uaSafariIOS, longIPv6)
	httpLogin(t, srv.URL, admin, uaFirefoxMac, "198.51.100.7")
	gone := httpLogin(t, srv.URL, admin, uaFirefoxMac, "2001:db8:ffff:eeee:dddd:cccc:bbbb:aaaa")
	httpLogin(t, srv.URL, "alexandra.papadopoulou-montgomery@example.com", uaFirefoxMac, longIPv6)
	httpLogin(t, srv.URL, "bob", uaChromeWin, "198.51.100.8")
	setReq, _ := http.NewRequest("POST", srv.URL+"/set", strings.NewReader(url.Values{"k": {"cart_items_after_the_last_checkout"}, "v": {"three books, a lamp and a very long note about delivery times"}}.Encode()))
	setReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	setReq.Header.Set("User-Agent", uaSafariIOS)
	setReq.Header.Set("X-Forwarded-For", longIPv6)
	setReq.AddCookie(&http.Cookie{Name: "session", Value: phone})
	if resp, err := http.DefaultClient.Do(setReq); err != nil || resp.StatusCode != 200 {
		t.Fatalf("setting a value: %v", err)
	}
	phoneSess, err := store.Load(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}
	goneSess, err := store.Load(t.Context(), gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EndForUser(t.Context(), admin, goneSess.ID, usersessions.EndOptions{Reason: usersessions.EndRevoked}); err != nil {
		t.Fatal(err)
	}

	pages := []string{
		"/geo/admin/sessions/?state=all",
		"/geo/admin/sessions/?state=all&lang=de",
		"/geo/admin/sessions/?state=all&lang=ja",
		"/geo/admin/sessions/" + phoneSess.ID + "/",
		"/geo/admin/sessions/" + phoneSess.ID + "/?lang=de",
		"/geo/admin/sessions/" + phoneSess.ID + "/end",
		"/geo/account/sessions/",
		"/geo/account/sessions/?lang=fr",
		"/geo/account/sessions/end-others",
		"/geo/account/sessions/nothing",
	}
	for _, width := range []int64{320, 390} {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(width, 800, chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
		for _, page := range pages {
			if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+page), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			for _, p := range evalJS[[]string](t, tab, layoutJS) {
				t.Errorf("%s at %dpx: %s", page, width, p)
			}
			for _, b := range evalJS[[]string](t, tab, breaksJS+`(".ip, .place, .user, section[aria-labelledby=h-network] dd, td:nth-child(2), td:nth-child(4), td:nth-child(5)")`) {
				t.Errorf("%s at %dpx: %s", page, width, b)
			}
			if strings.HasPrefix(page, "/geo/admin/sessions/?") {
				// Every row's Details and End, whole, on screen.
				rows := evalJS[int](t, tab, `document.querySelectorAll("tr[data-session]").length`)
				shown := evalJS[int](t, tab, `Array.from(document.querySelectorAll("tr[data-session] .row-actions .button")).filter(b => { const r = b.getBoundingClientRect(); return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth; }).length`)
				if rows < 5 || shown != 2*rows {
					t.Errorf("%s at %dpx: %d of the %d rows' action buttons on screen", page, width, shown, 2*rows)
				}
			}
			shoot(t, tab, fmt.Sprintf("httpx-layout-%d-%s.png", width, strings.NewReplacer(phoneSess.ID, "detail", "/", "_", "?", "_", "&", "_", "=", "-").Replace(strings.Trim(page[len("/geo/"):], "/"))))
		}
	}

	// From 1210 px (just above where the cards end) the admin list is a
	// table, shown whole in every language; on a tablet, cards.
	for _, width := range []int64{800, 1210, 1280} {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(width, 800)); err != nil {
			t.Fatal(err)
		}
		for _, lang := range []string{"en", "de", "ja", "fr"} {
			if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/geo/admin/sessions/?state=all&lang="+lang), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
				t.Fatal(err)
			}
			for _, p := range evalJS[[]string](t, tab, layoutJS) {
				t.Errorf("admin list, %s, at %dpx: %s", lang, width, p)
			}
			want := map[bool]string{true: "table", false: "block"}[width > 1200]
			if display := evalJS[string](t, tab, `getComputedStyle(document.querySelector("#bulk table")).display`); display != want {
				t.Errorf("admin list, %s, at %dpx: the table is display: %s, want %s", lang, width, display, want)
			}
			if lang == "de" {
				shoot(t, tab, fmt.Sprintf("httpx-layout-%d-admin_sessions_de.png", width))
			}
		}
	}

	// "Recently ended" titles are styled like the active sessions' titles.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(390, 800, chromedp.EmulateMobile), chromedp.Navigate(srv.URL+"/geo/account/sessions/"), chromedp.WaitVisible(chromedp.CSS("ul.ended .device"))); err != nil {
		t.Fatal(err)
	}
	const styleJS = `((sel) => { const s = getComputedStyle(document.querySelector(sel)); return [s.fontSize, s.fontWeight, s.lineHeight, s.marginTop, s.marginBottom].join(" "); })`
	active := evalJS[string](t, tab, styleJS+`("li.session.current .device")`)
	ended := evalJS[string](t, tab, styleJS+`("ul.ended .device")`)
	if active != ended {
		t.Errorf("Recently ended titles (size, weight, line height, margins) %q, active sessions' titles %q", ended, active)
	}
	shoot(t, tab, "httpx-layout-recently-ended-390.png")

	// The notice after ending a session, and the page of a browser whose
	// session has ended, at 320 px.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(320, 800, chromedp.EmulateMobile),
		chromedp.Click(chromedp.CSS("li.session:not(.current) button.end")), chromedp.WaitVisible(chromedp.CSS(".notice"))); err != nil {
		t.Fatal(err)
	}
	for _, p := range evalJS[[]string](t, tab, layoutJS) {
		t.Errorf("the notice at 320px: %s", p)
	}
	current := evalJS[string](t, tab, `document.querySelector("li.session.current").dataset.session`)
	if err := store.End(t.Context(), current, usersessions.EndOptions{Reason: usersessions.EndAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/geo/account/sessions/?"+strings.Repeat("x", 3000)), chromedp.WaitVisible(chromedp.CSS("a.button.primary"))); err != nil {
		t.Fatal(err)
	}
	for _, p := range evalJS[[]string](t, tab, layoutJS) {
		t.Errorf("the ended page at 320px: %s", p)
	}
	if href := evalJS[string](t, tab, `document.querySelector("a.button.primary").getAttribute("href")`); href != "/login?next=%2Fgeo%2Faccount%2Fsessions%2F" {
		t.Errorf("the ended page of a long URL leads to %q", href)
	}
}

// evalJS evaluates js in the tab and returns its value.
func evalJS[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%.60s: %v", js, err)
	}
	return v
}
