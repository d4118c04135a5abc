package httpx

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

func TestAnonymousPageViewWritesNothing(t *testing.T) {
	e := newEnv(t, nil, nil)
	before := e.store.Stats()
	resp := e.do(call{method: "GET", target: "/whoami", ua: uaChromeWin})
	if got := readBody(t, resp); got != "user= id=" {
		t.Fatalf("body %q", got)
	}
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("Set-Cookie on a plain anonymous view: %v", v)
	}
	if n, _ := e.store.Count(t.Context()); n != 0 {
		t.Fatalf("store has %d sessions", n)
	}
	if after := e.store.Stats(); after.Commits != before.Commits {
		t.Fatalf("commits %d -> %d", before.Commits, after.Commits)
	}
}

func TestAnonymousSessionCreatedOnSet(t *testing.T) {
	e := newEnv(t, &usersessions.Options{Lifetime: 2 * time.Hour}, nil)
	resp := e.do(call{method: "POST", target: "/set", form: url.Values{"k": {"cart"}, "v": {"3 apples"}}, remote: "198.51.100.7:4000", ua: uaFirefoxMac})
	c := sessionCookie(t, resp, "session")
	if c == nil {
		t.Fatal("no cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge != 7200 || c.Domain != "" {
		t.Fatalf("cookie attributes: %+v", c)
	}
	if len(c.Value) > maxTokenLength {
		t.Fatalf("token too long: %d", len(c.Value))
	}
	s, err := e.store.Load(t.Context(), c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if s.UserID != "" || s.IP != netip.MustParseAddr("198.51.100.7") || s.UserAgent != uaFirefoxMac {
		t.Fatalf("stored session %+v", s)
	}
	resp = e.do(call{method: "GET", target: "/get?k=cart", token: c.Value})
	if got := readBody(t, resp); got != "3 apples" {
		t.Fatalf("value %q", got)
	}
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("Set-Cookie on an unchanged session: %v", v)
	}
}

func TestUnchangedSessionCostsNoWrite(t *testing.T) {
	for _, noCache := range []bool{false, true} {
		t.Run("NoCache="+strconv.FormatBool(noCache), func(t *testing.T) {
			e := newEnv(t, &usersessions.Options{NoCache: noCache}, nil)
			tok := e.login("alice", uaChromeWin)
			before := e.store.Stats()
			for range 3 {
				resp := e.do(call{method: "GET", target: "/whoami", token: tok, ua: uaChromeWin})
				if !strings.HasPrefix(readBody(t, resp), "user=alice ") {
					t.Fatal("not signed in")
				}
				if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
					t.Fatalf("Set-Cookie: %v", v)
				}
			}
			after := e.store.Stats()
			if after.Commits != before.Commits || after.Saves != before.Saves {
				t.Fatalf("writes: commits %d -> %d, saves %d -> %d", before.Commits, after.Commits, before.Saves, after.Saves)
			}
		})
	}
}

func TestSavedOnceBeforeHeaders(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	var saves uint64
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set("a", "1")
		s.Set("b", "2")
		before := e.store.Stats().Saves
		w.Header().Set("X-Test", "yes")
		w.WriteHeader(http.StatusAccepted) // save happens here
		saves = e.store.Stats().Saves - before
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		io.WriteString(w, "more")
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/", token: tok})
	if resp.StatusCode != http.StatusAccepted || readBody(t, resp) != "bodymore" || resp.Header.Get("X-Test") != "yes" {
		t.Fatalf("response changed: %d", resp.StatusCode)
	}
	if saves != 1 {
		t.Fatalf("%d saves at WriteHeader, want 1", saves)
	}
	if got := e.store.Stats().Saves; got == 0 {
		t.Fatal("no save")
	}
	s, _ := e.store.Load(t.Context(), tok)
	if v, _ := s.Get("b"); v != "2" {
		t.Fatalf("value b = %v", v)
	}
}

