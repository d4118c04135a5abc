package httpx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/usersessions/usersessions/internal/browsertest"
	"github.com/usersessions/usersessions/internal/needs"
)

// axeSource returns axe-core's axe.min.js from the file named by
// USERSESSIONS_AXE, or "" (the accessibility checks are skipped, with a
// message) when it is unset outside CI. Under CI=true it must be set.
func axeSource(t *testing.T) string {
	t.Helper()
	path := os.Getenv("USERSESSIONS_AXE")
	if path == "" {
		if needs.CI() {
			t.Fatal("CI=true but USERSESSIONS_AXE is unset: .ci/run must install axe-core (npm install axe-core) and point USERSESSIONS_AXE at node_modules/axe-core/axe.min.js")
		}
		t.Log("USERSESSIONS_AXE is unset: skipping the axe-core checks (npm install axe-core, then USERSESSIONS_AXE=$PWD/node_modules/axe-core/axe.min.js)")
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("USERSESSIONS_AXE: %v", err)
	}
	return string(b)
}

// axeViolation is what the test reports of one axe-core violation.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
	Summary string   `json:"summary"`
}

// runAxe injects axe-core into the page (if not there yet) and returns the
// violations of WCAG 2.0, 2.1 and 2.2 A and AA rules and best practices.
func runAxe(ctx context.Context, src string) ([]axeViolation, error) {
	if has, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`)); err != nil {
		return nil, err
	} else if !has {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](src+"\n;true")); err != nil {
			return nil, fmt.Errorf("injecting axe-core: %w", err)
		}
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
		resultTypes: ["violations"]
	}).then(r => JSON.stringify(r.passes.length === 0 ? [{id: "no-rules-ran", help: "axe-core checked nothing"}] : r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help,
		targets: v.nodes.map(n => n.target.join(" ")),
		summary: v.nodes.map(n => n.failureSummary).join(" | ")
	}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, err
	}
	var vs []axeViolation
	err = json.Unmarshal([]byte(out), &vs)
	return vs, err
}

// borderContrastJS lists the inputs, selects and buttons whose border
// contrasts less than 3:1 with the background around them (WCAG 1.4.11,
// which axe-core does not check). Check boxes are drawn by the browser.
const borderContrastJS = `(() => {
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const bgOf = e => { for (let p = e.parentElement; p; p = p.parentElement) { const c = rgb(getComputedStyle(p).backgroundColor); if (c.length === 3 || c[3] > 0) return c; } return [255, 255, 255]; };
  const weak = [];
  for (const e of document.querySelectorAll("input:not([type=hidden]):not([type=checkbox]), select, button, a.button")) {
    const st = getComputedStyle(e);
    if (e.offsetParent === null || parseFloat(st.borderTopWidth) === 0) continue;
    const r = ratio(rgb(st.borderTopColor), bgOf(e));
    if (r < 3) weak.push(e.tagName + "." + e.className + " " + (e.textContent || e.name).trim() + ": " + r.toFixed(2));
  }
  return weak;
})()`

// shoot keeps a screenshot of the page as a test artifact, in
// USERSESSIONS_ARTIFACTS when set.
func shoot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	dir := os.Getenv("USERSESSIONS_ARTIFACTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// colorScheme emulates prefers-color-scheme.
func colorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	})
}

// browserSignIn signs user in through the test app's sign-in form, in tab,
// and waits for the sessions page it leads to.
func browserSignIn(t *testing.T, tab context.Context, base, user string) {
	t.Helper()
	if err := chromedp.Do(tab,
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("li.session.current")),
	); err != nil {
		t.Fatalf("signing in %s: %v", user, err)
	}
}

// httpLogin signs user in outside the browsers, as another device, from
// the address forwarded (through a trusted proxy's X-Forwarded-For) when
// not "", and returns the session token.
func httpLogin(t *testing.T, base, user, ua, forwarded string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"user": {user}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", ua)
	if forwarded != "" {
		req.Header.Set("X-Forwarded-For", forwarded)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := sessionCookie(t, resp, "session")
	if resp.StatusCode != http.StatusSeeOther || c == nil {
		t.Fatalf("login %s: %d", user, resp.StatusCode)
	}
	return c.Value
}

// TestBrowserPagesAccessible signs in with real browsers and checks every
// page of the views (the list, the confirmation pages, the admin list,
// detail and confirmation, the ended page, the 403 and 404 pages), in
// English and German, at 320, 390 and 1280 CSS pixels, light and dark: no
// horizontal overflow and, with axe-core, no accessibility violation.
// Along the way it walks the flows: ending the other sessions through
// their confirmation, the notice, the ended device's message, and the
// admin's select-all box.
func TestBrowserPagesAccessible(t *testing.T) {
	exe := browsertest.Chromium(t)
	axe := axeSource(t)

	store := openStore(t, nil)
	m := New(store, &Options{Logger: quietLogger()})
	srv := httptest.NewServer(m.Handler(testMux(m, time.Now)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()

	a := browsertest.New(t, ctx, exe, uaChromeWin)  // the admin, in English
	b := browsertest.New(t, ctx, exe, uaFirefoxMac) // the admin's other device
	de := browsertest.New(t, ctx, exe, uaSafariIOS) // alice, in German
	if err := chromedp.Do(de, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "de-DE,de;q=0.9"}})
		return err
	})); err != nil {
		t.Fatal(err)
	}
	signIn := func(tab context.Context, user string) {
		t.Helper()
		browserSignIn(t, tab, srv.URL, user)
	}
	signIn(a, "admin")
	signIn(b, "admin")
	signIn(de, "alice")
	httpLogin(t, srv.URL, "alice", uaFirefoxMac, "")
	httpLogin(t, srv.URL, "bob", uaChromeWin, "")

	attr := func(tab context.Context, js string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	if err := chromedp.Do(a, chromedp.Navigate(srv.URL+"/account/sessions/"), chromedp.WaitVisible(chromedp.CSS("li.session.current"))); err != nil {
		t.Fatal(err)
	}
	otherID := attr(a, `document.querySelector("li.session:not(.current)").dataset.session`)
	if err := chromedp.Do(a, chromedp.Navigate(srv.URL+"/admin/sessions/?user=bob"), chromedp.WaitVisible(chromedp.CSS("tr[data-session]"))); err != nil {
		t.Fatal(err)
	}
	bobID := attr(a, `document.querySelector("tr[data-session]").dataset.session`)

	pages := []string{
		"/account/sessions/",
		"/account/sessions/end-others",
		"/account/sessions/end-all",
		"/account/sessions/" + otherID + "/end",
		"/admin/sessions/",
		"/admin/sessions/?state=all&q=203.0.113.0%2F33",
		"/admin/sessions/?select=all",
		"/admin/sessions/" + bobID + "/",
		"/admin/sessions/" + bobID + "/end",
		"/admin/sessions/?lang=ja",               // long words without spaces
		"/admin/sessions/" + bobID + "/?lang=de", // long German labels
	}
	dePages := []string{"/account/sessions/", "/account/sessions/end-others", "/account/sessions/end-all",
		"/admin/sessions/",       // alice is no admin: the 403 page
		"/account/sessions/nope"} // the 404 page

	// check loads a page and checks it in both color schemes.
	check := func(tab context.Context, who, page string, width int64, withAxe bool) {
		t.Helper()
		if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+page), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatalf("%s %s: %v", who, page, err)
		}
		for _, scheme := range []string{"light", "dark"} {
			if err := chromedp.Do(tab, colorScheme(scheme)); err != nil {
				t.Fatal(err)
			}
			over, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
			if err != nil || over > 0 {
				wide, _ := chromedp.Run(tab, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).slice(0, 5).concat(Array.from(document.querySelectorAll(".table-wrap, main, form#bulk"))).map(e => e.tagName + ":" + e.scrollWidth + "/" + e.clientWidth + ":" + getComputedStyle(e).overflowX + ":" + e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join(", ")`))
				t.Errorf("%s %s at %dpx, %s: %d px of horizontal overflow (%v): %s", who, page, width, scheme, over, err, wide)
			}
			if weak, err := chromedp.Run(tab, chromedp.Evaluate[[]string](borderContrastJS)); err != nil || len(weak) > 0 {
				t.Errorf("%s %s at %dpx, %s: control borders under 3:1 (WCAG 1.4.11): %v %v", who, page, width, scheme, weak, err)
			}
			if !withAxe || axe == "" {
				continue
			}
			vs, err := runAxe(tab, axe)
			if err != nil {
				t.Fatalf("axe on %s: %v", page, err)
			}
			for _, v := range vs {
				t.Errorf("axe, %s %s at %dpx, %s: %s (%s) %s: %v — %s", who, page, width, scheme, v.ID, v.Impact, v.Help, v.Targets, v.Summary)
			}
		}
	}
	for _, width := range []int64{320, 390, 1280} {
		opts := []chromedp.EmulateViewportOption{}
		if width < 1000 {
			opts = append(opts, chromedp.EmulateMobile)
		}
		for _, tab := range []context.Context{a, de} {
			if err := chromedp.Do(tab, chromedp.EmulateViewport(width, 800, opts...)); err != nil {
				t.Fatal(err)
			}
		}
		withAxe := true // at every width: the admin list is cards at 320 and 390, a table at 1280
		for _, p := range pages {
			check(a, "admin", p, width, withAxe)
			if width != 320 && (p == "/admin/sessions/" || strings.HasSuffix(p, "/?lang=de")) {
				shoot(t, a, fmt.Sprintf("httpx-admin%s-%d.png", map[bool]string{true: "-detail-de"}[strings.HasSuffix(p, "/?lang=de")], width))
			}
		}
		for _, p := range dePages {
			check(de, "alice (de)", p, width, withAxe)
		}
	}

	// The German browser's pages are German; its flow runs on a phone
	// (390 px), the admin's on a desktop (1280 px).
	if err := chromedp.Do(de, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(srv.URL+"/account/sessions/"), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	if lang := attr(de, `document.documentElement.lang`); lang != "de" {
		t.Errorf("German browser: <html lang=%q>", lang)
	}
	if h1 := attr(de, `document.querySelector("h1").textContent`); h1 != "Ihre Sitzungen" {
		t.Errorf("German browser: h1 %q", h1)
	}
	if d := attr(de, `document.querySelector("li.session.current h2").textContent`); !strings.HasPrefix(d, "Safari unter iPhone") {
		t.Errorf("German device %q", d)
	}
	// alice ends her other session through the confirmation page, in German.
	if err := chromedp.Do(de,
		chromedp.Click(chromedp.CSS(`a[href="end-others"]`)),
		chromedp.WaitVisible(chromedp.CSS("form button.danger")),
	); err != nil {
		t.Fatal(err)
	}
	if h1 := attr(de, `document.querySelector("h1").textContent`); h1 != "Alle anderen Sitzungen beenden?" {
		t.Errorf("German confirmation %q", h1)
	}
	if err := chromedp.Do(de, chromedp.Click(chromedp.CSS("form button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice"))); err != nil {
		t.Fatal(err)
	}
	if n := attr(de, `document.querySelector(".notice").textContent`); n != "1 Sitzung beendet." {
		t.Errorf("German notice %q", n)
	}

	// The admin's select-all box runs under the page's CSP.
	if err := chromedp.Do(a, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(srv.URL+"/admin/sessions/"), chromedp.WaitVisible(chromedp.CSS("#select-all"))); err != nil {
		t.Fatalf("select-all box not shown (script blocked?): %v", err)
	}
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS("#select-all"))); err != nil {
		t.Fatal(err)
	}
	if got := attr(a, `String(document.querySelectorAll("#bulk input[name=id]:checked").length) + "/" + document.querySelectorAll("#bulk input[name=id]").length`); got != "4/4" {
		t.Errorf("select all checked %s", got)
	}
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS(`#bulk tbody input[name=id]`))); err != nil {
		t.Fatal(err)
	}
	if ind := attr(a, `String(document.getElementById("select-all").indeterminate)`); ind != "true" {
		t.Errorf("select-all box not indeterminate after unchecking one: %s", ind)
	}

	// The admin ends the other sessions (B's) through the confirmation.
	if err := chromedp.Do(a,
		chromedp.Navigate(srv.URL+"/account/sessions/"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="end-others"]`)),
		chromedp.Click(chromedp.CSS(`a[href="end-others"]`)),
		chromedp.WaitVisible(chromedp.CSS("form button.danger")),
	); err != nil {
		t.Fatal(err)
	}
	if h1 := attr(a, `document.querySelector("h1").textContent`); h1 != "End all other sessions?" {
		t.Errorf("confirmation %q", h1)
	}
	if err := chromedp.Do(a, chromedp.Click(chromedp.CSS("form button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice"))); err != nil {
		t.Fatal(err)
	}
	if n := attr(a, `document.querySelector(".notice").textContent`); n != "1 session ended." {
		t.Errorf("notice %q", n)
	}

	// B is told its session has ended; that page passes too.
	for _, width := range []int64{320, 390, 1280} {
		if err := chromedp.Do(b, chromedp.EmulateViewport(width, 800)); err != nil {
			t.Fatal(err)
		}
		check(b, "ended device", "/account/sessions/", width, true)
		if h1 := attr(b, `document.querySelector("h1").textContent`); h1 != "Your session has ended" {
			t.Fatalf("ended device sees %q", h1)
		}
		// The cookie is gone after the first view: sign in again and end again.
		if width != 1280 {
			signIn(b, "admin")
			if err := chromedp.Do(a, chromedp.Navigate(srv.URL+"/account/sessions/end-others"), chromedp.WaitVisible(chromedp.CSS("form button.danger")),
				chromedp.Click(chromedp.CSS("form button.danger")), chromedp.WaitVisible(chromedp.CSS(".notice"))); err != nil {
				t.Fatal(err)
			}
		}
	}
}
