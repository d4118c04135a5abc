package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// newDBSCEnv is a test application with DBSC on (o's settings, the hook
// recording into the returned refusals, the log into the buffer).
func newDBSCEnv(t *testing.T, o *DBSCOptions) (*env, *refusals, *logBuffer) {
	t.Helper()
	var opts DBSCOptions
	if o != nil {
		opts = *o
	}
	f, logs := &refusals{}, &logBuffer{}
	opts.OnRefused = f.hook
	return newEnv(t, nil, &Options{DBSC: &opts, Logger: logs.logger()}), f, logs
}

// storedSession loads the session of the browser's cookie from the store.
func storedSession(t *testing.T, e *env, b *dbscBrowser) *usersessions.Session {
	t.Helper()
	s, err := e.store.Load(t.Context(), b.cookies[e.m.CookieName()])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDBSCRegistration(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			e, _, _ := newDBSCEnv(t, nil)
			b := newDBSCBrowser(t, e.h, alg)
			resp := b.request("POST", "/login", sameOrigin(), url.Values{"user": {"alice"}})
			reg := resp.Header.Get(hdrRegistration)
			if !registrationRE.MatchString(reg) || !strings.Contains(reg, `path="/dbsc/start"`) {
				t.Fatalf("registration header %q", reg)
			}
			if old := resp.Header.Get(hdrOldRegistration); old != reg {
				t.Errorf("old spelling %q, want the same as %q", old, reg)
			}
			if DeviceBound(storedSession(t, e, b)) {
				t.Fatal("bound before registering")
			}

			resp = b.register(reg)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("registration: %d %s", resp.StatusCode, readBody(t, resp))
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			var in dbscInstructions
			if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
				t.Fatal(err)
			}
			sess := storedSession(t, e, b)
			want := dbscInstructions{SessionIdentifier: sess.ID, RefreshURL: "/dbsc/refresh",
				Credentials: []dbscCredential{{Type: "cookie", Name: "session_bound", Attributes: "Path=/; HttpOnly; SameSite=Lax"}}}
			if in.SessionIdentifier != want.SessionIdentifier || in.RefreshURL != want.RefreshURL ||
				len(in.Credentials) != 1 || in.Credentials[0] != want.Credentials[0] || in.Scope.IncludeSite {
				t.Errorf("instructions %+v, want %+v", in, want)
			}
			c := sessionCookie(t, resp, "session_bound")
			if c == nil || c.MaxAge != 600 || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
				t.Fatalf("bound cookie %+v", c)
			}
			if !DeviceBound(sess) {
				t.Fatal("not bound after registering")
			}
			if _, alg2, ok := boundKey(sess); !ok || alg2 != alg {
				t.Errorf("stored key: %v %q", ok, alg2)
			}
			if got := b.whoami(); got != "user=alice id="+sess.ID {
				t.Errorf("whoami with both cookies: %q", got)
			}
		})
	}
}

func TestDBSCCopiedCookieRefused(t *testing.T) {
	e, f, logs := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	in := b.signInBound("alice")
	before := storedSession(t, e, b)

	// The long-lived cookie alone, from another browser: signed out.
	thief := &dbscBrowser{t: t, h: e.h, cookies: map[string]string{"session": b.cookies["session"]}, ua: uaFirefoxMac}
	e.clock.Advance(time.Minute)
	resp := thief.request("GET", "/whoami", nil, nil)
	if got := readBody(t, resp); got != "user= id=" {
		t.Fatalf("copied cookie: whoami %q, want signed out", got)
	}
	if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("the refused request changed cookies: %q", sc)
	}
	errs, ids := f.list()
	if len(errs) != 1 || !errors.Is(errs[0], ErrBoundCookieMissing) || ids[0] != in.SessionIdentifier {
		t.Fatalf("hook calls %v %v, want one ErrBoundCookieMissing for %s", errs, ids, in.SessionIdentifier)
	}
	if log := logs.String(); !strings.Contains(log, "device-bound session refused") || !strings.Contains(log, in.SessionIdentifier) {
		t.Errorf("log lacks the refusal:\n%s", log)
	}
	// The refused request is no activity of the session.
	after := storedSession(t, e, b)
	if !after.LastSeen.Equal(before.LastSeen) || after.UserAgent != uaChromeWin {
		t.Errorf("refused request recorded: last seen %v -> %v, user agent %q", before.LastSeen, after.LastSeen, after.UserAgent)
	}
	// The session is not ended: the real browser goes on.
	if got := b.whoami(); got != "user=alice id="+in.SessionIdentifier {
		t.Fatalf("the browser after the refusal: %q", got)
	}

	// The pair of cookies copied works until the bound cookie expires
	// (plus the grace), then it is refused too.
	e.clock.Advance(DefaultBoundCookieLifetime + maxBoundCookieGrace)
	thief.cookies["session_bound"] = b.cookies["session_bound"]
	if got := thief.whoami(); got != "user= id=" {
		t.Fatalf("expired bound cookie: whoami %q", got)
	}
	if errs, _ := f.list(); len(errs) != 2 || !errors.Is(errs[1], ErrBoundCookieInvalid) {
		t.Fatalf("hook calls %v, want ErrBoundCookieInvalid second", errs)
	}
	// The browser refreshes (as Chrome does when its cookie expired) and
	// is signed in again.
	b.refresh(in.SessionIdentifier)
	if got := b.whoami(); got != "user=alice id="+in.SessionIdentifier {
		t.Fatalf("after refresh: %q", got)
	}
}

