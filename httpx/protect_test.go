package httpx

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
)

// TestCrossSiteAppRoutesRefused: the middleware protects the app's own
// unsafe routes (POST /login and /logout, written as the README shows them),
// not only the views' (issue 14).
func TestCrossSiteAppRoutesRefused(t *testing.T) {
	crossSite := []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}},
		{"Origin": {"https://evil.example"}},
	}
	for _, h := range crossSite {
		e := newEnv(t, nil, nil)
		// Login CSRF: an attacker signs the victim in to the attacker's account.
		resp := e.do(call{method: "POST", target: "/login", form: url.Values{"user": {"mallory"}}, header: h})
		if resp.StatusCode != http.StatusForbidden || sessionCookie(t, resp, "session") != nil {
			t.Fatalf("%v: cross-site POST /login: status %d, cookie %v", h, resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
		tok := e.login("alice", uaChromeWin)
		resp = e.do(call{method: "POST", target: "/logout", token: tok, header: h})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v: cross-site POST /logout: status %d", h, resp.StatusCode)
		}
		if _, err := e.store.Load(t.Context(), tok); err != nil {
			t.Fatalf("%v: a cross-site POST /logout ended the session", h)
		}
		resp = e.do(call{method: "POST", target: "/set", token: tok, header: h, form: url.Values{"k": {"x"}, "v": {"y"}}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%v: cross-site POST /set: status %d", h, resp.StatusCode)
		}
		// Safe methods pass.
		resp = e.do(call{method: "GET", target: "/whoami", token: tok, header: h})
		if resp.StatusCode != 200 || !strings.HasPrefix(readBody(t, resp), "user=alice") {
			t.Fatalf("%v: cross-site GET: status %d", h, resp.StatusCode)
		}
	}
	// Same-origin requests, and clients that send neither header (curl, the
	// tests), are accepted.
	for _, h := range []http.Header{sameOrigin(), {"Origin": {"http://example.com"}}, nil} {
		e := newEnv(t, nil, nil)
		resp := e.do(call{method: "POST", target: "/login", form: url.Values{"user": {"alice"}}, header: h})
		if resp.StatusCode != http.StatusSeeOther || sessionCookie(t, resp, "session") == nil {
			t.Fatalf("%v: same-origin POST /login: status %d", h, resp.StatusCode)
		}
		tok := sessionCookie(t, resp, "session").Value
		resp = e.do(call{method: "POST", target: "/logout", token: tok, header: h})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%v: same-origin POST /logout: status %d", h, resp.StatusCode)
		}
	}
}

func TestCrossOriginExemptAndOptOut(t *testing.T) {
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}}
	hook := func(m *Manager) http.Handler {
		mux := testMux(m, nil)
		mux.HandleFunc("POST /webhooks/stripe", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hook") })
		return m.Handler(mux)
	}
	e := newEnv(t, nil, &Options{CrossOriginExempt: []string{"POST /webhooks/"}})
	h := hook(e.m)
	if resp := serve(t, h, "session", call{method: "POST", target: "/webhooks/stripe", header: cross}); resp.StatusCode != 200 {
		t.Fatalf("exempt webhook: %d", resp.StatusCode)
	}
	if resp := serve(t, h, "session", call{method: "POST", target: "/login", header: cross, form: url.Values{"user": {"x"}}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("exemption leaked to /login: %d", resp.StatusCode)
	}
	// The views keep their own protection even when the app opts out.
	e = newEnv(t, nil, &Options{DisableCrossOriginProtection: true})
	h = hook(e.m)
	if resp := serve(t, h, "session", call{method: "POST", target: "/login", header: cross, form: url.Values{"user": {"x"}}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("opted out, POST /login: %d", resp.StatusCode)
	}
	tok := e.login("alice", uaChromeWin)
	if resp := serve(t, h, "session", call{method: "POST", target: "/account/sessions/end-others", token: tok, header: cross}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("opted out, views: %d", resp.StatusCode)
	}
	// A protector of the app's own, with a trusted origin.
	cop := http.NewCrossOriginProtection()
	if err := cop.AddTrustedOrigin("https://sso.example"); err != nil {
		t.Fatal(err)
	}
	e = newEnv(t, nil, &Options{CrossOrigin: cop})
	h = hook(e.m)
	if resp := serve(t, h, "session", call{method: "POST", target: "/login", header: http.Header{"Origin": {"https://sso.example"}}, form: url.Values{"user": {"x"}}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("trusted origin: %d", resp.StatusCode)
	}
	if resp := serve(t, h, "session", call{method: "POST", target: "/login", header: cross, form: url.Values{"user": {"x"}}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("own protector, cross-site: %d", resp.StatusCode)
	}
}

// captureDefaultLog points slog.Default at a buffer for the test.
func captureDefaultLog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// TestMisuseOutsideMiddlewareIsLoud: a handler the middleware does not wrap
// gets nil from FromContext and ErrNoMiddleware from Login; that is logged,
// once, saying what to do (issue 14).
func TestMisuseOutsideMiddlewareIsLoud(t *testing.T) {
	buf := captureDefaultLog(t)
	warnedNoMiddleware.Store(false)
	t.Cleanup(func() { warnedNoMiddleware.Store(false) })
	sess := &usersessions.Session{ID: "unset"}
	var loginErr, logoutErr, rememberErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess = FromContext(r.Context())
		loginErr = Login(w, r, "alice")
		logoutErr = Logout(w, r)
		rememberErr = RememberMe(w, r, false)
	})
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil))
	}
	if sess != nil {
		t.Fatalf("FromContext outside the middleware: %+v, want nil", sess)
	}
	for _, err := range []error{loginErr, logoutErr, rememberErr} {
		if !errors.Is(err, ErrNoMiddleware) {
			t.Fatalf("err = %v, want ErrNoMiddleware", err)
		}
	}
	out := buf.String()
	if strings.Count(out, "level=ERROR") != 1 || !strings.Contains(out, "Manager.Handler") || !strings.Contains(out, "FromContext") {
		t.Fatalf("want one clear error in the log, got:\n%s", out)
	}
}