func TestSaveWhenHandlerWritesNothing(t *testing.T) {
	e := newEnv(t, nil, nil)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("k", int64(7))
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/"})
	c := sessionCookie(t, resp, "session")
	if resp.StatusCode != 200 || c == nil {
		t.Fatalf("status %d cookie %v", resp.StatusCode, c)
	}
	s, err := e.store.Load(t.Context(), c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("k"); v != int64(7) {
		t.Fatalf("k = %v", v)
	}
}

func TestSaveFailureAnswers500(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("bad", make(chan int)) // not storable
		w.Header().Set("Content-Length", "6")
		io.WriteString(w, "secret")
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/", token: tok})
	body := readBody(t, resp)
	if resp.StatusCode != 500 || strings.Contains(body, "secret") || strings.Contains(body, "chan") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestStaleCookieClearedAndAnonymous(t *testing.T) {
	e := newEnv(t, &usersessions.Options{Lifetime: time.Hour}, nil)
	revoked := e.login("bob", uaChromeWin)
	if err := e.store.End(t.Context(), e.sessionID(revoked), usersessions.EndOptions{}); err != nil {
		t.Fatal(err)
	}
	expired := e.login("carol", uaChromeWin)
	e.clock.Advance(2 * time.Hour)
	valid := e.login("dave", uaChromeWin)

	cases := []struct{ name, token string }{
		{"revoked", revoked},
		{"expired", expired},
		{"unknown", strings.Repeat("A", 64)},
		{"corrupt base64", strings.Repeat("!", 64)},
		{"short", "abc"},
		{"overlong", strings.Repeat("a", 4096)},
		{"bad characters", "%zz+="},
		{"flipped", flip(valid)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(call{method: "GET", target: "/whoami", token: tc.token})
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := readBody(t, resp); got != "user= id=" {
				t.Fatalf("not anonymous: %q", got)
			}
			c := sessionCookie(t, resp, "session")
			if c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/" {
				t.Fatalf("stale cookie not cleared: %v", resp.Header.Values("Set-Cookie"))
			}
		})
	}
	// The valid one still works.
	if got := readBody(t, e.do(call{method: "GET", target: "/whoami", token: valid})); !strings.HasPrefix(got, "user=dave") {
		t.Fatalf("valid token: %q", got)
	}
}

// flip changes the last character of a token (another secret, same ID).
func flip(tok string) string {
	b := []byte(tok)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'B'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}

func TestStoreErrorAnswers500(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	e.store.Close()
	resp := e.do(call{method: "GET", target: "/whoami", token: tok})
	body := readBody(t, resp)
	if resp.StatusCode != 500 || strings.Contains(body, "closed") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("cookie touched on a store error: %v", v)
	}
}

func TestSessionEndedDuringRequest(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		if err := e.store.End(r.Context(), s.ID, usersessions.EndOptions{}); err != nil { // "end" from another tab
			t.Error(err)
		}
		s.Set("k", "v")
		io.WriteString(w, "ok")
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/", token: tok})
	if resp.StatusCode != 200 || readBody(t, resp) != "ok" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c := sessionCookie(t, resp, "session"); c == nil || c.MaxAge >= 0 {
		t.Fatalf("cookie not cleared: %v", resp.Header.Values("Set-Cookie"))
	}
	if n, _ := e.store.Count(t.Context()); n != 0 {
		t.Fatalf("session came back: %d", n)
	}
}

