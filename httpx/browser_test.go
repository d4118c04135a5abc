package httpx

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersessions/usersessions"
)

// findChromium returns the path of a Chromium or Chrome binary, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser starts a headless Chromium with its own profile (so its own
// cookie jar) and user agent, and returns a tab context.
func browser(t *testing.T, ctx context.Context, exe, ua string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.UserAgent(ua),
		chromedp.WindowSize(1000, 900),
	}, extra...)...,
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(tab); err != nil { // start the browser now
		t.Fatalf("starting %s: %v", exe, err)
	}
	return tab
}

// TestBrowserEndOtherSession drives two real browsers: both sign in as the
// same user with different user agents, the first sees both sessions and
// ends the other one, and the second is signed out on its next request.
func TestBrowserEndOtherSession(t *testing.T) {
	exe := findChromium()
	if exe == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but no Chromium found (chromium, chromium-browser, google-chrome): .ci/run must install Debian's chromium package")
		}
		t.Skip("skipping the real-browser test: no Chromium found (install Debian's chromium package to run it)")
	}
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("skipping the real-browser test in -short mode")
	}

	store := openStore(t, &usersessions.Options{History: time.Hour})
	m := New(store, &Options{Logger: quietLogger()})
	srv := httptest.NewServer(m.Handler(testMux(m, time.Now))) // 127.0.0.1 only
	defer srv.Close()

	// Nothing may hang: every browser lives inside this deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	const uaA = uaChromeWin
	const uaB = uaFirefoxMac
	a := browser(t, ctx, exe, uaA)
	b := browser(t, ctx, exe, uaB)

	browserSignIn(t, a, srv.URL, "alice")
	browserSignIn(t, b, srv.URL, "alice")

	// A reloads its list: two sessions, both devices, one marked current.
	if err := chromedp.Do(a,
		chromedp.Navigate(srv.URL+"/account/sessions/"),
		chromedp.WaitVisible(chromedp.CSS("li.session.current")),
	); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(a, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Your sessions", "alice", "Chrome on Windows", "Firefox on macOS", "This session", "End all other sessions", "127.0.0.1"} {
		if !strings.Contains(text, want) {
			t.Errorf("A's page lacks %q:\n%s", want, text)
		}
	}
	n, err := chromedp.Run(a, chromedp.Evaluate[int](`document.querySelectorAll("li.session[data-session]").length`))
	if err != nil || n != 2 {
		t.Fatalf("A sees %d sessions (%v), want 2", n, err)
	}
	current, err := chromedp.Run(a, chromedp.Text(chromedp.CSS("li.session.current h2")))
	if err != nil || !strings.Contains(current, "Chrome on Windows") {
		t.Fatalf("current session is %q (%v)", current, err)
	}

	// Keep screenshots as test artifacts: desktop and phone widths.
	dir := os.Getenv("USERSESSIONS_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shoot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(a, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of A's sessions page: %s", path)
	}
	shoot("httpx-sessions.png")
	if err := chromedp.Do(a, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	shoot("httpx-sessions-phone.png")
	// Nothing may scroll sideways on the narrowest phones (320 CSS px):
	// the list and the confirmation pages.
	if err := chromedp.Do(a, chromedp.EmulateViewport(320, 640, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"/account/sessions/", "/account/sessions/end-others", "/account/sessions/end-all"} {
		if err := chromedp.Do(a, chromedp.Navigate(srv.URL+page), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
			t.Fatal(err)
		}
		over, err := chromedp.Run(a, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if err != nil || over > 0 {
			t.Errorf("%s at 320px: %d px of horizontal overflow (%v)", page, over, err)
		}
		if page == "/account/sessions/end-others" {
			shoot("httpx-confirm-320.png")
		}
	}
	if err := chromedp.Do(a, chromedp.Navigate(srv.URL+"/account/sessions/"), chromedp.WaitVisible(chromedp.CSS("li.session.current"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(a, chromedp.EmulateViewport(1000, 900)); err != nil {
		t.Fatal(err)
	}

	// A ends B's session with its button (a same-origin form POST).
	if err := chromedp.Do(a,
		chromedp.Click(chromedp.CSS("li.session:not(.current) button.end")),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	); err != nil {
		t.Fatalf("ending B's session: %v", err)
	}
	notice, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(".notice")))
	if err != nil || !strings.Contains(notice, "1 session ended") {
		t.Fatalf("notice %q (%v)", notice, err)
	}
	if n, err := chromedp.Run(a, chromedp.Evaluate[int](`document.querySelectorAll("li.session[data-session]").length`)); err != nil || n != 1 {
		t.Fatalf("A sees %d sessions after ending B (%v)", n, err)
	}
	// ... and sees it under "Recently ended", with who ended it.
	recent, err := chromedp.Run(a, chromedp.Text(chromedp.CSS("ul.ended")))
	if err != nil || !strings.Contains(recent, "Firefox on macOS") || !strings.Contains(recent, "Ended from another session") {
		t.Fatalf("Recently ended: %q (%v)", recent, err)
	}

	// B's next request is anonymous: the views say the session has ended
	// and lead to the login page, with the way back.
	if err := chromedp.Do(b,
		chromedp.Navigate(srv.URL+"/account/sessions/"),
		chromedp.WaitVisible(chromedp.CSS("a.button.primary")),
	); err != nil {
		t.Fatalf("B after being ended: %v", err)
	}
	if h1, err := chromedp.Run(b, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Your session has ended" {
		t.Fatalf("B sees %q (%v)", h1, err)
	}
	if err := chromedp.Do(b,
		chromedp.Click(chromedp.CSS("a.button.primary")),
		chromedp.WaitVisible(chromedp.CSS("#signin")),
	); err != nil {
		t.Fatalf("B following Sign in again: %v", err)
	}
	loc, err := chromedp.Run(b, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/login?next=%2Faccount%2Fsessions%2F") {
		t.Fatalf("B is at %q (%v), want the login page", loc, err)
	}
	who, err := chromedp.Run(b, chromedp.Evaluate[string](`fetch("/whoami").then(r => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil || who != "user= id=" {
		t.Fatalf("B whoami %q (%v)", who, err)
	}

	// A is still signed in.
	if err := chromedp.Do(a, chromedp.Navigate(srv.URL+"/account/sessions/"), chromedp.WaitVisible(chromedp.CSS("li.session.current"))); err != nil {
		t.Fatalf("A lost its session: %v", err)
	}
}
