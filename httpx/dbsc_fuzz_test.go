package httpx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzDBSCProof: a Secure-Session-Response value never panics the parser,
// and whatever parses is of an accepted algorithm with a signature of its
// size; verifying it against a fixed key never panics and, the key being
// one no fuzzer holds, never succeeds.
func FuzzDBSCProof(f *testing.F) {
	for _, s := range []string{chromeRegistrationProof, chromeRefreshProof, `"` + chromeRefreshProof + `";a=1`,
		"a.b.c", "", `"`, "..", "eyJ9.eyJ9.", strings.Repeat(".", 10)} {
		f.Add(s)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseProof(s)
		if err != nil {
			if !errors.Is(err, errProof) {
				t.Fatalf("error %v does not wrap errProof", err)
			}
			return
		}
		if p.alg != "ES256" && p.alg != "RS256" || checkSignatureSize(p.alg, len(p.sig)) != nil {
			t.Fatalf("parsed a %s proof with a %d-byte signature", p.alg, len(p.sig))
		}
		if p.key != nil {
			_ = p.verify(p.key) // must not panic
		}
		if p.verify(&key.PublicKey) == nil {
			t.Fatalf("%q verifies with a key made for this run", s)
		}
	})
}

// FuzzDBSCHeaderItem: headerItem never panics, and what sfString writes it
// reads back.
func FuzzDBSCHeaderItem(f *testing.F) {
	for _, s := range []string{`"a"`, `a;b`, `"a\"b"`, `"`, `"\`, "\"\x7f\"", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		headerItem(s)
		if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return // not a structured-field string
		}
		if got, ok := headerItem(sfString(s)); !ok || got != s {
			t.Fatalf("round trip of %q: %q %v", s, got, ok)
		}
	})
}

// FuzzDBSCChallenge: no challenge or bound cookie value is accepted for a
// session unless the server made it with the session's secret.
func FuzzDBSCChallenge(f *testing.F) {
	secret := make([]byte, secretSize)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Add(newChallenge(secret, purposeRefresh, "id", now))
	f.Add(boundCookieValue(secret, "id", now.Add(time.Minute)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		other := make([]byte, secretSize)
		other[0] = 1
		if _, ok := checkChallenge(other, purposeRefresh, "id", s, now, time.Hour); ok {
			t.Fatalf("challenge %q accepted under a secret nobody used", s)
		}
		if checkBoundCookie(other, "id", s, now, time.Minute) {
			t.Fatalf("bound cookie %q accepted under a secret nobody used", s)
		}
		checkChallenge(secret, purposeRefresh, "id", s, now, time.Hour) // must not panic
		checkBoundCookie(secret, "id", s, now, time.Minute)
	})
}
