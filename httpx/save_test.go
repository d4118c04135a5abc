package httpx

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/usersessions/usersessions"
)

// unregistered is a value type nobody registered with RegisterType.
type unregistered struct{ Items int }

// TestUnsupportedTypeReachesTheApp: a value of an unregistered type makes
// the save fail with ErrUnsupportedType naming the key and the type; that
// is logged and handed to the app (OnSaveError), not turned into a bare
// 500, and no orphan record is left behind (issue 14).
func TestUnsupportedTypeReachesTheApp(t *testing.T) {
	var logs bytes.Buffer
	var hookErr error
	e := newEnv(t, nil, &Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnSaveError: func(w http.ResponseWriter, r *http.Request, err error) {
			hookErr = err
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "could not keep your cart")
		},
	})
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("cart", unregistered{Items: 2})
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "secret page")
	}))
	for _, tok := range []string{"", e.login("alice", uaChromeWin)} {
		hookErr = nil
		logs.Reset()
		before, _ := e.store.Count(t.Context())
		resp := serve(t, h, "session", call{method: "GET", target: "/", token: tok})
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusTeapot || body != "could not keep your cart" {
			t.Fatalf("token %q: status %d body %q, want the hook's answer", tok, resp.StatusCode, body)
		}
		if !errors.Is(hookErr, usersessions.ErrUnsupportedType) || !strings.Contains(hookErr.Error(), `"cart"`) || !strings.Contains(hookErr.Error(), "httpx.unregistered") {
			t.Fatalf("hook got %v, want ErrUnsupportedType naming key and type", hookErr)
		}
		if l := logs.String(); !strings.Contains(l, "cart") || !strings.Contains(l, "httpx.unregistered") || !strings.Contains(l, "RegisterType") {
			t.Fatalf("log does not say what to do:\n%s", l)
		}
		if sharedCacheable(resp.Header) || sessionCookie(t, resp, "session") != nil {
			t.Fatalf("error response headers: %v", resp.Header)
		}
		if after, _ := e.store.Count(t.Context()); after != before {
			t.Fatalf("failed save left %d records behind", after-before)
		}
	}
}

// TestExplicitSave: httpx.Save lets the handler see the error and recover.
func TestExplicitSave(t *testing.T) {
	e := newEnv(t, nil, nil)
	var first, second error
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set("theme", "dark")
		s.Set("cart", unregistered{Items: 2})
		first = Save(r)
		if errors.Is(first, usersessions.ErrUnsupportedType) {
			s.Delete("cart")
			second = Save(r)
		}
		io.WriteString(w, "ok")
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/"})
	if !errors.Is(first, usersessions.ErrUnsupportedType) || second != nil {
		t.Fatalf("Save: %v, then %v", first, second)
	}
	c := sessionCookie(t, resp, "session")
	if resp.StatusCode != 200 || c == nil {
		t.Fatalf("status %d cookie %v", resp.StatusCode, c)
	}
	s, err := e.store.Load(t.Context(), c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := usersessions.Value[string](s, "theme"); v != "dark" {
		t.Fatalf("theme = %q", v)
	}
	if n, _ := e.store.Count(t.Context()); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	// After the headers: ErrHeadersWritten.
	h = e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		if err := Save(r); !errors.Is(err, ErrHeadersWritten) {
			t.Errorf("Save after headers: %v", err)
		}
	}))
	serve(t, h, "session", call{method: "GET", target: "/"})
}

// TestAnonymousValuesPolicy: with AnonymousRequestOnly an anonymous
// visitor's values never reach the database (a crawler cannot fill the
// file), yet values set in the request that signs in are kept.
func TestAnonymousValuesPolicy(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, nil, &Options{AnonymousValues: AnonymousRequestOnly, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 5 {
		resp := e.do(call{method: "POST", target: "/set", form: url.Values{"k": {"cart"}, "v": {"3 apples"}}})
		if resp.StatusCode != 200 || sessionCookie(t, resp, "session") != nil {
			t.Fatalf("anonymous set: status %d, cookie %v", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	}
	if n, _ := e.store.Count(t.Context()); n != 0 {
		t.Fatalf("anonymous values wrote %d records", n)
	}
	if l := logs.String(); strings.Count(l, "level=INFO") != 1 || strings.Contains(l, "level=WARN") || !strings.Contains(l, "AnonymousValues") {
		t.Fatalf("want one Info line naming the option, got:\n%s", l)
	}
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("cart", "3 apples")
		if err := Login(w, r, "alice"); err != nil {
			t.Error(err)
		}
	}))
	c := sessionCookie(t, serve(t, h, "session", call{method: "POST", target: "/"}), "session")
	s, err := e.store.Load(t.Context(), c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := usersessions.Value[string](s, "cart"); v != "3 apples" || s.UserID != "alice" {
		t.Fatalf("signed-in session %q cart %q", s.UserID, v)
	}
	// Signed-in sessions save as usual.
	resp := e.do(call{method: "POST", target: "/set", token: c.Value, form: url.Values{"k": {"theme"}, "v": {"dark"}}})
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	s, _ = e.store.Load(t.Context(), c.Value)
	if v, _ := usersessions.Value[string](s, "theme"); v != "dark" {
		t.Fatalf("theme %q", v)
	}

	// The default keeps a record per anonymous visitor.
	d := newEnv(t, nil, nil)
	for range 3 {
		d.do(call{method: "POST", target: "/set", form: url.Values{"k": {"cart"}, "v": {"x"}}})
	}
	if n, _ := d.store.Count(t.Context()); n != 3 {
		t.Fatalf("default policy: %d records, want 3", n)
	}
}
