package httpx

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// sharedCacheable reports whether a shared cache (a CDN, a reverse proxy)
// may store resp under RFC 9111 and the CDN-targeted fields of RFC 9213:
// only "private" or "no-store" in Cache-Control stops it, and a targeted
// field (CDN-Cache-Control, Surrogate-Control) overrides Cache-Control.
func sharedCacheable(h http.Header) bool {
	for _, name := range []string{"Cdn-Cache-Control", "Surrogate-Control", "Cloudflare-Cdn-Cache-Control"} {
		if len(h.Values(name)) > 0 {
			return true // the CDN obeys this field, whatever Cache-Control says
		}
	}
	for _, line := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(line, ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if d == "no-store" || d == "private" {
				return false
			}
		}
	}
	return true
}

// TestCookieResponsesNotSharedCacheable: a response that carries the session
// cookie must never be storable by a shared cache, whatever the handler
// said, or one visitor's session would be handed to the next (issue 11 item
// 9). Every way a response can go out is tried.
func TestCookieResponsesNotSharedCacheable(t *testing.T) {
	public := func(h http.Header) {
		h.Set("Cache-Control", "public, max-age=3600, s-maxage=86400")
		h.Set("CDN-Cache-Control", "max-age=86400")
		h.Set("Surrogate-Control", "max-age=86400")
		h.Set("Cloudflare-CDN-Cache-Control", "max-age=86400")
	}
	modTime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		method  string
		header  http.Header
		handler func(w http.ResponseWriter, r *http.Request)
	}{
		{"returns without writing", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
		}},
		{"Write", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			w.Write([]byte("hello"))
		}},
		{"WriteHeader", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			w.WriteHeader(http.StatusOK)
		}},
		{"Flush", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			w.(http.Flusher).Flush()
		}},
		{"ResponseController.Flush", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			http.NewResponseController(w).Flush()
		}},
		{"ServeContent 200", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			http.ServeContent(w, r, "a.txt", modTime, bytes.NewReader([]byte("content")))
		}},
		{"ServeContent 304", "GET", http.Header{"If-Modified-Since": {modTime.Add(time.Hour).Format(http.TimeFormat)}}, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			http.ServeContent(w, r, "a.txt", modTime, bytes.NewReader([]byte("content")))
		}},
		{"HEAD", "HEAD", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			FromContext(r.Context()).Set("k", "v")
			w.Write([]byte("hello"))
		}},
		{"Login", "POST", nil, func(w http.ResponseWriter, r *http.Request) {
			public(w.Header())
			if err := Login(w, r, "alice"); err != nil {
				t.Error(err)
			}
		}},
		{"Cache-Control added twice", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Cache-Control", "max-age=60")
			w.Header().Add("Cache-Control", "public")
			FromContext(r.Context()).Set("k", "v")
		}},
		{"no Cache-Control (heuristic caching)", "GET", nil, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
			FromContext(r.Context()).Set("k", "v")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			h := e.m.Handler(http.HandlerFunc(c.handler))
			var form url.Values
			if c.method == "POST" {
				form = url.Values{}
			}
			resp := serve(t, h, "session", call{method: c.method, target: "/", header: c.header, form: form})
			if sessionCookie(t, resp, "session") == nil {
				t.Fatalf("status %d: no cookie set", resp.StatusCode)
			}
			if sharedCacheable(resp.Header) {
				t.Fatalf("status %d: a cookie-setting response a shared cache may store: %v", resp.StatusCode, resp.Header)
			}
		})
	}
}

// TestClearedCookieNotSharedCacheable: a response that clears a stale cookie
// (or logs out) must not be cached either: replayed to others it would sign
// them out.
func TestClearedCookieNotSharedCacheable(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		if r.URL.Path == "/logout" {
			if err := Logout(w, r); err != nil {
				t.Error(err)
			}
		}
		w.Write([]byte("page"))
	}))
	for _, c := range []call{
		{method: "GET", target: "/page", token: strings.Repeat("A", len(tok))}, // stale
		{method: "GET", target: "/logout", token: tok},
	} {
		resp := serve(t, h, "session", c)
		sc := sessionCookie(t, resp, "session")
		if sc == nil || sc.MaxAge >= 0 {
			t.Fatalf("%s: cookie not cleared: %v", c.target, sc)
		}
		if sharedCacheable(resp.Header) {
			t.Fatalf("%s: cookie-clearing response cacheable: %v", c.target, resp.Header)
		}
	}
}

