package httpx

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

// Proofs signed by Chromium 156 with software keys (captured from a test
// server): the registration proof carries its key; the refresh proof,
// signed by the same key, does not.
const (
	chromeRegistrationProof = "eyJhbGciOiJFUzI1NiIsImp3ayI6eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6IlBnLUNwRGFOTk5MS0lPRFNVVFRUSjRaOC0wMGpXZUJOWXhvUkxQaHc2NzQiLCJ5Ijoic3Z1aXZOaUNCNkZDS0luWW9hY3pNbVhvcEJLc0c1ZEJLVzN0MkZiT1htTSJ9LCJ0eXAiOiJkYnNjK2p3dCJ9.eyJqdGkiOiJyZWdjaGFsIn0.j8f9rpMPSscDjkE7SRD9GzRHkCHrmOAVWNoBmSEIw0gDrodA5BmHdqXO9hE-gz1TDJL5tKvioX8cD3tX-V9K2A"
	chromeRefreshProof      = "eyJhbGciOiJFUzI1NiIsInR5cCI6ImRic2Mrand0In0.eyJqdGkiOiJyZWZjaGFsIn0.ZaIdw6Hy7PbjR4GWwCutaaDngvGGA3Uw_nQiRUkb4yfGzetCtAtVU6iOHrcafyO0UcLPaLIcRzI8js7HWe-D3w"
)

func TestParseChromeProofs(t *testing.T) {
	reg, err := parseProof(chromeRegistrationProof)
	if err != nil {
		t.Fatal(err)
	}
	if reg.alg != "ES256" || reg.jti != "regchal" || reg.key == nil {
		t.Fatalf("registration proof: alg %q jti %q key %v", reg.alg, reg.jti, reg.key)
	}
	if err := reg.verify(reg.key); err != nil {
		t.Fatalf("registration proof does not verify: %v", err)
	}
	// Both spellings of the header value: bare (Chrome) and quoted (draft).
	for _, v := range []string{chromeRefreshProof, `"` + chromeRefreshProof + `"`, ` "` + chromeRefreshProof + `";x=1 `} {
		ref, err := parseProof(v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if ref.jti != "refchal" || ref.key != nil {
			t.Fatalf("refresh proof: jti %q key %v", ref.jti, ref.key)
		}
		if err := ref.verify(reg.key); err != nil {
			t.Fatalf("refresh proof does not verify with the registered key: %v", err)
		}
	}
	// Another challenge under the same signature does not verify.
	parts := strings.Split(chromeRefreshProof, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"refchaL"}`))
	p, err := parseProof(strings.Join(parts, "."))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.verify(reg.key); !errors.Is(err, errProof) {
		t.Fatalf("tampered proof: %v", err)
	}
}

func TestParseProofRefused(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	b64 := base64.RawURLEncoding.EncodeToString
	good := func(h map[string]any) string {
		return signJWT(t, ec, h, map[string]any{"jti": "c"})
	}
	for name, v := range map[string]string{
		"empty":              "",
		"two parts":          "a.b",
		"four parts":         chromeRefreshProof + ".x",
		"bad base64":         "!!!." + strings.SplitN(chromeRefreshProof, ".", 2)[1],
		"header not JSON":    b64([]byte("nope")) + "." + b64([]byte(`{"jti":"c"}`)) + "." + b64(make([]byte, 64)),
		"typ jwt":            good(map[string]any{"alg": "ES256", "typ": "JWT"}),
		"no typ":             good(map[string]any{"alg": "ES256"}),
		"alg none":           b64([]byte(`{"alg":"none","typ":"dbsc+jwt"}`)) + "." + b64([]byte(`{"jti":"c"}`)) + ".",
		"alg HS256":          b64([]byte(`{"alg":"HS256","typ":"dbsc+jwt"}`)) + "." + b64([]byte(`{"jti":"c"}`)) + "." + b64(make([]byte, 32)),
		"short ES256 sig":    b64([]byte(`{"alg":"ES256","typ":"dbsc+jwt"}`)) + "." + b64([]byte(`{"jti":"c"}`)) + "." + b64(make([]byte, 63)),
		"no jti":             signJWT(t, ec, map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}, map[string]any{}),
		"jti not string":     signJWT(t, ec, map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}, map[string]any{"jti": 1}),
		"P-384 key":          good(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "EC", "crv": "P-384", "x": b64(ec384.X.Bytes()), "y": b64(ec384.Y.Bytes())}}),
		"point off curve":    good(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "EC", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(append(make([]byte, 31), 1))}}),
		"RSA key for ES256":  good(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkOf(&small.PublicKey)}),
		"1024-bit RSA":       signJWT(t, small, map[string]any{"alg": "RS256", "typ": "dbsc+jwt", "jwk": jwkOf(&small.PublicKey)}, map[string]any{"jti": "c"}),
		"unterminated quote": `"` + chromeRefreshProof,
		"too long":           strings.Repeat("a", maxProofLength+1),
	} {
		if p, err := parseProof(v); err == nil {
			t.Errorf("%s: parsed as %+v", name, p)
		} else if !errors.Is(err, errProof) {
			t.Errorf("%s: error %v does not wrap errProof", name, err)
		}
	}
}

func TestProofVerifyMismatch(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 2048)
	esProof, err := parseProof(signJWT(t, ec, map[string]any{"alg": "ES256", "typ": "dbsc+jwt"}, map[string]any{"jti": "c"}))
	if err != nil {
		t.Fatal(err)
	}
	rsProof, err := parseProof(signJWT(t, rs, map[string]any{"alg": "RS256", "typ": "dbsc+jwt"}, map[string]any{"jti": "c"}))
	if err != nil {
		t.Fatal(err)
	}
	if esProof.verify(&ec.PublicKey) != nil || rsProof.verify(&rs.PublicKey) != nil {
		t.Fatal("good proofs refused")
	}
	for name, err := range map[string]error{
		"ES256 proof, RSA key": esProof.verify(&rs.PublicKey),
		"RS256 proof, EC key":  rsProof.verify(&ec.PublicKey),
		"ES256 proof, no key":  esProof.verify(nil),
		"RS256, another key":   rsProof.verify(&mustRSA(t).PublicKey),
		"ES256, another key":   esProof.verify(&mustEC(t).PublicKey),
	} {
		if !errors.Is(err, errProof) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSA(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHeaderItem(t *testing.T) {
	for in, want := range map[string]string{
		`abc`:              "abc",
		` abc ;id="x" `:    "abc",
		`"abc"`:            "abc",
		`"a\"b\\c";id="x"`: `a"b\c`,
		`""`:               "",
	} {
		if got, ok := headerItem(in); !ok || got != want {
			t.Errorf("headerItem(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{`"abc`, `"a\b"`, "\"a\x01\"", `"\`} {
		if got, ok := headerItem(in); ok {
			t.Errorf("headerItem(%q) = %q, want refused", in, got)
		}
	}
	for _, s := range []string{"abc", `a"b\c`, ""} {
		if got, ok := headerItem(sfString(s)); !ok || got != s {
			t.Errorf("round trip of %q: %q %v", s, got, ok)
		}
	}
}

// signJWT signs header.payload with key (ECDSA: r||s; RSA: PKCS #1 v1.5),
// whatever alg the header names: a test may lie there on purpose.
func signJWT(t testing.TB, key crypto.Signer, header, payload map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(j)
	}
	input := enc(header) + "." + enc(payload)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// jwkOf writes a public key as a JWK.
func jwkOf(pub crypto.PublicKey) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return map[string]string{"kty": "EC", "crv": "P-256",
			"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	}
	return nil
}