func TestCookieOptions(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cases := []struct {
		name       string
		opts       Options
		tls        bool
		remote     string
		header     http.Header
		wantSecure bool
		wantName   string
		wantDomain string
	}{
		{name: "plain http", wantName: "session"},
		{name: "tls", tls: true, wantSecure: true, wantName: "session"},
		{name: "always secure", opts: Options{Secure: true}, wantSecure: true, wantName: "session"},
		{name: "custom name and domain", opts: Options{CookieName: "sid", Domain: "example.com"}, wantName: "sid", wantDomain: "example.com"},
		{name: "host prefix forces secure", opts: Options{CookieName: "__Host-sid"}, wantSecure: true, wantName: "__Host-sid"},
		{name: "trusted proxy https", opts: Options{TrustedProxies: trusted}, remote: "10.1.2.3:1000",
			header: http.Header{"X-Forwarded-Proto": {"https"}}, wantSecure: true, wantName: "session"},
		{name: "trusted proxy forwarded https", opts: Options{TrustedProxies: trusted}, remote: "10.1.2.3:1000",
			header: http.Header{"Forwarded": {`for=203.0.113.9;proto=https`}}, wantSecure: true, wantName: "session"},
		{name: "untrusted peer claims https", opts: Options{TrustedProxies: trusted}, remote: "203.0.113.5:1000",
			header: http.Header{"X-Forwarded-Proto": {"https"}}, wantName: "session"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := openStore(t, nil)
			tc.opts.Logger = quietLogger()
			m := New(store, &tc.opts)
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := m.Login(w, r, "alice"); err != nil {
					t.Error(err)
				}
			}))
			r := httptest.NewRequest("POST", "/", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.remote != "" {
				r.RemoteAddr = tc.remote
			}
			for k, v := range tc.header {
				r.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			c := sessionCookie(t, rec.Result(), tc.wantName)
			if c == nil {
				t.Fatalf("no %s cookie: %v", tc.wantName, rec.Header().Values("Set-Cookie"))
			}
			if c.Secure != tc.wantSecure || c.Domain != tc.wantDomain || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Fatalf("cookie %+v", c)
			}
			if c.MaxAge != int(14*24*time.Hour/time.Second) { // the default Lifetime
				t.Fatalf("Max-Age %d", c.MaxAge)
			}
		})
	}
	t.Run("host prefix with domain panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		New(nil, &Options{CookieName: "__Host-x", Domain: "example.com"})
	})
}

func TestTouchRecordsClient(t *testing.T) {
	e := newEnv(t, nil, &Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	tok := e.login("alice", uaChromeWin)
	e.clock.Advance(5 * time.Minute)

	check := func(wantIP, wantUA string) {
		t.Helper()
		list, err := e.store.ListByUser(t.Context(), "alice")
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %d", err, len(list))
		}
		if list[0].IP.String() != wantIP || list[0].UserAgent != wantUA {
			t.Fatalf("recorded %s %q, want %s %q", list[0].IP, list[0].UserAgent, wantIP, wantUA)
		}
		if !list[0].LastSeen.Equal(e.clock.Now()) {
			t.Fatalf("last seen %v, want %v", list[0].LastSeen, e.clock.Now())
		}
	}
	// Direct client.
	e.do(call{method: "GET", target: "/whoami", token: tok, remote: "198.51.100.20:5555", ua: uaFirefoxMac})
	check("198.51.100.20", uaFirefoxMac)
	// Spoofed header from an untrusted peer: ignored.
	e.do(call{method: "GET", target: "/whoami", token: tok, remote: "198.51.100.21:5555", ua: uaFirefoxMac,
		header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}})
	check("198.51.100.21", uaFirefoxMac)
	// Through the trusted proxy.
	e.do(call{method: "GET", target: "/whoami", token: tok, remote: "10.0.0.2:5555", ua: uaSafariIOS,
		header: http.Header{"X-Forwarded-For": {"203.0.113.50, 10.0.0.9"}}})
	check("203.0.113.50", uaSafariIOS)
	// A save in the same request keeps the fresh client, not the loaded one.
	e.do(call{method: "POST", target: "/set", token: tok, remote: "198.51.100.99:1", ua: uaChromeWin, form: url.Values{"k": {"x"}, "v": {"y"}}})
	e.store.Flush(t.Context())
	check("198.51.100.99", uaChromeWin)
}

