// Package browsertest starts headless Chromium for tests that drive a real
// browser. Only tests import it.
//
// Outside CI (the environment variable CI is not "true") a test that needs
// Chromium is skipped, with a message saying so, when no Chromium is
// installed or in -short mode; under CI=true it fails instead, so a green
// CI run means the browser tests really ran.
package browsertest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/usersessions/usersessions/internal/needs"
)

// names are the Chromium and Chrome binaries looked for in PATH, in order.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Chromium returns the path of a Chromium or Chrome binary, or skips the
// test (fails it under CI=true) when there is none or in -short mode.
func Chromium(t testing.TB) string {
	t.Helper()
	if testing.Short() && !needs.CI() {
		t.Skip("skipping the real-browser test in -short mode")
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needs.Missing(t, "no Chromium found (chromium, chromium-browser, google-chrome): install Debian's chromium package")
	return ""
}

// New starts a headless Chromium (exe, from Chromium) with its own
// profile, so its own cookie jar, and the user agent ua, and returns a
// tab's context. The browser lives until ctx is done or the test ends;
// give ctx a deadline so that nothing can hang.
func New(t testing.TB, ctx context.Context, exe, ua string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in CI
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
		chromedp.WindowSize(1000, 900),
	}
	if ua != "" {
		opts = append(opts, chromedp.UserAgent(ua))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(opts, extra...)...)
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
