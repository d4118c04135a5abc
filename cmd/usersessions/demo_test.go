package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
)

// demoBrowser is one browser: its own cookie jar, redirects not followed.
type demoBrowser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newDemo(t *testing.T) (*usersessions.Store, string) {
	t.Helper()
	store, err := usersessions.Open(filepath.Join(t.TempDir(), "demo.db"), &usersessions.Options{CleanupInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(newDemoHandler(store, demoConfig{}))
	t.Cleanup(srv.Close)
	return store, srv.URL
}

func newBrowser(t *testing.T, base, ua string) *demoBrowser {
	jar, _ := cookiejar.New(nil)
	ua = strings.TrimSpace(ua)
	c := &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     uaTransport(ua),
	}
	return &demoBrowser{t: t, base: base, client: c}
}

type uaTransport string

func (ua uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Header.Set("User-Agent", string(ua))
	return http.DefaultTransport.RoundTrip(r)
}

// do sends a request; header pairs are name, value.
func (b *demoBrowser) do(method, path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func (b *demoBrowser) login(user string) {
	b.t.Helper()
	resp, _ := b.do("POST", "/login", url.Values{"username": {user}}, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/sessions/" {
		b.t.Fatalf("login as %s: %s to %q", user, resp.Status, resp.Header.Get("Location"))
	}
}

// sessions returns the IDs in the JSON view and the current one.
func (b *demoBrowser) sessions() (ids []string, current string) {
	b.t.Helper()
	resp, body := b.do("GET", "/account/sessions/", nil, "Accept", "application/json")
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("JSON view: %s %s", resp.Status, body)
	}
	var v struct {
		Sessions []struct {
			ID      string
			Current bool
		}
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		b.t.Fatal(err)
	}
	for _, s := range v.Sessions {
		ids = append(ids, s.ID)
		if s.Current {
			current = s.ID
		}
	}
	return ids, current
}

func TestDemoPages(t *testing.T) {
	_, base := newDemo(t)
	b := newBrowser(t, base, uaChrome)

	resp, body := b.do("GET", "/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "What to try") || !strings.Contains(body, "You are not signed in") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("home: %s %q", resp.Status, body)
	}
	resp, body = b.do("GET", "/login", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="username"`) || !strings.Contains(body, `action="/login"`) {
		t.Errorf("login form: %s %q", resp.Status, body)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("x", 65), "eve\x1b[2J"} {
		resp, body = b.do("POST", "/login", url.Values{"username": {bad}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `name="username"`) || !strings.Contains(body, `class="error"`) {
			t.Errorf("login as %q: %s", bad, resp.Status)
		}
	}
	if resp, _ := b.do("GET", "/nowhere", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nowhere: %s", resp.Status)
	}
	if resp, _ := b.do("GET", "/logout", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %s", resp.Status)
	}
	// Not signed in: the views send the browser to the sign-in page.
	if resp, _ := b.do("GET", "/account/sessions/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Faccount%2Fsessions%2F" {
		t.Errorf("sessions page, anonymous: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ := b.do("GET", "/admin/sessions/", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fadmin%2Fsessions%2F" {
		t.Errorf("admin page, anonymous: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
}

func TestDemoSignInAndEndSessions(t *testing.T) {
	store, base := newDemo(t)
	laptop := newBrowser(t, base, uaChrome)
	phone := newBrowser(t, base, uaIPhone)

	// Sign-in sets the session cookie, with the name trimmed.
	resp, _ := laptop.do("POST", "/login", url.Values{"username": {"  alice "}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account/sessions/" {
		t.Fatalf("login: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.Value == "" {
		t.Fatalf("login cookie %v", resp.Cookies())
	}
	phone.login("alice")

	_, body := laptop.do("GET", "/", nil)
	if !strings.Contains(body, "You are signed in as <strong>alice</strong>") || !strings.Contains(body, "Chrome on Windows") {
		t.Errorf("home when signed in: %q", body)
	}
	resp, body = laptop.do("GET", "/account/sessions/", nil)
	if resp.StatusCode != http.StatusOK || strings.Count(body, "data-session=") != 2 || !strings.Contains(body, "Safari on iPhone") {
		t.Errorf("sessions page: %s %q", resp.Status, body)
	}
	if !strings.Contains(body, `<a href="/">`) {
		t.Errorf("sessions page has no way back to the demo's home page")
	}
	ids, _ := laptop.sessions()
	if len(ids) != 2 {
		t.Fatalf("JSON view: %v", ids)
	}
	list, _ := store.ListByUser(t.Context(), "alice")
	if len(list) != 2 {
		t.Fatalf("store has %d sessions of alice", len(list))
	}

	// The laptop ends the phone's session; the phone is signed out.
	_, other := phone.sessions()
	resp, _ = laptop.do("POST", "/account/sessions/"+other+"/end", nil, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("end the other session: %s", resp.Status)
	}
	// It is told so, not just shown a sign-in page.
	if resp, body := phone.do("GET", "/account/sessions/", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your session has ended") {
		t.Errorf("phone after its session ended: %s, %q", resp.Status, body)
	}
	if got, _ := laptop.sessions(); len(got) != 1 || got[0] == other {
		t.Errorf("laptop sees %v", got)
	}

	// Sign-out ends the session and clears the cookie.
	resp, _ = laptop.do("POST", "/logout", nil, "Origin", base)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("logout: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if list, _ := store.ListByUser(t.Context(), "alice"); len(list) != 0 {
		t.Errorf("after logout alice has %d sessions", len(list))
	}
	if resp, _ := laptop.do("GET", "/account/sessions/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sessions page after logout: %s", resp.Status)
	}
}

func TestDemoAdmin(t *testing.T) {
	_, base := newDemo(t)
	alice := newBrowser(t, base, uaFirefox)
	alice.login("alice")
	admin := newBrowser(t, base, uaChrome)
	admin.login("admin")

	resp, body := alice.do("GET", "/admin/sessions/", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Admins only") {
		t.Errorf("admin view for alice: %s %q", resp.Status, body)
	}
	if resp, _ := alice.do("GET", "/admin/sessions/", nil, "Accept", "application/json"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin JSON for alice: %s", resp.Status)
	}
	if resp, _ := alice.do("POST", "/admin/sessions/end", url.Values{"id": {"x"}}, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin POST for alice: %s", resp.Status)
	}
	resp, body = admin.do("GET", "/admin/sessions/", nil)
	if resp.StatusCode != http.StatusOK || strings.Count(body, "data-session=") != 2 {
		t.Errorf("admin view for admin: %s %q", resp.Status, body)
	}
	resp, body = admin.do("GET", "/admin/sessions/?format=json", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"user_id":"alice"`) {
		t.Errorf("admin JSON for admin: %s %q", resp.Status, body)
	}
	_, body = admin.do("GET", "/", nil)
	if !strings.Contains(body, `href="/admin/sessions/"`) {
		t.Errorf("admin's home page has no admin link")
	}
}

func TestDemoCrossSite(t *testing.T) {
	store, base := newDemo(t)
	b := newBrowser(t, base, uaChrome)
	resp, _ := b.do("POST", "/login", url.Values{"username": {"mallory"}}, "Sec-Fetch-Site", "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site login: %s", resp.Status)
	}
	if n, _ := store.Count(t.Context()); n != 0 {
		t.Errorf("cross-site login made %d sessions", n)
	}
	b.login("alice")
	resp, _ = b.do("POST", "/logout", nil, "Origin", "https://evil.example")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site logout: %s", resp.Status)
	}
	if ids, _ := b.sessions(); len(ids) != 1 {
		t.Error("a cross-site logout ended the session")
	}
}