func TestDBSCBoundCookieOfAnotherSession(t *testing.T) {
	e, f, _ := newDBSCEnv(t, nil)
	a := newDBSCBrowser(t, e.h, "ES256")
	b := newDBSCBrowser(t, e.h, "ES256")
	a.signInBound("alice")
	b.signInBound("alice")
	a.cookies["session_bound"], b.cookies["session_bound"] = b.cookies["session_bound"], a.cookies["session_bound"]
	if got := a.whoami(); got != "user= id=" {
		t.Errorf("another session's bound cookie: %q", got)
	}
	a.cookies["session_bound"] = "garbage"
	if got := a.whoami(); got != "user= id=" {
		t.Errorf("garbage bound cookie: %q", got)
	}
	if errs, _ := f.list(); len(errs) != 2 || !errors.Is(errs[0], ErrBoundCookieInvalid) || !errors.Is(errs[1], ErrBoundCookieInvalid) {
		t.Errorf("hook calls %v", errs)
	}
}

func TestDBSCUnboundSessionUnchanged(t *testing.T) {
	e, f, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	b.signIn("alice") // a browser without DBSC ignores the header
	id := storedSession(t, e, b).ID
	for range 3 {
		if got := b.whoami(); got != "user=alice id="+id {
			t.Fatalf("unbound session: %q", got)
		}
	}
	if errs, _ := f.list(); len(errs) != 0 {
		t.Errorf("hook called for an unbound session: %v", errs)
	}
	// Its refresh endpoint has nothing to refresh.
	resp := b.request("POST", "/dbsc/refresh", http.Header{hdrSessionID: {id}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(readBody(t, resp), `"continue":false`) {
		t.Errorf("refresh of an unbound session: %d", resp.StatusCode)
	}
}

func TestDBSCRefresh(t *testing.T) {
	e, f, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	id := b.signInBound("alice").SessionIdentifier
	first := b.cookies["session_bound"]

	c := b.challenge(id)
	resp := b.request("POST", "/dbsc/refresh", http.Header{hdrSessionID: {id}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	if old := resp.Header.Get(hdrOldChallenge); !challengeRE.MatchString(old) {
		t.Errorf("old spelling of the challenge: %q", old)
	}
	e.clock.Advance(time.Second)
	resp = b.answer(id, c)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", resp.StatusCode, readBody(t, resp))
	}
	var in dbscInstructions
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || in.SessionIdentifier != id {
		t.Fatalf("refresh instructions %+v (%v)", in, err)
	}
	if b.cookies["session_bound"] == first {
		t.Error("the bound cookie did not change")
	}

	// A challenge is good once.
	if resp := b.answer(id, c); resp.StatusCode != http.StatusForbidden || resp.Header.Get(hdrChallenge) == "" {
		t.Errorf("replayed challenge: %d", resp.StatusCode)
	}
	// A recent challenge still works after a newer one was handed out,
	// as long as it is unused.
	c1 := b.challenge(id)
	e.clock.Advance(time.Second)
	c2 := b.challenge(id)
	if resp := b.answer(id, c1); resp.StatusCode != http.StatusOK {
		t.Errorf("earlier unused challenge: %d", resp.StatusCode)
	}
	// ... but not once a later one was used.
	e.clock.Advance(time.Second)
	c3 := b.challenge(id)
	if resp := b.answer(id, c3); resp.StatusCode != http.StatusOK {
		t.Fatalf("latest challenge: %d", resp.StatusCode)
	}
	if resp := b.answer(id, c2); resp.StatusCode != http.StatusForbidden {
		t.Errorf("challenge older than one used: %d", resp.StatusCode)
	}
	// Too old.
	old := b.challenge(id)
	e.clock.Advance(DefaultChallengeLifetime + time.Second)
	if resp := b.answer(id, old); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired challenge: %d", resp.StatusCode)
	}
	if errs, _ := f.list(); len(errs) != 0 {
		t.Errorf("stale challenges are no attack: hook called %v", errs)
	}
}

func TestDBSCRefreshOtherChallenges(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	a := newDBSCBrowser(t, e.h, "ES256")
	b := newDBSCBrowser(t, e.h, "ES256")
	idA := a.signInBound("alice").SessionIdentifier
	reg := b.signIn("alice")
	regChallenge := registrationRE.FindStringSubmatch(reg)[2]
	if resp := b.register(reg); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	idB := storedSession(t, e, b).ID
	// B's challenge signed by A's key for A's session; B's registration
	// challenge used to refresh.
	for name, c := range map[string]string{"another session's": b.challenge(idB), "a registration": regChallenge, "made up": "abc"} {
		if resp := a.answer(idA, c); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s challenge: %d, want 403", name, resp.StatusCode)
		}
	}
}

func TestDBSCRefreshBadProof(t *testing.T) {
	e, f, logs := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	id := b.signInBound("alice").SessionIdentifier
	c := b.challenge(id)
	thief := newDBSCBrowser(t, e.h, "ES256")
	thief.cookies["session"] = b.cookies["session"]
	rsaThief := newDBSCBrowser(t, e.h, "RS256")
	rsaThief.cookies["session"] = b.cookies["session"]

	for name, resp := range map[string]*http.Response{
		"another key": thief.answer(id, c),
		"RS256 proof": rsaThief.answer(id, c),
		"malformed": thief.request("POST", "/dbsc/refresh",
			http.Header{hdrSessionID: {id}, hdrResponse: {"not.a.jwt"}, "Sec-Fetch-Site": {"same-origin"}}, nil),
	} {
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(readBody(t, resp), `"continue":false`) {
			t.Errorf("%s: status %d", name, resp.StatusCode)
		}
		if len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("%s: a cookie was set", name)
		}
	}
	errs, _ := f.list()
	if len(errs) != 3 {
		t.Fatalf("hook calls %v, want 3", errs)
	}
	for _, err := range errs {
		if err != ErrBadProof {
			t.Errorf("hook got %v, want ErrBadProof", err)
		}
	}
	if !strings.Contains(logs.String(), "bad ES256 signature") {
		t.Errorf("log lacks the detail:\n%s", logs.String())
	}
	// The real browser is not affected.
	if resp := b.answer(id, c); resp.StatusCode != http.StatusOK {
		t.Errorf("real refresh after the attempts: %d", resp.StatusCode)
	}
}

