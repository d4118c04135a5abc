package httpx

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/usersessions/usersessions"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the middleware rather than a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware measures one plain request (no value changed) through
// the middleware with a cached store: signed in (cookie read, Load from the
// cache, Touch) and anonymous (no store call at all).
func BenchmarkMiddleware(b *testing.B) {
	for _, bc := range []struct {
		name    string
		noCache bool
		signed  bool
	}{
		{"cached", false, true},
		{"nocache", true, true},
		{"anonymous", false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store := openStore(b, &usersessions.Options{NoCache: bc.noCache})
			m := New(store, &Options{Logger: quietLogger()})
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if FromContext(r.Context()) == nil {
					b.Fatal("no session")
				}
				io.WriteString(w, "ok")
			}))
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("User-Agent", uaChromeWin)
			if bc.signed {
				s, err := store.Create(b.Context(), "alice", usersessions.Client{UserAgent: uaChromeWin})
				if err != nil {
					b.Fatal(err)
				}
				r.AddCookie(&http.Cookie{Name: "session", Value: s.Token})
			}
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
			if len(w.h["Set-Cookie"]) != 0 {
				b.Fatal("unexpected cookie")
			}
		})
	}
}
