package httpx

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/usersessions/usersessions"
)

// dbscBrowser plays a DBSC browser against a handler, as Chrome does: it
// keeps its cookies, holds a key pair, registers after sign-in and
// refreshes the bound cookie at the refresh endpoint.
type dbscBrowser struct {
	t       *testing.T
	h       http.Handler
	key     crypto.Signer
	alg     string
	cookies map[string]string
	ua      string
}

func newDBSCBrowser(t *testing.T, h http.Handler, alg string) *dbscBrowser {
	t.Helper()
	var key crypto.Signer
	var err error
	if alg == "RS256" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &dbscBrowser{t: t, h: h, key: key, alg: alg, cookies: map[string]string{}, ua: uaChromeWin}
}

// request sends a request with the browser's cookies (minus any named in
// drop) and keeps the cookies of the response.
func (b *dbscBrowser) request(method, target string, header http.Header, form url.Values, drop ...string) *http.Response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("User-Agent", b.ua)
	for k, vs := range header {
		r.Header[k] = vs
	}
	for name, value := range b.cookies {
		if !slices.Contains(drop, name) {
			r.AddCookie(&http.Cookie{Name: name, Value: value})
		}
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, r)
	resp := rec.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return resp
}

// signIn posts the sign-in form and returns the registration header.
func (b *dbscBrowser) signIn(user string) string {
	b.t.Helper()
	resp := b.request("POST", "/login", sameOrigin(), url.Values{"user": {user}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign-in: status %d", resp.StatusCode)
	}
	return resp.Header.Get(hdrRegistration)
}

var registrationRE = regexp.MustCompile(`^\(ES256 RS256\);path="([^"]+)";challenge="([^"]+)"$`)

// register answers a registration header as Chrome does.
func (b *dbscBrowser) register(header string) *http.Response {
	b.t.Helper()
	m := registrationRE.FindStringSubmatch(header)
	if m == nil {
		b.t.Fatalf("registration header %q", header)
	}
	proof := b.sign(map[string]any{"alg": b.alg, "typ": "dbsc+jwt", "jwk": b.jwk()}, map[string]any{"jti": m[2]})
	return b.request("POST", m[1], http.Header{hdrResponse: {proof}, "Sec-Fetch-Site": {"same-origin"}}, nil)
}

// signInBound signs in and registers; it fails the test unless both work.
func (b *dbscBrowser) signInBound(user string) dbscInstructions {
	b.t.Helper()
	resp := b.register(b.signIn(user))
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("registration: status %d %s", resp.StatusCode, readBody(b.t, resp))
	}
	var in dbscInstructions
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		b.t.Fatal(err)
	}
	return in
}

var challengeRE = regexp.MustCompile(`^"([^"]+)";id="([^"]+)"$`)

// challenge asks the refresh endpoint for a challenge.
func (b *dbscBrowser) challenge(id string) string {
	b.t.Helper()
	resp := b.request("POST", "/dbsc/refresh", http.Header{hdrSessionID: {id}, "Sec-Fetch-Site": {"same-origin"}}, nil)
	m := challengeRE.FindStringSubmatch(resp.Header.Get(hdrChallenge))
	if resp.StatusCode != http.StatusForbidden || m == nil || m[2] != id {
		b.t.Fatalf("refresh without proof: status %d, challenge %q", resp.StatusCode, resp.Header.Get(hdrChallenge))
	}
	return m[1]
}

// answer posts a refresh proof over challenge.
func (b *dbscBrowser) answer(id, challenge string) *http.Response {
	b.t.Helper()
	proof := b.sign(map[string]any{"alg": b.alg, "typ": "dbsc+jwt"}, map[string]any{"jti": challenge})
	return b.request("POST", "/dbsc/refresh", http.Header{hdrSessionID: {id}, hdrResponse: {proof}, "Sec-Fetch-Site": {"same-origin"}}, nil)
}

// refresh runs a whole refresh and fails the test unless it works.
func (b *dbscBrowser) refresh(id string) {
	b.t.Helper()
	if resp := b.answer(id, b.challenge(id)); resp.StatusCode != http.StatusOK {
		b.t.Fatalf("refresh: status %d %s", resp.StatusCode, readBody(b.t, resp))
	}
}

// whoami returns the /whoami answer, optionally without some cookies.
func (b *dbscBrowser) whoami(drop ...string) string {
	b.t.Helper()
	return readBody(b.t, b.request("GET", "/whoami", nil, nil, drop...))
}

// sign makes a JWT with the browser's key.
func (b *dbscBrowser) sign(header, payload map[string]any) string {
	b.t.Helper()
	return signJWT(b.t, b.key, header, payload)
}

func (b *dbscBrowser) jwk() map[string]string { return jwkOf(b.key.Public()) }

// logBuffer is a concurrency-safe log sink for tests that read the log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// refusals records the calls of DBSCOptions.OnRefused.
type refusals struct {
	mu   sync.Mutex
	errs []error
	ids  []string
}

func (f *refusals) hook(r *http.Request, s *usersessions.Session, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
	f.ids = append(f.ids, s.ID)
}

func (f *refusals) list() ([]error, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.errs...), append([]string(nil), f.ids...)
}
