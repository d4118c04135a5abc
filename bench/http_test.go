package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/usersessions/usersessions/httpx"
)

// discardWriter is a ResponseWriter that keeps only the status and headers,
// reused across requests so neither side pays for a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.code = 0
}

// serveCheck serves r and fails unless the handler saw its session (200)
// and no cookie was set or cleared.
func serveCheck(h http.Handler, w *discardWriter, r *http.Request) (int, error) {
	w.reset()
	h.ServeHTTP(w, r)
	if w.code != http.StatusOK {
		return 0, fmt.Errorf("status %d", w.code)
	}
	if c := w.h["Set-Cookie"]; len(c) > 0 {
		return 0, fmt.Errorf("unexpected Set-Cookie %q", c)
	}
	return w.code, nil
}

// sessionRequests builds one GET per session, with its cookie, from the
// benchmark client.
func sessionRequests(cookie string, tokens []string) []*http.Request {
	reqs := make([]*http.Request, len(tokens))
	for i, tok := range tokens {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = clientIP.String() + ":41234"
		r.Header.Set("User-Agent", userAgent)
		r.AddCookie(&http.Cookie{Name: cookie, Value: tok})
		reqs[i] = r
	}
	return reqs
}

// BenchmarkHTTP is a GET with a valid session cookie through each
// library's middleware, to a handler that reads one session value and
// writes a two-byte body:
//
//   - usersessions: httpx.Manager.Handler on the cached store (Load and
//     Touch per request, nothing written back);
//   - scs-bbolt: scs's LoadAndSave on scsBoltStore (Find and gob decode per
//     request, nothing written back since the session is unmodified).
func BenchmarkHTTP(b *testing.B) {
	fx := getLoadFixture(b)
	mask := loadSessions - 1

	b.Run("usersessions", func(b *testing.B) {
		s := fx.openLoad(b, true)
		m := httpx.New(s, &httpx.Options{Logger: quiet})
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess := httpx.FromContext(r.Context())
			if v, _ := sess.Get("csrf"); v == nil || sess.ID == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "ok")
		}))
		reqs := sessionRequests(m.CookieName(), fx.tokens)
		runHTTP(b, h, reqs, mask, func() uint64 { return s.Stats().Misses })
	})

	b.Run("scs-bbolt", func(b *testing.B) {
		sm := fx.openSCS(b)
		h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if sm.GetString(r.Context(), "csrf") == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, "ok")
		}))
		reqs := sessionRequests(sm.Cookie.Name, fx.scsTokens)
		runHTTP(b, h, reqs, mask, nil)
	})
}

func runHTTP(b *testing.B, h http.Handler, reqs []*http.Request, mask int, misses func() uint64) {
	// One pass first: every session valid, and the first Touch of each
	// done (see BenchmarkLoadTouch).
	w := &discardWriter{h: make(http.Header)}
	for _, r := range reqs {
		if _, err := serveCheck(h, w, r); err != nil {
			b.Fatal(err)
		}
	}
	serialAndParallelWith(b, func() func(int) (int, error) {
		w := &discardWriter{h: make(http.Header)} // one per goroutine
		return func(i int) (int, error) { return serveCheck(h, w, reqs[i&mask]) }
	}, misses)
}
