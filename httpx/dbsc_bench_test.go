package httpx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usersessions/usersessions"
)

// BenchmarkMiddlewareDBSC measures a plain signed-in request through the
// middleware with DBSC off (the baseline), on with a session that never
// registered, and on with a device-bound session and its bound cookie.
// Read it as ratios to "off".
func BenchmarkMiddlewareDBSC(b *testing.B) {
	for _, bc := range []struct {
		name        string
		dbsc, bound bool
	}{{"off", false, false}, {"on-unbound", true, false}, {"on-bound", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			store := openStore(b, nil)
			opts := &Options{Logger: quietLogger()}
			if bc.dbsc {
				opts.DBSC = &DBSCOptions{}
			}
			m := New(store, opts)
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if FromContext(r.Context()).UserID != "alice" {
					b.Fatal("not signed in")
				}
				io.WriteString(w, "ok")
			}))
			s, err := store.Create(b.Context(), "alice", usersessions.Client{UserAgent: uaChromeWin})
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("User-Agent", uaChromeWin)
			r.AddCookie(&http.Cookie{Name: "session", Value: s.Token})
			if bc.bound {
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
				secret := resetBinding(s)
				s.Set(dbscKeyKey, der)
				s.Set(dbscAlgKey, "ES256")
				if err := store.Save(b.Context(), s); err != nil {
					b.Fatal(err)
				}
				r.AddCookie(&http.Cookie{Name: "session_bound", Value: boundCookieValue(secret, s.ID, time.Now().Add(time.Hour))})
			}
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}
