package httpx

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/browsertest"
)

// TestBrowserEndOtherSession drives two real browsers: both sign in as the
// same user with different user agents, the first sees both sessions and
// ends the other one, and the second is signed out on its next request.
func TestBrowserEndOtherSession(t *testing.T) {
	exe := browsertest.Chromium(t)

	store := openStore(t, &usersessions.Options{History: time.Hour})
	m := New(store, &Options{Logger: quietLogger()})
	srv := httptest.NewServer(m.Handler(testMux(m, time.Now))) // 127.0.0.1 only
	defer srv.Close()

	// Nothing may hang: every browser lives inside this deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	const uaA = uaChromeWin
	const uaB = uaFirefoxMac
	a := browsertest.New(t, ctx, exe, uaA)
	b := browsertest.New(t, ctx, exe, uaB)

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