func TestDBSCRefreshEndsSession(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	id := b.signInBound("alice").SessionIdentifier
	ends := func(name string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(readBody(t, resp), `"continue":false`) {
			t.Errorf("%s: status %d, want 401 and continue false", name, resp.StatusCode)
		}
	}
	hdr := func(id string) http.Header { return http.Header{hdrSessionID: {id}, "Sec-Fetch-Site": {"same-origin"}} }
	ends("another session ID", b.request("POST", "/dbsc/refresh", hdr("x"+id[1:]), nil))
	ends("no session ID", b.request("POST", "/dbsc/refresh", hdr(""), nil))
	ends("no session cookie", b.request("POST", "/dbsc/refresh", hdr(id), nil, "session"))
	if resp := b.request("POST", "/logout", sameOrigin(), nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal(resp.StatusCode)
	}
	ends("after sign-out", b.request("POST", "/dbsc/refresh", hdr(id), nil))
}

func TestDBSCRegistrationRefused(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	post := func(b *dbscBrowser, proof string) *http.Response {
		return b.request("POST", "/dbsc/start", http.Header{hdrResponse: {proof}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	}
	anon := newDBSCBrowser(t, e.h, "ES256")
	if resp := post(anon, anon.sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": anon.jwk()}, map[string]any{"jti": "x"})); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("not signed in: %d", resp.StatusCode)
	}

	b := newDBSCBrowser(t, e.h, "ES256")
	reg := b.signIn("alice")
	challenge := registrationRE.FindStringSubmatch(reg)[2]
	other := newDBSCBrowser(t, e.h, "ES256")
	for name, proof := range map[string]string{
		"no key":          b.sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}, map[string]any{"jti": challenge}),
		"wrong challenge": b.sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": b.jwk()}, map[string]any{"jti": challenge[:len(challenge)-2] + "AA"}),
		"no challenge":    b.sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": b.jwk()}, map[string]any{}),
		"signed by another key": signJWT(t, other.key,
			map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": b.jwk()}, map[string]any{"jti": challenge}),
		"alg none": "eyJhbGciOiJub25lIiwidHlwIjoiZGJzYytqd3QifQ.eyJqdGkiOiJ4In0.",
		"garbage":  "garbage",
		"missing":  "",
	} {
		resp := post(b, proof)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
		if resp.Header.Get(hdrRegistration) != "" {
			t.Errorf("%s: a new registration was offered", name)
		}
	}
	if DeviceBound(storedSession(t, e, b)) {
		t.Fatal("bound by a refused registration")
	}
	if resp := b.register(reg); resp.StatusCode != http.StatusOK {
		t.Fatalf("the real registration after the attempts: %d", resp.StatusCode)
	}
	// Once bound, never again: not even with the same challenge.
	thief := newDBSCBrowser(t, e.h, "ES256")
	thief.cookies["session"] = b.cookies["session"]
	if resp := thief.register(reg); resp.StatusCode != http.StatusForbidden {
		t.Errorf("second registration: %d, want 403", resp.StatusCode)
	}
	if _, _, ok := boundKey(storedSession(t, e, b)); !ok {
		t.Fatal("binding lost")
	}
	if b.whoami() != "user=alice id="+storedSession(t, e, b).ID {
		t.Error("the bound browser lost its session")
	}
	// An expired registration challenge.
	late := newDBSCBrowser(t, e.h, "ES256")
	reg = late.signIn("bob")
	e.clock.Advance(DefaultChallengeLifetime + time.Second)
	if resp := late.register(reg); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("expired registration challenge: %d", resp.StatusCode)
	}
}