// TestUncookiedResponseKeepsCacheControl: a response without a cookie is the
// app's to cache.
func TestUncookiedResponseKeepsCacheControl(t *testing.T) {
	e := newEnv(t, nil, nil)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Write([]byte("static"))
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/"})
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=600" {
		t.Fatalf("Cache-Control = %q", got)
	}
}

// TestFailedSaveResponseNotCached: the 500 that replaces a response whose
// save failed must not be cached under the handler's public policy.
func TestFailedSaveResponseNotCached(t *testing.T) {
	e := newEnv(t, nil, nil)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		FromContext(r.Context()).Set("bad", make(chan int))
		w.Write([]byte("x"))
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/"})
	if resp.StatusCode != 500 || sharedCacheable(resp.Header) {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func TestKeepFromSharedCaches(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "private"},
		{"public", "private"},
		{"public, max-age=3600, s-maxage=86400", "private, max-age=3600"},
		{"PUBLIC,Max-Age=60", "private, Max-Age=60"},
		{"no-store", "no-store"},
		{"private, max-age=60", "private, max-age=60"},
		{`private="Set-Cookie", max-age=60`, "private, max-age=60"},
		{"no-cache, public", "private, no-cache"},
		{" , ,", "private"},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.in != "" {
			h.Set("Cache-Control", c.in)
		}
		h.Set("Cdn-Cache-Control", "max-age=1")
		h.Set("Fastly-Cdn-Cache-Control", "max-age=1")
		h.Set("X-Other", "kept")
		keepFromSharedCaches(h)
		if got := h.Get("Cache-Control"); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
		if h.Get("Cdn-Cache-Control") != "" || h.Get("Fastly-Cdn-Cache-Control") != "" || h.Get("X-Other") != "kept" {
			t.Errorf("%q: targeted fields: %v", c.in, h)
		}
	}
}

// lazyWriter is a ResponseWriter that, like many compression and logging
// middlewares, sends its headers only with the first byte of the body (or at
// the end), so header changes made after WriteHeader still go out.
type lazyWriter struct {
	h      http.Header
	code   int
	sent   http.Header // the headers as they went out
	body   bytes.Buffer
	header bool
}

func (l *lazyWriter) Header() http.Header { return l.h }
func (l *lazyWriter) WriteHeader(code int) {
	if l.code == 0 {
		l.code = code
	}
}
func (l *lazyWriter) send() {
	if !l.header {
		l.header = true
		l.sent = l.h.Clone()
	}
}
func (l *lazyWriter) Write(p []byte) (int, error) {
	l.send()
	return l.body.Write(p)
}
func (l *lazyWriter) Flush() { l.send() }

// TestCacheControlAfterWriteHeader: a handler that marks the response public
// after WriteHeader (too late for net/http, not for a lazy writer in front)
// must not make a cookie-setting response cacheable.
func TestCacheControlAfterWriteHeader(t *testing.T) {
	for _, finish := range []string{"Write", "Flush", "return"} {
		e := newEnv(t, nil, nil)
		h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			FromContext(r.Context()).Set("k", "v")
			w.WriteHeader(http.StatusOK) // commits: cookie set, policy fixed
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Header().Set("CDN-Cache-Control", "max-age=600")
			switch finish {
			case "Write":
				w.Write([]byte("body"))
			case "Flush":
				http.NewResponseController(w).Flush()
			}
		}))
		lw := &lazyWriter{h: http.Header{}}
		h.ServeHTTP(lw, httptestRequest("GET", "/"))
		lw.send() // the end of the response
		if len(lw.sent.Values("Set-Cookie")) == 0 {
			t.Fatalf("%s: no cookie", finish)
		}
		if sharedCacheable(lw.sent) {
			t.Fatalf("%s: cookie-setting response went out cacheable: %v", finish, lw.sent)
		}
	}
}

func httptestRequest(method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}