func TestLoginRotatesToken(t *testing.T) {
	for _, noCache := range []bool{false, true} {
		t.Run("NoCache="+strconv.FormatBool(noCache), func(t *testing.T) {
			e := newEnv(t, &usersessions.Options{NoCache: noCache}, nil)
			// An anonymous session with a value (think: a planted token).
			resp := e.do(call{method: "POST", target: "/set", form: url.Values{"k": {"cart"}, "v": {"book"}}})
			anon := sessionCookie(t, resp, "session").Value
			anonID := e.sessionID(anon)

			resp = e.do(call{method: "POST", target: "/login", token: anon, form: url.Values{"user": {"alice"}}})
			c := sessionCookie(t, resp, "session")
			if c == nil || c.Value == anon || c.MaxAge <= 0 {
				t.Fatalf("login cookie %v", c)
			}
			if _, err := e.store.Load(t.Context(), anon); !errors.Is(err, usersessions.ErrNotFound) {
				t.Fatalf("old token still valid: %v", err)
			}
			s, err := e.store.Load(t.Context(), c.Value)
			if err != nil {
				t.Fatal(err)
			}
			if s.UserID != "alice" || s.ID != anonID {
				t.Fatalf("session %s user %q, want %s alice", s.ID, s.UserID, anonID)
			}
			if v, _ := s.Get("cart"); v != "book" {
				t.Fatalf("value lost: %v", v)
			}
			// The old (fixated) token is now anonymous and cleared.
			resp = e.do(call{method: "GET", target: "/whoami", token: anon})
			if got := readBody(t, resp); got != "user= id=" {
				t.Fatalf("old token: %q", got)
			}
		})
	}
}

func TestLoginFromUnsavedAnonymousCarriesValues(t *testing.T) {
	e := newEnv(t, nil, nil)
	var sameSession bool
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		s.Set("theme", "dark")
		if err := e.m.Login(w, r, "alice"); err != nil {
			t.Error(err)
		}
		s2 := FromContext(r.Context())
		sameSession = s == s2 && s.UserID == "alice" && s.ID != "" && s.Token == ""
		s.Set("after", "login")
	}))
	resp := serve(t, h, "session", call{method: "POST", target: "/"})
	if !sameSession {
		t.Fatal("FromContext's session not updated in place")
	}
	c := sessionCookie(t, resp, "session")
	if c == nil {
		t.Fatal("no cookie")
	}
	s, err := e.store.Load(t.Context(), c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("theme"); v != "dark" {
		t.Fatalf("theme %v", v)
	}
	if v, _ := s.Get("after"); v != "login" {
		t.Fatalf("after %v", v)
	}
	if n, _ := e.store.Count(t.Context()); n != 1 {
		t.Fatalf("%d sessions, want 1 (no anonymous record)", n)
	}
}

func TestLoginLogoutErrors(t *testing.T) {
	e := newEnv(t, nil, nil)
	r := httptest.NewRequest("POST", "/", nil)
	w := httptest.NewRecorder()
	if err := Login(w, r, "alice"); !errors.Is(err, ErrNoMiddleware) {
		t.Fatalf("Login outside: %v", err)
	}
	if err := e.m.Logout(w, r); !errors.Is(err, ErrNoMiddleware) {
		t.Fatalf("Logout outside: %v", err)
	}
	if FromContext(r.Context()) != nil {
		t.Fatal("FromContext outside the middleware is not nil")
	}
	other := New(e.store, nil)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := Login(w, r, ""); !errors.Is(err, ErrEmptyUserID) {
			t.Errorf("empty user: %v", err)
		}
		if err := other.Login(w, r, "x"); !errors.Is(err, ErrNoMiddleware) {
			t.Errorf("other manager: %v", err)
		}
		io.WriteString(w, "x")
		if err := Login(w, r, "alice"); !errors.Is(err, ErrHeadersWritten) {
			t.Errorf("after write: %v", err)
		}
		if err := Logout(w, r); !errors.Is(err, ErrHeadersWritten) {
			t.Errorf("logout after write: %v", err)
		}
	}))
	resp := serve(t, h, "session", call{method: "POST", target: "/"})
	if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
		t.Fatalf("cookie: %v", v)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	id := e.sessionID(tok)
	resp := e.do(call{method: "POST", target: "/logout", token: tok})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if c := sessionCookie(t, resp, "session"); c == nil || c.MaxAge >= 0 {
		t.Fatalf("cookie not cleared: %v", resp.Header.Values("Set-Cookie"))
	}
	if _, err := e.store.Get(t.Context(), id); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatalf("session survives logout: %v", err)
	}
	// Logout then store something: a new anonymous session, cookie set.
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Logout(w, r)
		if s := FromContext(r.Context()); s.ID != "" || s.UserID != "" {
			t.Errorf("after logout: %+v", s)
		}
		FromContext(r.Context()).Set("flash", "bye")
	}))
	tok2 := e.login("alice", uaChromeWin)
	resp = serve(t, h, "session", call{method: "POST", target: "/", token: tok2})
	c := sessionCookie(t, resp, "session")
	if c == nil || c.MaxAge <= 0 || c.Value == tok2 {
		t.Fatalf("cookie %v", c)
	}
	if s, err := e.store.Load(t.Context(), c.Value); err != nil || s.UserID != "" {
		t.Fatalf("new anonymous session: %v %v", s, err)
	}
}