func TestDBSCSignInRebinds(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	id := b.signInBound("alice").SessionIdentifier
	// Signing in again as the same user (with both cookies) keeps the
	// session but starts the binding over: the new key is registered.
	reg := b.signIn("alice")
	sess := storedSession(t, e, b)
	if sess.ID != id || DeviceBound(sess) || reg == "" {
		t.Fatalf("after signing in again: id %s (was %s), bound %v, registration %q", sess.ID, id, DeviceBound(sess), reg)
	}
	b2 := &dbscBrowser{t: t, h: e.h, cookies: b.cookies, ua: b.ua}
	fresh := newDBSCBrowser(t, e.h, "RS256")
	b2.key, b2.alg = fresh.key, fresh.alg
	if resp := b2.register(reg); resp.StatusCode != http.StatusOK {
		t.Fatalf("registering the new key: %d", resp.StatusCode)
	}
	if _, alg, _ := boundKey(storedSession(t, e, b)); alg != "RS256" {
		t.Errorf("bound to %s, want the new RS256 key", alg)
	}
	// The old key can no longer refresh.
	c := b2.challenge(id)
	if resp := b.answer(id, c); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("old key after rebinding: %d", resp.StatusCode)
	}
}

func TestDBSCCrossOrigin(t *testing.T) {
	for _, disable := range []bool{false, true} {
		f := &refusals{}
		e := newEnv(t, nil, &Options{DBSC: &DBSCOptions{OnRefused: f.hook}, DisableCrossOriginProtection: disable})
		for _, path := range []string{"/dbsc/start", "/dbsc/refresh"} {
			for name, h := range map[string]http.Header{
				"cross-site":   {"Sec-Fetch-Site": {"cross-site"}},
				"same-site":    {"Sec-Fetch-Site": {"same-site"}},
				"other origin": {"Origin": {"https://evil.example"}},
			} {
				resp := e.do(call{method: "POST", target: path, header: h})
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get(hdrChallenge) != "" {
					t.Errorf("disable=%v %s %s: status %d, want 403 without a challenge", disable, name, path, resp.StatusCode)
				}
			}
			// Chrome's own requests: same-origin, or no such header at all.
			for name, h := range map[string]http.Header{"same-origin": sameOrigin(), "no headers": {}} {
				if resp := e.do(call{method: "POST", target: path, header: h}); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("disable=%v %s %s: status %d, want 401 (no session)", disable, name, path, resp.StatusCode)
				}
			}
		}
	}
}