// The sign-in page carries the page a visitor was sent from, and signing in
// returns there: same-site paths only.
func TestDemoLoginReturnsToNext(t *testing.T) {
	_, base := newDemo(t)
	b := newBrowser(t, base, uaChrome)
	if _, body := b.do("GET", "/login?next=%2Fadmin%2Fsessions%2F", nil); !strings.Contains(body, `name="next" value="/admin/sessions/"`) {
		t.Fatalf("the sign-in form drops next: %s", body)
	}
	for next, want := range map[string]string{
		"/admin/sessions/":      "/admin/sessions/",
		"//evil.example/":       "/account/sessions/",
		"https://evil.example/": "/account/sessions/",
	} {
		resp, _ := b.do("POST", "/login", url.Values{"username": {"admin"}, "next": {next}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("login with next=%q: %s to %q, want %q", next, resp.Status, resp.Header.Get("Location"), want)
		}
	}
}

// The README says where the demo listens, and the quick start's test
// keeps its own port off that one (issue 18, item 15): the README must
// tell the demo's real default.
func TestReadmeDemoAddress(t *testing.T) {
	stdout, _, _ := runCmd(t, "help", "demo")
	m := regexp.MustCompile(`listen address.*\(default "([^"]+)"\)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("demo -h shows no default address:\n%s", stdout)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "the demo app on http://" + m[1] + "/"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not say %q", want)
	}
}