func TestResponseWriterInterfaces(t *testing.T) {
	e := newEnv(t, nil, nil)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("not a Flusher")
		}
		if _, ok := w.(http.Hijacker); !ok {
			t.Error("not a Hijacker")
		}
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("not a ReaderFrom")
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok || u.Unwrap() == nil {
			t.Error("no Unwrap")
		}
		FromContext(r.Context()).Set("k", "v")
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			t.Error(err)
		}
		if err := rc.Flush(); err != nil { // commits the session
			t.Error(err)
		}
		io.WriteString(w, "streamed")
	}))
	resp := serve(t, h, "session", call{method: "GET", target: "/"})
	if sessionCookie(t, resp, "session") == nil {
		t.Fatal("cookie not set before Flush")
	}
	if readBody(t, resp) != "streamed" {
		t.Fatal("body")
	}
}

func TestHijackSavesSession(t *testing.T) {
	e := newEnv(t, nil, nil)
	tok := e.login("alice", uaChromeWin)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).Set("ws", "upgraded")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhijack")
		brw.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nCookie: session="+tok+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if readBody(t, resp) != "hijack" {
		t.Fatal("hijacked body")
	}
	s, err := e.store.Load(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("ws"); v != "upgraded" {
		t.Fatalf("value %v", v)
	}
}

func TestInformationalHeaderDoesNotCommit(t *testing.T) {
	e := newEnv(t, nil, nil)
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		FromContext(r.Context()).Set("k", "v")
		io.WriteString(w, "ok")
	}))
	// The recorder snapshots headers at the first WriteHeader, 1xx or not,
	// so this needs a real server.
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || sessionCookie(t, resp, "session") == nil {
		t.Fatalf("status %d, no cookie after 103 Early Hints", resp.StatusCode)
	}
}

func TestContextValuesPassThrough(t *testing.T) {
	e := newEnv(t, nil, nil)
	type key struct{}
	h := e.m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(key{}) != "outer" {
			t.Error("outer context value lost")
		}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), key{}, "outer"))
	defer cancel()
	h.ServeHTTP(httptest.NewRecorder(), r.WithContext(ctx))
}

func TestLoginAsAnotherUserStartsClean(t *testing.T) {
	e := newEnv(t, nil, nil)
	alice := e.login("alice", uaChromeWin)
	aliceID := e.sessionID(alice)
	e.do(call{method: "POST", target: "/set", token: alice, form: url.Values{"k": {"secret"}, "v": {"alice's"}}})

	resp := e.do(call{method: "POST", target: "/login", token: alice, form: url.Values{"user": {"bob"}}})
	c := sessionCookie(t, resp, "session")
	if c == nil || c.MaxAge <= 0 {
		t.Fatalf("cookie %v", resp.Header.Values("Set-Cookie"))
	}
	s, err := e.store.Load(t.Context(), c.Value)
	if err != nil {
		t.Fatal(err)
	}
	if s.UserID != "bob" || s.ID == aliceID {
		t.Fatalf("session %s of %q", s.ID, s.UserID)
	}
	if v, ok := s.Get("secret"); ok {
		t.Fatalf("alice's value leaked to bob: %v", v)
	}
	if _, err := e.store.Get(t.Context(), aliceID); !errors.Is(err, usersessions.ErrNotFound) {
		t.Fatal("alice's abandoned session survives")
	}
	// Same user again: rotation, same ID.
	bobID := s.ID
	resp = e.do(call{method: "POST", target: "/login", token: c.Value, form: url.Values{"user": {"bob"}}})
	if got := e.sessionID(sessionCookie(t, resp, "session").Value); got != bobID {
		t.Fatalf("re-login changed the ID: %s -> %s", bobID, got)
	}
}