func TestDBSCMethods(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	for _, path := range []string{"/dbsc/start", "/dbsc/refresh"} {
		resp := e.do(call{method: "GET", target: path})
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s: %d, Allow %q", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	// Other paths under the prefix are the app's.
	if resp := e.do(call{method: "GET", target: "/dbsc/other"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dbsc/other: %d, want the app's 404", resp.StatusCode)
	}
}

func TestDBSCOldHeaderNames(t *testing.T) {
	e, _, _ := newDBSCEnv(t, nil)
	b := newDBSCBrowser(t, e.h, "ES256")
	reg := b.signIn("alice")
	challenge := registrationRE.FindStringSubmatch(reg)[2]
	// Chromium's first origin trial: the key in the payload as "key", the
	// proof quoted as a structured-field string, the old header names.
	proof := b.sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}, map[string]any{"jti": challenge, "key": b.jwk(), "aud": "https://example.com/dbsc/start"})
	resp := b.request("POST", "/dbsc/start", http.Header{hdrOldResponse: {sfString(proof)}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("old-style registration: %d %s", resp.StatusCode, readBody(t, resp))
	}
	id := storedSession(t, e, b).ID
	resp = b.request("POST", "/dbsc/refresh", http.Header{hdrOldSessionID: {sfString(id)}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	m := challengeRE.FindStringSubmatch(resp.Header.Get(hdrOldChallenge))
	if resp.StatusCode != http.StatusForbidden || m == nil {
		t.Fatalf("old-style challenge: %d %q", resp.StatusCode, resp.Header.Get(hdrOldChallenge))
	}
	proof = b.sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}, map[string]any{"jti": m[1]})
	resp = b.request("POST", "/dbsc/refresh", http.Header{hdrOldSessionID: {id}, hdrOldResponse: {proof}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("old-style refresh: %d", resp.StatusCode)
	}
}

func TestDBSCOptions(t *testing.T) {
	store := openStore(t, nil)
	m := New(store, &Options{CookieName: "__Host-s", DBSC: &DBSCOptions{Path: "/auth/dbsc/", CookieLifetime: 1500 * time.Millisecond}})
	if d := m.dbsc; d.name != "__Host-s_bound" || d.startPath != "/auth/dbsc/start" || d.refreshPath != "/auth/dbsc/refresh" ||
		d.life != 2*time.Second || d.grace != 2*time.Second || d.challengeLife != DefaultChallengeLifetime {
		t.Errorf("dbsc settings %+v", d)
	}
	m = New(store, &Options{DBSC: &DBSCOptions{CookieLifetime: time.Hour}})
	if m.dbsc.grace != maxBoundCookieGrace {
		t.Errorf("grace %v", m.dbsc.grace)
	}
	for _, p := range []string{"dbsc/", "/dbsc", "/db sc/", "/dbsc\"/", "/dbsé/", "//evil.example/", "/dbsc/?x=/"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Path %q accepted", p)
				}
			}()
			New(store, &Options{DBSC: &DBSCOptions{Path: p}})
		}()
	}
	if New(store, nil).dbsc != nil {
		t.Error("DBSC on by default")
	}
}
