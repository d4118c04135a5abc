package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/usersessions/usersessions/internal/browsertest"
)

// TestQuickStartInBrowser does what the README asks a newcomer to do, in
// Chromium: open /login, sign in, and find this session on the sessions
// page (issue 18, item 10: the form showed as raw text).
func TestQuickStartInBrowser(t *testing.T) {
	exe := browsertest.Chromium(t)
	p := startProgram(t)
	tab := browsertest.New(t, testContext(t), exe, "")

	// The sign-in form is a page, not its source: Chromium parses it as
	// HTML, and the name field takes room on the screen.
	if err := chromedp.Do(tab, chromedp.Navigate(p.base+"/login")); err != nil {
		t.Fatal(err)
	}
	contentType, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.contentType`))
	if err != nil {
		t.Fatal(err)
	}
	area, err := chromedp.Run(tab, chromedp.Evaluate[float64](`(() => {
		const input = document.querySelector("input[name=user]");
		if (!input) return 0;
		const box = input.getBoundingClientRect();
		return box.width * box.height;
	})()`))
	if err != nil || contentType != "text/html" || area <= 0 {
		text, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("/login is %s, its name field covers %v px² (%v); the page shows:\n%s", contentType, area, err, text)
	}

	// Sign in: the home page says who is signed in.
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.CSS("input[name=user]"), "alice"),
		chromedp.Click(chromedp.CSS("button")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/account/sessions/"]`)),
	)
	if err != nil {
		t.Fatalf("signing in: %v", err)
	}
	if home, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body"))); err != nil || !strings.Contains(home, "Signed in as alice") {
		t.Fatalf("home page after signing in: %q (%v)", home, err)
	}

	// Its link leads to the sessions page, which lists this session.
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`a[href="/account/sessions/"]`)),
		chromedp.WaitVisible(chromedp.CSS("li.session.current")),
	)
	if err != nil {
		t.Fatalf("following Your sessions: %v", err)
	}
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("li.session[data-session]").length`))
	if err != nil || n != 1 {
		t.Errorf("the sessions page lists %d sessions (%v), want 1", n, err)
	}
	if text, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "This session") || !strings.Contains(text, "alice") {
		t.Errorf("sessions page: %q (%v)", text, err)
	}

	// The nav block leads back to the app.
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`nav a[href="/"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"] button`)),
	)
	if err != nil {
		t.Fatalf("the sessions page has no working link back to the app: %v", err)
	}

	// Signing out, then opening the sessions page, leads to the sign-in
	// form, and signing in there returns to the sessions page.
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)),
		chromedp.Navigate(p.base+"/account/sessions/"),
		chromedp.WaitVisible(chromedp.CSS("input[name=user]")),
		chromedp.SendKeys(chromedp.CSS("input[name=user]"), "bob"),
		chromedp.Click(chromedp.CSS("button")),
		chromedp.WaitVisible(chromedp.CSS("li.session.current")),
	)
	if err != nil {
		t.Fatalf("signing out, then in from the sessions page: %v", err)
	}
	if text, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "bob") {
		t.Errorf("sessions page after signing in as bob: %q (%v)", text, err)
	}
}
