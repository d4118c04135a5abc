package httpx

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/browsertest"
)

// dbscFeatures turns DBSC on in Chromium with software keys (no TPM), and
// without the refresh quota, which the short bound-cookie lifetime of the
// test would exceed.
const dbscFeatures = "DeviceBoundSessions:RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting"

// dbscExchange is one request to a DBSC endpoint as the server saw it.
type dbscExchange struct {
	path, secFetchSite string
	origin             bool
	status             int
}

// dbscRecorder notes the requests to the DBSC endpoints.
type dbscRecorder struct {
	mu   sync.Mutex
	seen []dbscExchange
}

func (d *dbscRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		if strings.HasPrefix(r.URL.Path, "/dbsc/") {
			d.mu.Lock()
			d.seen = append(d.seen, dbscExchange{r.URL.Path, r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin") != "", sw.code})
			d.mu.Unlock()
		}
	})
}

// count returns how many requests to path got status.
func (d *dbscRecorder) count(path string, status int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, e := range d.seen {
		if e.path == path && e.status == status {
			n++
		}
	}
	return n
}

func (d *dbscRecorder) all() []dbscExchange {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dbscExchange(nil), d.seen...)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// TestBrowserDBSC drives a real Chromium through DBSC: it signs in, its
// session becomes device-bound (registration), it keeps working across
// the expiry of its short-lived bound cookie (refresh), and its session
// cookie copied to a plain HTTP client is refused.
//
// Chromium runs DBSC only over HTTPS with a certificate it trusts (plain
// http://localhost does not do, nor an ignored certificate error), so the
// server is an httptest TLS server whose key Chromium is told to trust.
func TestBrowserDBSC(t *testing.T) {
	exe := browsertest.Chromium(t)
	const life = 3 * time.Second
	store := openStore(t, nil)
	f, logs, rec := &refusals{}, &logBuffer{}, &dbscRecorder{}
	m := New(store, &Options{Logger: logs.logger(), DBSC: &DBSCOptions{CookieLifetime: life, OnRefused: f.hook}})
	srv := httptest.NewTLSServer(rec.wrap(m.Handler(testMux(m, time.Now))))
	defer srv.Close()
	spki := sha256.Sum256(srv.Certificate().RawSubjectPublicKeyInfo)

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	tab := browsertest.New(t, ctx, exe, uaChromeWin,
		chromedp.Flag("enable-features", dbscFeatures),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])))

	// Sign in: the response offers registration, Chromium registers.
	browserSignIn(t, tab, srv.URL, "alice")
	sess := waitBound(t, ctx, tab, store, srv.URL)
	if n := rec.count("/dbsc/start", http.StatusOK); n != 1 {
		t.Fatalf("%d successful registrations, want 1: %+v", n, rec.all())
	}
	// The sessions page says so.
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/account/sessions/"), chromedp.WaitVisible(chromedp.CSS("li.session.current .badge.bound"))); err != nil {
		t.Fatalf("no device-bound label on the current session: %v", err)
	}
	if label, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("li.session.current .badge.bound"))); err != nil || label != "Device-bound" {
		t.Errorf("label %q (%v)", label, err)
	}
	cookies := browserCookies(t, tab, srv.URL)
	longLived, firstBound := cookies["session"], cookies["session_bound"]
	if longLived == "" || firstBound == "" {
		t.Fatalf("browser cookies %v", cookies)
	}

	// The session cookie copied to another client: signed out, reported.
	if got := plainGet(t, srv, "/whoami", map[string]string{"session": longLived}); got != "user= id=" {
		t.Fatalf("copied session cookie: whoami %q, want signed out", got)
	}
	if errs, ids := f.list(); len(errs) != 1 || !errors.Is(errs[0], ErrBoundCookieMissing) || ids[0] != sess.ID {
		t.Fatalf("hook calls %v %v, want one ErrBoundCookieMissing", errs, ids)
	}
	if !strings.Contains(logs.String(), "device-bound session refused") {
		t.Errorf("refusal not logged:\n%s", logs.String())
	}

	// Past the bound cookie's lifetime the browser refreshes by itself and
	// stays signed in; the copied pair of cookies stops working.
	time.Sleep(2*life + time.Second) // past the lifetime and the grace
	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/whoami"), chromedp.WaitVisible(chromedp.CSS("body"))); err != nil {
		t.Fatal(err)
	}
	if got, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body"))); err != nil || got != "user=alice id="+sess.ID {
		t.Fatalf("browser after its bound cookie expired: %q (%v); DBSC requests %+v", got, err, rec.all())
	}
	if rec.count("/dbsc/refresh", http.StatusForbidden) == 0 || rec.count("/dbsc/refresh", http.StatusOK) == 0 {
		t.Errorf("no challenge and refresh seen: %+v", rec.all())
	}
	if now := browserCookies(t, tab, srv.URL)["session_bound"]; now == "" || now == firstBound {
		t.Errorf("bound cookie not renewed: %q", now)
	}
	if got := plainGet(t, srv, "/whoami", map[string]string{"session": longLived, "session_bound": firstBound}); got != "user= id=" {
		t.Fatalf("expired copied pair: whoami %q", got)
	}
	errs, _ := f.list()
	if len(errs) != 2 || !errors.Is(errs[1], ErrBoundCookieInvalid) {
		t.Errorf("hook calls %v, want the copied pair's ErrBoundCookieInvalid second (and nothing from the browser)", errs)
	}
	// Chromium's DBSC requests are same-origin fetches: they pass the
	// cross-origin check like any same-origin POST.
	for _, e := range rec.all() {
		if e.secFetchSite != "same-origin" || !e.origin {
			t.Errorf("DBSC request %+v: want Sec-Fetch-Site same-origin and an Origin", e)
		}
	}
}

// waitBound waits until the browser's session is device-bound and returns it.
func waitBound(t *testing.T, ctx context.Context, tab context.Context, store *usersessions.Store, base string) *usersessions.Session {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if tok := browserCookies(t, tab, base)["session"]; tok != "" {
			if s, err := store.Load(ctx, tok); err == nil && DeviceBound(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Chromium did not register a DBSC key within 20s: run with %s (software keys), over HTTPS with a trusted certificate", dbscFeatures)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// browserCookies returns the browser's cookies for url, HttpOnly ones too.
func browserCookies(t *testing.T, tab context.Context, url string) map[string]string {
	t.Helper()
	res, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range res.Cookies {
		out[c.Name] = c.Value
	}
	return out
}

// plainGet requests path from srv with a plain Go client and the cookies.
func plainGet(t *testing.T, srv *httptest.Server, path string, cookies map[string]string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, fmt.Sprint(string(b)))
	}
	return string(b)
}
